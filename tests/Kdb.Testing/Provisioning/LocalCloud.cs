using System.Globalization;
using System.Net;
using System.Text.Json;
using Kdb.Testing.Cloud;
using Kdb.Testing.EndToEnd;
using Kdb.Testing.Postgres;
using Kdb.Testing.Processes;

namespace Kdb.Testing.Provisioning;

/// <summary>
/// The embedded local cloud as <c>./kdb up</c> runs it, minus proxy and portal (a <see cref="WholeCloud"/>): a real control
/// plane process (in-memory bus, so the provisioning consumers run inside it) on a fresh database of the private
/// PostgreSQL, and clustered node processes (three unless a subclass says otherwise) that heartbeat to it and trust its
/// JWKS. Tests and the provisioning benchmark drive it through the public REST API, like a user.
/// </summary>
public class LocalCloud(PostgresFixture postgres) : IAsyncLifetime
{
    public const string NodeSecret = CloudApi.NodeSecret;
    public const string ProvisioningSecret = CloudApi.ProvisioningSecret;
    public const string ProxySecret = CloudApi.ProxySecret;
    public const string UserPassword = CloudApi.UserPassword;
    /// <summary>The <c>kdb-operator</c> service client's secret (operator endpoints such as database moves).</summary>
    public const string OperatorSecret = "oper-secret-0123456789abcdefghijklmnopqrstuvwxyz";

    private TestDatabase? _database;
    private WholeCloud? _cloud;

    private WholeCloud Cloud => _cloud ?? throw new InvalidOperationException("the local cloud has not started");

    public HttpClient Http => Cloud.Http;

    public string ControlPlaneUrl => Cloud.ControlPlaneUrl;

    public string ObjectStorePath => Cloud.ObjectStorePath;

    /// <summary>The control plane's own PostgreSQL database (for tests that move recorded times back).</summary>
    public string ControlPlaneDatabase => _database?.ConnectionString ?? throw new InvalidOperationException("the local cloud has not started");

    /// <summary>The node processes, in start order.</summary>
    public IReadOnlyList<CloudNode> Nodes => Cloud.Nodes;

    /// <summary>How many node processes start with the cloud.</summary>
    protected virtual int NodeCount => 3;

    /// <summary>Extra control-plane settings (for example a short <c>Nodes:DeadAfter</c>).</summary>
    protected virtual IEnumerable<string> ControlPlaneArguments => [];

    /// <summary>Log level of the launched processes (Warning keeps test logs small).</summary>
    protected virtual string LogLevel => "Warning";

    public async Task InitializeAsync()
    {
        _database = await postgres.CreateDatabaseAsync("prov");
        _cloud = await WholeCloud.StartAsync(_database.ConnectionString, new WholeCloudOptions
        {
            Nodes = NodeCount,
            // Deleted databases past their retention window are purged within a second (tests move the deletion back in time).
            ControlPlaneArguments = ["--RateLimits:TokenRequestsPerMinute=100000", "--RateLimits:ApiRequestsPerMinute=1000000", "--Databases:PurgeInterval=00:00:01",
                "--ServiceClients:Operator:Secret=" + OperatorSecret, .. ControlPlaneArguments],
            LogLevel = LogLevel,
            AliveNodesSeconds = 60,
            DirectoryPrefix = "kdb-prov-",
        });
    }

    public async Task DisposeAsync()
    {
        if (_cloud is not null)
        {
            await _cloud.DisposeAsync();
        }
        if (_database is not null)
        {
            await _database.DisposeAsync();
        }
    }

    /// <summary>The last lines of the control plane's and the nodes' logs, for a failing test's message.</summary>
    public string Logs => Cloud.Logs;

    public Task<string> ServiceTokenAsync(string clientId, string secret) => Cloud.Api.ServiceTokenAsync(clientId, secret);

    public Task WaitForAliveNodesAsync(int count) => Cloud.Api.WaitForAliveNodesAsync(count);

