using Kdb.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);
builder.AddKdbServiceDefaults("proxy");

// Tenants reach the PostgreSQL and HTTP ports; health and metrics answer only on the management port.
var managementPort = builder.Configuration.GetPort("Proxy:ManagementPort", 6490);
builder.ListenOn(managementPort);

var controlPlane = builder.Configuration["ControlPlane:Url"] ?? "http://127.0.0.1:5100";
builder.Services.AddHealthChecks().AddHttpDependency("controlplane", new Uri(new Uri(controlPlane), "/health/live"));

var app = builder.Build();
app.MapKdbManagementEndpoints(managementPort);
app.Run();

/// <summary>Entry point, visible to WebApplicationFactory in tests.</summary>
public partial class Program;
