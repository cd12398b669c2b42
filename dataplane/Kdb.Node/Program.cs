using Kdb.Node;
using Kdb.Node.Cluster;
using Kdb.Node.ControlPlane;
using Kdb.Node.Standalone;
using Kdb.ServiceDefaults;

// `--standalone` is short for `--Node:Mode=standalone`.
args = [.. args.Select(a => a == "--standalone" ? "--Node:Mode=standalone" : a)];
var builder = WebApplication.CreateBuilder(args);
builder.AddKdbServiceDefaults("node");
builder.UseEpollSocketCompletions("Node:EpollSocketCompletions");

// Node N listens on 7000+N (PostgreSQL), 7100+N (internal), 7200+N (HTTP data API), 7300+N (management).
var index = builder.Configuration.GetValue("Node:Index", 1);
var managementPort = builder.Configuration.GetPort("Node:ManagementPort", 7300 + index);
builder.ListenOn(managementPort);

var dataDirectory = Path.GetFullPath(builder.Configuration["Node:DataDirectory"] ?? Path.Combine(".kdb", "nodes", index.ToString(System.Globalization.CultureInfo.InvariantCulture)));
var identity = NodeIdentity.LoadOrCreate(dataDirectory);
builder.Services.AddSingleton(identity);
var pgPort = builder.Configuration.GetPort("Node:PgPort", 7000 + index);
var standalone = StandaloneHosting.IsStandalone(builder.Configuration) ? builder.AddStandaloneNode(dataDirectory, pgPort) : null;
var clusterPorts = new ClusterPorts(pgPort, builder.Configuration.GetPort("Node:InternalPort", 7100 + index), builder.Configuration.GetPort("Node:HttpPort", 7200 + index));
builder.Services.AddHealthChecks()
    .Add(new Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckRegistration(
        "data-directory", _ => new WritableDirectoryHealthCheck(dataDirectory), Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Unhealthy, [ServiceDefaultsExtensions.ReadyTag]));

// In the cloud a node reports itself to the control plane; a node without one configured runs alone.
var controlPlaneUrl = builder.Configuration["ControlPlane:Url"];
ServiceTokenClient? serviceTokens = null;
if (!string.IsNullOrEmpty(controlPlaneUrl))
{
    var serviceClient = builder.Configuration.GetSection("ServiceClient").Get<ServiceClientOptions>() ?? new ServiceClientOptions();
    serviceTokens = new ServiceTokenClient(new HttpClient { BaseAddress = new Uri(controlPlaneUrl), Timeout = TimeSpan.FromSeconds(5) }, serviceClient, TimeProvider.System);
}

// Without --standalone the node runs clustered: shard groups over Raft, created through the admin API.
var cluster = standalone is null ? builder.AddClusterNode(dataDirectory, identity, clusterPorts, serviceTokens) : null;
if (serviceTokens is not null)
{
    var host = builder.Configuration["Node:AdvertisedHost"] ?? builder.Configuration["BindAddress"] ?? "127.0.0.1";
    var interval = builder.Configuration.GetValue("Node:HeartbeatInterval", TimeSpan.FromSeconds(5));
    builder.Services.AddSingleton<HeartbeatStatus>();
    builder.Services.AddHttpClient("controlplane", c => { c.BaseAddress = new Uri(controlPlaneUrl!); c.Timeout = TimeSpan.FromSeconds(5); });
    builder.Services.AddSingleton(TimeProvider.System);
    builder.Services.AddHostedService(sp => new HeartbeatService(
        sp.GetRequiredService<IHttpClientFactory>().CreateClient("controlplane"),
        serviceTokens,
        identity,
        () => new HeartbeatBody($"{host}:{pgPort}", $"{host}:{clusterPorts.Internal}", $"http://{host}:{clusterPorts.Http}", 100, cluster is null ? [] : HeartbeatGroups(cluster)),
        sp.GetRequiredService<HeartbeatStatus>(),
        sp.GetRequiredService<TimeProvider>(),
        sp.GetRequiredService<ILogger<HeartbeatService>>(),
        interval));
}

var app = builder.Build();
app.Logger.LogInformation("Node {NodeId} (index {Index}) serving from {DataDirectory}", identity.NodeId, index, dataDirectory);
// With epoll socket completions an HTTP/1.1 request starts on the epoll thread that read it: every handler (data API,
// management, admin) starts on the thread pool instead, so none holds up the sockets that thread serves.
app.Use(static async (context, next) =>
{
    await Kdb.Node.Sql.PoolHop.IfOffPool();
    await next(context);
});
app.MapKdbManagementEndpoints(managementPort);
if (standalone is not null)
{
    app.Lifetime.ApplicationStopped.Register(standalone.Dispose);
    app.Logger.LogInformation(
        "Standalone node serving PostgreSQL on port {PgPort}: databases {Databases}, durability {Durability}",
        pgPort, string.Join(", ", standalone.Options.Databases.Select(d => d.Name)), standalone.Options.Durability);
}

if (cluster is not null)
{
    app.MapClusterEndpoints(cluster, clusterPorts);
    app.Logger.LogInformation("Clustered node {NodeId}: PostgreSQL {Pg}, internal {Internal}, HTTP {Http}; {Groups} shard group(s) recovered",
        identity.NodeId, clusterPorts.Pg, clusterPorts.Internal, clusterPorts.Http, cluster.Host.GroupIds.Count);
}

app.Run();

static IReadOnlyList<object> HeartbeatGroups(ClusterRuntime cluster)
{
    var groups = new List<object>();
    foreach (var id in cluster.Host.GroupIds)
    {
        if (cluster.Host.TryStatus(id) is not { } s)
        {
            // The group left this node since the listing.
            continue;
        }
        groups.Add(new
        {
            groupId = id.ToString(System.Globalization.CultureInfo.InvariantCulture),
            role = s.Role.ToString().ToLowerInvariant(),
            leaderNodeId = s.LeaderNodeId,
            term = s.Term,
            appliedIndex = s.AppliedIndex,
            databases = s.Databases,
        });
    }
    return groups;
}

/// <summary>Entry point, visible to WebApplicationFactory in tests.</summary>
public partial class Program;
