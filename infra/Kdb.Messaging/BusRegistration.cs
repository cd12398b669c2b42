using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Kdb.Messaging;

/// <summary>One place that wires MassTransit the same way in every host.</summary>
public static class BusRegistration
{
    /// <summary>
    /// Adds MassTransit with the transport named in configuration section <c>Bus</c>. The bus's own
    /// health check carries the <c>ready</c> tag, so a host whose broker is down reports not-ready.
    /// </summary>
    public static IServiceCollection AddKdbBus(
        this IServiceCollection services,
        IConfiguration configuration,
        Action<IBusRegistrationConfigurator>? registerConsumers = null)
    {
        var options = configuration.GetSection(BusOptions.Section).Get<BusOptions>() ?? new BusOptions();
        if (!options.IsRabbitMq && !string.Equals(options.Transport, "inmemory", StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidOperationException($"Bus:Transport must be 'inmemory' or 'rabbitmq', not '{options.Transport}'.");
        }

        services.AddSingleton(options);
        services.AddMassTransit(bus =>
        {
            bus.SetKebabCaseEndpointNameFormatter();
            registerConsumers?.Invoke(bus);
            if (options.IsRabbitMq)
            {
                bus.UsingRabbitMq((context, cfg) =>
                {
                    cfg.Host(options.RabbitMqHost, (ushort)options.RabbitMqPort, options.RabbitMqVirtualHost, h =>
                    {
                        h.Username(options.RabbitMqUsername);
                        h.Password(options.RabbitMqPassword);
                    });
                    cfg.ConfigureEndpoints(context);
                });
            }
            else
            {
                bus.UsingInMemory((context, cfg) => cfg.ConfigureEndpoints(context));
            }
        });
        return services;
    }
}
