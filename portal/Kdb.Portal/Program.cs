using Kdb.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);
builder.AddKdbServiceDefaults("portal");
builder.ListenOn(builder.Configuration.GetPort("Portal:Port", 5200));

var controlPlane = builder.Configuration["ControlPlane:Url"] ?? "http://127.0.0.1:5100";
builder.Services.AddHealthChecks().AddHttpDependency("controlplane", new Uri(new Uri(controlPlane), "/health/live"));

var app = builder.Build();
app.MapKdbManagementEndpoints();
app.Run();

/// <summary>Entry point, visible to WebApplicationFactory in tests.</summary>
public partial class Program;
