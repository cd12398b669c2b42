using MassTransit;

namespace Kdb.Testing.RabbitMq;

/// <summary>Points a MassTransit RabbitMQ bus at a <see cref="RabbitMqFixture"/>.</summary>
public static class MassTransitExtensions
{
    /// <summary>Configures the bus's host: the fixture's node, guest credentials, and <paramref name="virtualHost"/> (default "/").</summary>
    public static void UseTestNode(this IRabbitMqBusFactoryConfigurator configurator, RabbitMqFixture node, string? virtualHost = null)
    {
        ArgumentNullException.ThrowIfNull(configurator);
        ArgumentNullException.ThrowIfNull(node);
        configurator.Host(node.Host, checked((ushort)node.AmqpPort), virtualHost ?? node.VirtualHost, host =>
        {
            host.Username(node.Username);
            host.Password(node.Password);
        });
    }
}
