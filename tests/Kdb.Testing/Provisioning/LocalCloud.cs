using System.Globalization;
using System.Net;
using System.Text.Json;
using Kdb.Testing.Cloud;
using Kdb.Testing.Hosting;
using Kdb.Testing.Ports;
using Kdb.Testing.Postgres;
using Kdb.Testing.Processes;
using Npgsql;

namespace Kdb.Testing.Provisioning;

/// <summary>
/// The embedded local cloud as <c>./kdb up</c> runs it, minus proxy and portal: a real control plane process
/// (in-memory bus, so the provisioning consumers run inside it) on a fresh database of the private PostgreSQL,
/// and clustered node processes (three unless a subclass says otherwise) that heartbeat to it and trust its JWKS.
/// Tests and the provisioning benchmark drive it through the public REST API, like a user.
/// </summary>
public class LocalCloud(PostgresFixture postgres) : IAsyncLifetime
{
    public const string NodeSecret = CloudApi.NodeSecret;
    public const string ProvisioningSecret = CloudApi.ProvisioningSecret;
    public const string ProxySecret = CloudApi.ProxySecret;
    public const string UserPassword = CloudApi.UserPassword;

    private readonly string _root = Path.Combine(Path.GetTempPath(), "kdb-prov-" + Guid.NewGuid().ToString("N"));
    private readonly List<CloudNode> _nodes = [];
    private TestDatabase? _database;
    private ILaunchedProcess? _controlPlane;
    private CloudApi _api = null!;

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(60) };

    public string ControlPlaneUrl { get; private set; } = null!;

    public string ObjectStorePath => Path.Combine(_root, "objects");

    /// <summary>The node processes, in start order.</summary>
    public IReadOnlyList<CloudNode> Nodes => _nodes;

    /// <summary>How many node processes start with the cloud.</summary>
    protected virtual int NodeCount => 3;

    /// <summary>Extra control-plane settings (for example a short <c>Nodes:DeadAfter</c>).</summary>
    protected virtual IEnumerable<string> ControlPlaneArguments => [];

    /// <summary>Log level of the launched processes (Warning keeps test logs small).</summary>
    protected virtual string LogLevel => "Warning";

    public async Task InitializeAsync()
    {
        _database = await postgres.CreateDatabaseAsync("prov");
        var port = FreePorts.Allocate();
        ControlPlaneUrl = $"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}";
        _api = new CloudApi(Http, ControlPlaneUrl, () => Logs);
        var spec = ProcessSpec.DotNet(
            RepoPaths.BuiltAssembly("controlplane/Kdb.ControlPlane"),
            [
                .. CloudSpecs.ControlPlaneArguments(port, _database.ConnectionString, ControlPlaneUrl, ObjectStorePath),
                "--RateLimits:TokenRequestsPerMinute=100000",
                "--RateLimits:ApiRequestsPerMinute=1000000",
                .. ControlPlaneArguments,
            ]) with
        {
            Name = "controlplane",
            Environment = new Dictionary<string, string?> { ["Logging__LogLevel__Default"] = LogLevel, ["DOTNET_ENVIRONMENT"] = "Production" },
            Readiness = Readiness.Http(ControlPlaneUrl + "/health/ready"),
            StopGracePeriod = TimeSpan.FromSeconds(5),
        };
        _controlPlane = await ProcessLauncher.StartAsync(spec);
        for (var i = 1; i <= NodeCount; i++)
        {
            _nodes.Add(new CloudNode(i, Path.Combine(_root, "node" + i.ToString(CultureInfo.InvariantCulture))));
        }
        await Task.WhenAll(_nodes.Select(StartNodeAsync));
        await WaitForAliveNodesAsync(NodeCount);
    }

    private Task StartNodeAsync(CloudNode node) => node.StartAsync(NodeSpec(node));

    private ProcessSpec NodeSpec(CloudNode node)
    {
        var ports = node.Ports;
        return ProcessSpec.DotNet(
            RepoPaths.BuiltAssembly("dataplane/Kdb.Node"),
            CloudSpecs.NodeArguments(node.DataDirectory, ports, ControlPlaneUrl)) with
        {
            Name = "node" + node.Index.ToString(CultureInfo.InvariantCulture),
            Environment = new Dictionary<string, string?> { ["Logging__LogLevel__Default"] = LogLevel },
            Readiness = Readiness.All(Readiness.Tcp(ports[0]), Readiness.Tcp(ports[1])),
            StopGracePeriod = TimeSpan.FromSeconds(5),
        };
    }

    public async Task DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        foreach (var n in _nodes)
        {
            await n.DisposeAsync();
        }
        if (_controlPlane is not null)
        {
            await _controlPlane.DisposeAsync();
        }
        if (_database is not null)
        {
            await _database.DisposeAsync();
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

    /// <summary>The control plane's and the nodes' logs, for a failing test's message.</summary>
    public string Logs
    {
        get
        {
            var all = string.Join("\n", new[] { _controlPlane!.Log }.Concat(_nodes.Select(n => n.Log)));
            return all.Length > 20000 ? all[^20000..] : all;
        }
    }

    public Task<string> ServiceTokenAsync(string clientId, string secret) => _api.ServiceTokenAsync(clientId, secret);

    public Task WaitForAliveNodesAsync(int count) => _api.WaitForAliveNodesAsync(count);

    /// <summary>Signs a new user up; returns their management token and personal org.</summary>
    public Task<(string Token, string OrgId)> UserAsync(string name) => _api.UserAsync(name);

    public Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpMethod method, string path, string? token, object? body = null) =>
        _api.SendAsync(method, path, token, body);

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
        _api.WaitForAsync(path, token, done, seconds);

    /// <summary>Creates a database through the REST API and waits until it is ready; returns its id and owner password.</summary>
    public async Task<(string DatabaseId, string Password)> CreateReadyDatabaseAsync(string token, string orgId, string name)
    {
        var database = await _api.CreateReadyDatabaseAsync(token, orgId, name, seconds: 90);
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

/// <summary>One node process of a <see cref="LocalCloud"/>: fixed ports and data directory, so it can be killed and restarted.</summary>
public sealed class CloudNode(int index, string dataDirectory) : IAsyncDisposable
{
    private ILaunchedProcess? _process;
    private ProcessSpec? _spec;

    public int Index { get; } = index;
    public string DataDirectory { get; } = dataDirectory;

    /// <summary>PostgreSQL, internal, HTTP and management ports.</summary>
    public IReadOnlyList<int> Ports { get; } = FreePorts.Allocate(4);

    public int PgPort => Ports[0];
    public string InternalUrl => "http://127.0.0.1:" + Ports[1].ToString(CultureInfo.InvariantCulture);
    public string NodeId => File.ReadAllText(Path.Combine(DataDirectory, "node-id")).Trim();
    public bool Running => _process is { HasExited: false };
    public string Log => _process?.Log ?? string.Empty;

    internal async Task StartAsync(ProcessSpec spec)
    {
        _spec = spec;
        _process = await ProcessLauncher.StartAsync(spec);
    }

    /// <summary>Starts a killed node again on its data directory and ports.</summary>
    public Task RestartAsync() => StartAsync(_spec ?? throw new InvalidOperationException("the node never started"));

    /// <summary>SIGKILL of the node's whole process tree: no shutdown hook runs, nothing is flushed.</summary>
    public async Task KillAsync()
    {
        if (_process is null)
        {
            return;
        }
        await ProcessTree.KillAndWaitAsync(_process.ProcessId);
        await _process.DisposeAsync();
        _process = null;
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is not null)
        {
            await _process.DisposeAsync();
            _process = null;
        }
    }
}
