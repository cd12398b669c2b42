using Kdb.Messaging;
using Kdb.Provisioning;
using Kdb.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);
builder.AddKdbServiceDefaults("provisioning");
builder.ListenOn(builder.Configuration.GetPort("Provisioning:Port", 5300));

var controlPlane = builder.Configuration["ControlPlane:Url"] ?? "http://127.0.0.1:5100";
builder.Services.AddHealthChecks().AddHttpDependency("controlplane", new Uri(new Uri(controlPlane), "/health/live"));
builder.Services.AddKdbBus(builder.Configuration, bus => bus.AddProvisioningConsumers());

var app = builder.Build();
app.MapKdbManagementEndpoints();
app.Run();

/// <summary>Entry point, visible to WebApplicationFactory in tests.</summary>
public partial class Program;
