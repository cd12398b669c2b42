using System.Globalization;
using System.Net;
using System.Text.Json;
using Kdb.Testing.Cloud;
using Kdb.Testing.Hosting;
using Kdb.Testing.Ports;
using Kdb.Testing.Postgres;
using Kdb.Testing.Processes;
using Npgsql;

namespace Kdb.Testing.EndToEnd;

/// <summary>
/// The whole local cloud as <c>./kdb up</c> lays it out, on free loopback ports and private directories: a private
/// PostgreSQL, the control plane with embedded provisioning (in-memory bus), three clustered nodes that heartbeat
/// to it, and the proxy following its route table. TLS is off everywhere (loopback, development flags). Every
/// service is a <see cref="ServiceProcess"/> a fault test can kill, pause or restart. Users drive it through the
/// REST API and reach their databases only through the proxy, with their own credentials.
/// </summary>
public sealed class EndToEndCloud : IAsyncLifetime
{
    public const string NodeSecret = CloudApi.NodeSecret;
    public const string ProvisioningSecret = CloudApi.ProvisioningSecret;
    public const string ProxySecret = CloudApi.ProxySecret;
    public const string UserPassword = CloudApi.UserPassword;

    private readonly string _root = Path.Combine(Path.GetTempPath(), "kdb-e2e-" + Guid.NewGuid().ToString("N"));
    private readonly Dictionary<string, ServiceProcess> _nodesById = new(StringComparer.Ordinal);
    private PostgresServer? _postgres;
    private CloudApi _api = null!;

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(60) };

    public string ControlPlaneUrl { get; private set; } = null!;

    public ServiceProcess ControlPlane { get; private set; } = null!;

    public IReadOnlyList<ServiceProcess> Nodes { get; private set; } = [];

    public ServiceProcess Proxy { get; private set; } = null!;

    public int ProxyPgPort { get; private set; }

    public IEnumerable<ServiceProcess> Services => [ControlPlane, .. Nodes, Proxy];

    /// <summary>The last lines of every service's log, for a failing check's message.</summary>
    public string Logs => string.Join("\n", Services.Select(s => $"==== {s.Name}\n{(s.Log.Length > 6000 ? s.Log[^6000..] : s.Log)}"));

    public async Task InitializeAsync()
    {
        _postgres = await PostgresServer.StartAsync(CancellationToken.None);
        await using (var conn = new NpgsqlConnection(_postgres.ConnectionString("postgres")))
        {
            await conn.OpenAsync();
            await using var create = new NpgsqlCommand("CREATE DATABASE kdb_e2e", conn);
            await create.ExecuteNonQueryAsync();
        }

        var port = FreePorts.Allocate();
        ControlPlaneUrl = "http://127.0.0.1:" + P(port);
        _api = new CloudApi(Http, ControlPlaneUrl, () => Logs);
        ControlPlane = new ServiceProcess(ProcessSpec.DotNet(
            RepoPaths.BuiltAssembly("controlplane/Kdb.ControlPlane"),
            [
                .. CloudSpecs.ControlPlaneArguments(port, _postgres.ConnectionString("kdb_e2e"), ControlPlaneUrl, Path.Combine(_root, "objects")),
                "--RateLimits:TokenRequestsPerMinute=1000000",
                // Scheduled backups (cron's finest step is a minute) are taken within a second of falling due, and
                // restore drills verify completed backups within seconds rather than daily.
                "--Backups:SchedulerInterval=00:00:01",
                "--Backups:DrillInterval=00:00:05",
            ]) with
        {
            Name = "controlplane",
            Environment = Quiet(new() { ["DOTNET_ENVIRONMENT"] = "Production" }),
            Readiness = Readiness.Http(ControlPlaneUrl + "/health/ready"),
            StopGracePeriod = TimeSpan.FromSeconds(5),
        });
        await ControlPlane.StartAsync();

        Nodes = [.. Enumerable.Range(1, 3).Select(NodeService)];
        await Task.WhenAll(Nodes.Select(n => n.StartAsync()));
        for (var i = 0; i < Nodes.Count; i++)
        {
            _nodesById[(await File.ReadAllTextAsync(Path.Combine(_root, "node" + P(i + 1), "node-id"))).Trim()] = Nodes[i];
        }
        await WaitForAliveNodesAsync(3);

        ProxyPgPort = FreePorts.Allocate();
        var proxyPorts = FreePorts.Allocate(2);
        Proxy = new ServiceProcess(ProcessSpec.DotNet(
            RepoPaths.BuiltAssembly("proxy/Kdb.Proxy"),
            "--Proxy:PgPort=" + P(ProxyPgPort),
            "--Proxy:HttpPort=" + P(proxyPorts[0]),
            "--Proxy:ManagementPort=" + P(proxyPorts[1]),
            "--Proxy:ProxyId=e2e-proxy",
            "--Proxy:DevelopmentLoopbackAuth=true",
            "--Proxy:UsageInterval=00:00:01",
            "--Proxy:RouteMissRetry=00:00:01",
            // A rolling restart should not wait out the default 10 s drain of sessions that will reconnect anyway.
            "--Proxy:DrainTimeout=00:00:02",
            "--ControlPlane:Url=" + ControlPlaneUrl,
            "--ServiceClient:Id=kdb-proxy",
            "--ServiceClient:Secret=" + ProxySecret,
            "--Tokens:Issuer=" + ControlPlaneUrl,
            "--Tokens:AllowHttpIssuer=true") with
        {
            Name = "proxy",
            Environment = Quiet([]),
            Readiness = Readiness.Http($"http://127.0.0.1:{P(proxyPorts[1])}/health/ready"),
            StopGracePeriod = TimeSpan.FromSeconds(10),
        });
        await Proxy.StartAsync();
    }

    private ServiceProcess NodeService(int index)
    {
        var ports = FreePorts.Allocate(4);
        return new ServiceProcess(ProcessSpec.DotNet(
            RepoPaths.BuiltAssembly("dataplane/Kdb.Node"),
            CloudSpecs.NodeArguments(Path.Combine(_root, "node" + P(index)), ports, ControlPlaneUrl)) with
        {
            Name = "node" + P(index),
            Environment = Quiet([]),
            Readiness = Readiness.All(Readiness.Tcp(ports[0]), Readiness.Tcp(ports[1])),
            StopGracePeriod = TimeSpan.FromSeconds(5),
        });
    }

    public async Task DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        foreach (var service in new[] { Proxy }.Concat(Nodes).Append(ControlPlane))
        {
            if (service is not null)
            {
                await service.DisposeAsync();
            }
        }
        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
        }
        Http.Dispose();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>An Npgsql connection string through the proxy (plaintext on loopback, no pooling: every fault is seen).</summary>
    public string ProxyConnectionString(string databaseId, string password, string user = "owner") =>
        $"Host=127.0.0.1;Port={P(ProxyPgPort)};Username={user};Password={password};Database={databaseId};Timeout=15;Command Timeout=30;Pooling=false;SSL Mode=Disable;Gss Encryption Mode=Disable";

    /// <summary>The node that leads a database's group, as the node tells the proxy (<c>kdb_leader</c>).</summary>
    public async Task<ServiceProcess> LeaderOfAsync(string databaseId, string password)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                await using var conn = new NpgsqlConnection(ProxyConnectionString(databaseId, password));
                await conn.OpenAsync();
                if (conn.PostgresParameters.TryGetValue("kdb_leader", out var id) && _nodesById.TryGetValue(id, out var node) && node.Running)
                {
                    return node;
                }
            }
            catch (NpgsqlException) when (DateTime.UtcNow < deadline)
            {
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"no leader reported for {databaseId}\n{Logs}");
            }
            await Task.Delay(200);
        }
    }

    public Task<string> ServiceTokenAsync(string clientId, string secret) => _api.ServiceTokenAsync(clientId, secret);

    public Task WaitForAliveNodesAsync(int count) => _api.WaitForAliveNodesAsync(count, seconds: 90);

    /// <summary>Signs a new user up; returns their management token and personal org.</summary>
    public Task<(string Token, string OrgId)> UserAsync(string name) => _api.UserAsync(name);

    public Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpMethod method, string path, string? token, object? body = null) =>
        _api.SendAsync(method, path, token, body);

    /// <summary>Polls a resource until <paramref name="done"/> holds; the generous deadline never fails a slow machine alone.</summary>
    public Task<JsonElement> WaitForAsync(string path, string token, Func<JsonElement, bool> done, int seconds = 120, int pollMs = 100) =>
        _api.WaitForAsync(path, token, done, seconds, pollMs);

    /// <summary>Creates a database and waits until it is <c>ready</c>, polling often so <see cref="CloudDatabase.CreateToReady"/> is tight.</summary>
    public Task<CloudDatabase> CreateReadyDatabaseAsync(string token, string orgId, string name) =>
        _api.CreateReadyDatabaseAsync(token, orgId, name, pollMs: 20);

    private static Dictionary<string, string?> Quiet(Dictionary<string, string?> environment)
    {
        environment["Logging__LogLevel__Default"] = "Warning";
        environment["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Information";
        return environment;
    }

    private static string P(int value) => value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>A database a user created through the REST API, with the owner password it came with.</summary>
public sealed record CloudDatabase(string Id, string OrgId, string Token, string Password, TimeSpan CreateToReady)
{
    /// <summary>The control plane's answer to the create request (database and credentials).</summary>
    public JsonElement Created { get; init; }
}
