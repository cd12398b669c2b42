using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
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
    public const string NodeSecret = "node-secret-0123456789abcdefghijklmnopqrstuvwxyz";
    public const string ProvisioningSecret = "prov-secret-0123456789abcdefghijklmnopqrstuvwxyz";
    public const string ProxySecret = "proxy-secret-0123456789abcdefghijklmnopqrstuvwxyz";
    public const string UserPassword = "long enough password";

    private readonly string _root = Path.Combine(Path.GetTempPath(), "kdb-prov-" + Guid.NewGuid().ToString("N"));
    private readonly List<CloudNode> _nodes = [];
    private TestDatabase? _database;
    private ILaunchedProcess? _controlPlane;

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
        var spec = ProcessSpec.DotNet(
            RepoPaths.BuiltAssembly("controlplane/Kdb.ControlPlane"),
            [
                "--ControlPlane:Port=" + port.ToString(CultureInfo.InvariantCulture),
                "--Postgres:ConnectionString=" + _database.ConnectionString,
                "--Tokens:Issuer=" + ControlPlaneUrl,
                "--ServiceClients:Node:Secret=" + NodeSecret,
                "--ServiceClients:Provisioning:Secret=" + ProvisioningSecret,
                "--ServiceClients:Proxy:Secret=" + ProxySecret,
                "--Bus:Transport=inmemory",
                "--Provisioning:ObjectStorePath=" + ObjectStorePath,
                "--Provisioning:UsageInterval=00:00:01",
                "--Operations:ReconcileInterval=00:00:01",
                "--Operations:RepublishAfter=00:00:20",
                "--Operations:Timeout=00:02:00",
                "--Backups:SchedulerInterval=01:00:00",
                "--Backups:RetentionInterval=01:00:00",
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
        var index = node.Index;
        string P(int p) => p.ToString(CultureInfo.InvariantCulture);
        return ProcessSpec.DotNet(
            RepoPaths.BuiltAssembly("dataplane/Kdb.Node"),
            "--Node:DataDirectory=" + node.DataDirectory,
            "--Node:PgPort=" + P(ports[0]),
            "--Node:InternalPort=" + P(ports[1]),
            "--Node:HttpPort=" + P(ports[2]),
            "--Node:ManagementPort=" + P(ports[3]),
            "--Node:DevelopmentLoopbackAuth=true",
            "--Node:HeartbeatInterval=00:00:01",
            "--ControlPlane:Url=" + ControlPlaneUrl,
            "--ServiceClient:Id=kdb-node",
            "--ServiceClient:Secret=" + NodeSecret,
            "--Tokens:Issuer=" + ControlPlaneUrl,
            "--Tokens:AllowHttpIssuer=true") with
        {
            Name = "node" + P(index),
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

    public async Task<string> ServiceTokenAsync(string clientId, string secret)
    {
        using var token = await Http.PostAsync(new Uri(ControlPlaneUrl + "/connect/token"), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = clientId,
            ["client_secret"] = secret,
        }));
        token.EnsureSuccessStatusCode();
        return (await token.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("access_token").GetString()!;
    }

    public async Task WaitForAliveNodesAsync(int count)
    {
        var token = await ServiceTokenAsync("kdb-provisioning", ProvisioningSecret);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var (_, body) = await SendAsync(HttpMethod.Get, "/internal/v1/nodes", token);
            if (body.ValueKind == JsonValueKind.Object && body.GetProperty("items").EnumerateArray().Count(n => n.GetProperty("status").GetString() == "alive") >= count)
            {
                return;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("nodes did not report alive: " + body + "\n" + Logs);
            }
            await Task.Delay(200);
        }
    }

    /// <summary>Signs a new user up; returns their management token and personal org.</summary>
    public async Task<(string Token, string OrgId)> UserAsync(string name)
    {
        var email = $"{name}-{Guid.NewGuid().ToString("N")[..8]}@example.com";
        var (status, _) = await SendAsync(HttpMethod.Post, "/v1/signup", null, new { email, password = UserPassword, name });
        Assert.Equal(HttpStatusCode.Created, status);
        using var token = await Http.PostAsync(new Uri(ControlPlaneUrl + "/connect/token"), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "password",
            ["username"] = email,
            ["password"] = UserPassword,
        }));
        token.EnsureSuccessStatusCode();
        var access = (await token.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("access_token").GetString()!;
        var (_, me) = await SendAsync(HttpMethod.Get, "/v1/me", access);
        return (access, me.GetProperty("orgs")[0].GetProperty("id").GetString()!);
    }

    public async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpMethod method, string path, string? token, object? body = null)
    {
        using var request = new HttpRequestMessage(method, ControlPlaneUrl + path);
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }
        using var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

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
    public async Task<JsonElement> WaitForAsync(string path, string token, Func<JsonElement, bool> done, int seconds = 90)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            var (status, body) = await SendAsync(HttpMethod.Get, path, token);
            if (status == HttpStatusCode.OK && done(body))
            {
                return body;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"GET {path}: {(int)status} {body}\n{Logs}");
            }
            await Task.Delay(100);
        }
    }

    /// <summary>Creates a database through the REST API and waits until it is ready; returns its id and owner password.</summary>
    public async Task<(string DatabaseId, string Password)> CreateReadyDatabaseAsync(string token, string orgId, string name)
    {
        var (status, created) = await SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name });
        Assert.True(status == HttpStatusCode.Accepted, $"{(int)status} {created}");
        var id = created.GetProperty("database").GetProperty("id").GetString()!;
        await WaitForAsync($"/v1/databases/{id}", token, d => d.GetProperty("status").GetString() is "ready" or "failed");
        var (_, database) = await SendAsync(HttpMethod.Get, $"/v1/databases/{id}", token);
        Assert.True(database.GetProperty("status").GetString() == "ready", database + "\n" + Logs);
        return (id, created.GetProperty("credentials").GetProperty("password").GetString()!);
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
        var members = ProcessTree.Members(_process.ProcessId);
        ProcessTree.Kill(members);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (members.Any(ProcessTree.IsAlive) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }
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
