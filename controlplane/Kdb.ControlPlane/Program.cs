using Kdb.ControlPlane;
using Kdb.Messaging;
using Kdb.Provisioning;
using Kdb.ServiceDefaults;
using Microsoft.Extensions.Diagnostics.HealthChecks;

var builder = WebApplication.CreateBuilder(args);
builder.AddKdbServiceDefaults("controlplane");
builder.ListenOn(builder.Configuration.GetPort("ControlPlane:Port", 5100));

var postgres = builder.Configuration["Postgres:ConnectionString"];
if (string.IsNullOrWhiteSpace(postgres))
{
    throw new InvalidOperationException("Postgres:ConnectionString (env KDB_Postgres__ConnectionString) is required.");
}

builder.Services.AddHealthChecks().Add(new HealthCheckRegistration(
    "postgres", _ => new PostgresHealthCheck(postgres), HealthStatus.Unhealthy, [ServiceDefaultsExtensions.ReadyTag]));

// In the embedded deployment the provisioning consumers share the control plane's in-memory bus:
// one process cannot hear another's in-memory bus. With RabbitMQ they run in their own worker.
var busOptions = builder.Configuration.GetSection(BusOptions.Section).Get<BusOptions>() ?? new BusOptions();
builder.Services.AddKdbBus(builder.Configuration, bus =>
{
    if (!busOptions.IsRabbitMq)
    {
        bus.AddProvisioningConsumers();
    }
});

var app = builder.Build();
app.MapKdbManagementEndpoints();
app.Run();

/// <summary>Entry point, visible to WebApplicationFactory in tests.</summary>
public partial class Program;