    /// <summary>Signs a new user up; returns their management token and personal org.</summary>
    public Task<(string Token, string OrgId)> UserAsync(string name) => Cloud.Api.UserAsync(name);

    public Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpMethod method, string path, string? token, object? body = null) =>
        Cloud.Api.SendAsync(method, path, token, body);

    /// <summary>The control plane's node list (<c>GET /internal/v1/nodes</c>) items.</summary>
    public async Task<List<JsonElement>> NodeListAsync()
    {
        var (_, body) = await SendAsync(HttpMethod.Get, "/internal/v1/nodes", await ServiceTokenAsync("kdb-provisioning", ProvisioningSecret));
        return [.. body.GetProperty("items").EnumerateArray()];
    }

    /// <summary>A database's placement (<c>GET /internal/v1/placements/{id}</c>).</summary>
    public async Task<JsonElement> PlacementAsync(string databaseId)
    {
        var (status, placement) = await SendAsync(HttpMethod.Get, $"/internal/v1/placements/{databaseId}", await ServiceTokenAsync("kdb-provisioning", ProvisioningSecret));
        Assert.True(status == HttpStatusCode.OK, $"{(int)status} {placement}");
        return placement;
    }

    /// <summary>Polls a resource until <paramref name="done"/> holds (generous deadline: never fails on a slow machine alone).</summary>
    public Task<JsonElement> WaitForAsync(string path, string token, Func<JsonElement, bool> done, int seconds = 90) =>
        Cloud.Api.WaitForAsync(path, token, done, seconds);

    /// <summary>Creates a database through the REST API and waits until it is ready; returns its id and owner password.</summary>
    public async Task<(string DatabaseId, string Password)> CreateReadyDatabaseAsync(string token, string orgId, string name)
    {
        var database = await Cloud.Api.CreateReadyDatabaseAsync(token, orgId, name, seconds: 90);
        return (database.Id, database.Password);
    }

    /// <summary>The PostgreSQL port of the node holding a database's replica, from its placement.</summary>
    public async Task<int> ReplicaPgPortAsync(string databaseId)
    {
        var placement = await PlacementAsync(databaseId);
        var endpoint = placement.GetProperty("replicas")[0].GetProperty("pgEndpoint").GetString()!;
        return int.Parse(endpoint[(endpoint.LastIndexOf(':') + 1)..], CultureInfo.InvariantCulture);
    }

    /// <summary>Retries <paramref name="check"/> until it passes; past the deadline its failure is the test's.</summary>
    public static async Task EventuallyAsync(Func<Task> check, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            try
            {
                await check();
                return;
            }
            catch (Exception) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
            }
        }
    }

    public static string ConnectionString(int port, string database, string password, string user = "owner") =>
        $"Host=127.0.0.1;Port={port};Username={user};Password={password};Database={database};Timeout=30;Command Timeout=60;Pooling=false";
}

/// <summary>
/// One node process of a <see cref="WholeCloud"/>: fixed ports and data directory, so it can be killed and restarted
/// with what it had.
/// </summary>
public sealed class CloudNode : ServiceProcess
{
    internal CloudNode(int index, string dataDirectory, IReadOnlyList<int> ports, ProcessSpec spec)
        : base(spec)
    {
        Index = index;
        DataDirectory = dataDirectory;
        Ports = ports;
    }

    public int Index { get; }

    public string DataDirectory { get; }

    /// <summary>PostgreSQL, internal, HTTP and management ports.</summary>
    public IReadOnlyList<int> Ports { get; }

    public int PgPort => Ports[0];

    public string InternalUrl => "http://127.0.0.1:" + Ports[1].ToString(CultureInfo.InvariantCulture);

    public string NodeId => File.ReadAllText(Path.Combine(DataDirectory, "node-id")).Trim();

    /// <summary>Starts a killed node again on its data directory and ports.</summary>
    public Task RestartAsync() => StartAsync();
}
