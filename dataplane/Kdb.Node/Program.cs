using Kdb.Node;
using Kdb.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);
builder.AddKdbServiceDefaults("node");

// Node N listens on 7000+N (PostgreSQL), 7100+N (internal), 7200+N (HTTP data API), 7300+N (management).
var index = builder.Configuration.GetValue("Node:Index", 1);
var managementPort = builder.Configuration.GetPort("Node:ManagementPort", 7300 + index);
builder.ListenOn(managementPort);

var dataDirectory = Path.GetFullPath(builder.Configuration["Node:DataDirectory"] ?? Path.Combine(".kdb", "nodes", index.ToString(System.Globalization.CultureInfo.InvariantCulture)));
var identity = NodeIdentity.LoadOrCreate(dataDirectory);
builder.Services.AddSingleton(identity);
builder.Services.AddHealthChecks()
    .Add(new Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckRegistration(
        "data-directory", _ => new WritableDirectoryHealthCheck(dataDirectory), Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Unhealthy, [ServiceDefaultsExtensions.ReadyTag]));

var app = builder.Build();
app.Logger.LogInformation("Node {NodeId} (index {Index}) serving from {DataDirectory}", identity.NodeId, index, dataDirectory);
app.MapKdbManagementEndpoints(managementPort);
app.Run();

/// <summary>Entry point, visible to WebApplicationFactory in tests.</summary>
public partial class Program;
