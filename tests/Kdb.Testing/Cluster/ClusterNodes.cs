using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using Google.Protobuf;
using Kdb.Node.Admin;
using Kdb.Node.Admin.Wire;
using Kdb.PgWire.Auth;
using Kdb.Testing.Hosting;
using Kdb.Testing.Ports;
using Kdb.Testing.Processes;
using Kdb.Testing.Tokens;
using Npgsql;

namespace Kdb.Testing.Cluster;

/// <summary>One clustered node process on free loopback ports with its own data directory.</summary>
public sealed class ClusterNodeProcess : IAsyncDisposable
{
    private ILaunchedProcess? _process;

    public ClusterNodeProcess(int index, string root)
    {
        Index = index;
        DataDirectory = Path.Combine(root, "node" + index.ToString(CultureInfo.InvariantCulture));
        PgPort = FreePorts.Allocate();
        InternalPort = FreePorts.Allocate();
        HttpPort = FreePorts.Allocate();
        ManagementPort = FreePorts.Allocate();
    }

    public int Index { get; }
    public string DataDirectory { get; }
    public int PgPort { get; }
    public int InternalPort { get; }
    public int HttpPort { get; }
    public int ManagementPort { get; }
    public string NodeId => File.ReadAllText(Path.Combine(DataDirectory, "node-id")).Trim();
    public string InternalUrl => $"http://127.0.0.1:{InternalPort}";
    public bool Running => _process is { HasExited: false };

    /// <summary>The OS process id while it runs (0 otherwise).</summary>
    public int ProcessId => _process?.ProcessId ?? 0;

    /// <summary>Extra command-line settings (for example <c>--Cluster:ReadMode=lease</c>).</summary>
    public IReadOnlyList<string> ExtraArguments { get; init; } = [];

    public async Task StartAsync(TestTokenIssuer issuer, string peerToken)
    {
        var spec = ProcessSpec.DotNet(
            RepoPaths.BuiltAssembly("dataplane/Kdb.Node"),
            [
                "--Node:DataDirectory=" + DataDirectory,
                "--Node:PgPort=" + PgPort.ToString(CultureInfo.InvariantCulture),
                "--Node:InternalPort=" + InternalPort.ToString(CultureInfo.InvariantCulture),
                "--Node:HttpPort=" + HttpPort.ToString(CultureInfo.InvariantCulture),
                "--Node:ManagementPort=" + ManagementPort.ToString(CultureInfo.InvariantCulture),
                "--Node:DevelopmentLoopbackAuth=true",
                "--Tokens:Issuer=" + issuer.Issuer,
                "--Tokens:JwksUri=" + issuer.JwksUri,
                "--Tokens:AllowHttpIssuer=true",
                "--Cluster:PeerToken=" + peerToken,
                .. ExtraArguments,
            ]) with
        {
            Name = "kdb-node" + Index.ToString(CultureInfo.InvariantCulture),
            Environment = new Dictionary<string, string?>
            {
                ["Logging__LogLevel__Default"] = "Warning",
                ["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Information",
            },
            Readiness = Readiness.All(Readiness.Tcp(PgPort), Readiness.Tcp(InternalPort)),
            StopGracePeriod = TimeSpan.FromSeconds(10),
        };
        _process = await ProcessLauncher.StartAsync(spec);
    }

    /// <summary>SIGKILL of the node and its wrappers (the launcher runs it under setsid and a shell): no shutdown hook runs.</summary>
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

    public string Log => _process?.Log ?? string.Empty;

    public async ValueTask DisposeAsync()
    {
        if (_process is not null)
        {
            await _process.DisposeAsync();
            _process = null;
        }
    }
}

/// <summary>
/// Three clustered node processes (real <c>Kdb.Node</c>, no <c>--standalone</c>) on loopback, a test token issuer whose JWKS
/// they trust, and admin access with an operator token. Use it as a collection fixture.
/// </summary>
public sealed class ThreeNodeCluster : IAsyncLifetime
{
    public const string OwnerPassword = "owner-pass-1";
    private readonly string _root = Path.Combine(Path.GetTempPath(), "kdb-cluster-" + Guid.NewGuid().ToString("N"));
    private readonly HttpClient _http = new(new SocketsHttpHandler()) { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact, Timeout = TimeSpan.FromSeconds(60) };
    private ulong _nextTenant = 1000;

    /// <summary>Settings every node gets on its command line (for example <c>--Cluster:ReadMode=lease</c>).</summary>
    public IReadOnlyList<string> ExtraArguments { get; init; } = [];

    public TestTokenIssuer Issuer { get; private set; } = null!;
    public List<ClusterNodeProcess> Nodes { get; } = [];
    public string OperatorToken { get; private set; } = null!;
    public string PeerToken { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Issuer = await TestTokenIssuer.StartAsync();
        OperatorToken = Issuer.MintServiceToken("kdb-operator", [KdbScopes.Operator, KdbScopes.Provisioning], TimeSpan.FromHours(2));
        PeerToken = Issuer.MintServiceToken("kdb-node", [KdbScopes.Node], TimeSpan.FromHours(2));
        for (var i = 1; i <= 3; i++)
        {
            Nodes.Add(new ClusterNodeProcess(i, _root) { ExtraArguments = ExtraArguments });
        }
        await Task.WhenAll(Nodes.Select(n => n.StartAsync(Issuer, PeerToken)));
    }

    public async Task DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        foreach (var n in Nodes)
        {
            await n.DisposeAsync();
        }
        await Issuer.DisposeAsync();
        _http.Dispose();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>Starts a stopped or killed node again on its data directory and ports.</summary>
    public Task RestartAsync(ClusterNodeProcess node) => node.StartAsync(Issuer, PeerToken);

    /// <summary>An admin API client for a node, with the operator token.</summary>
    public NodeAdminClient Admin(ClusterNodeProcess node) => new(_http, new Uri(node.InternalUrl), _ => ValueTask.FromResult(OperatorToken));

    public async Task<HttpResponseMessage> SendAsync(ClusterNodeProcess node, HttpMethod method, string path, IMessage? body = null, string? token = null)
    {
        using var request = new HttpRequestMessage(method, node.InternalUrl + path) { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        if (body is not null)
        {
            request.Content = new ByteArrayContent(body.ToByteArray());
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-protobuf");
        }
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token ?? OperatorToken);
        return await _http.SendAsync(request);
    }

    public async Task<T> CallAsync<T>(ClusterNodeProcess node, HttpMethod method, string path, IMessage? body, MessageParser<T> parser) where T : IMessage<T>
    {
        using var response = await SendAsync(node, method, path, body);
        var bytes = await response.Content.ReadAsByteArrayAsync();
        Assert.True(response.IsSuccessStatusCode, $"{method} {path} on node {node.Index}: {(int)response.StatusCode} {System.Text.Encoding.UTF8.GetString(bytes)}");
        return parser.ParseFrom(bytes);
    }

    /// <summary>Creates a group on all three nodes and waits for a leader.</summary>
    public async Task<ulong> CreateGroupAsync(ulong groupId)
    {
        var request = new CreateGroupRequest { GroupId = groupId };
        foreach (var n in Nodes)
        {
            request.Members.Add(new Member { NodeId = n.NodeId, InternalUrl = n.InternalUrl });
        }
        foreach (var n in Nodes)
        {
            await CallAsync(n, HttpMethod.Post, "/internal/v1/groups", request, GroupInfo.Parser);
        }
        await LeaderOfAsync(groupId);
        return groupId;
    }

    /// <summary>The node the group's replicas agree leads it (waits up to 30 s).</summary>
    public async Task<ClusterNodeProcess> LeaderOfAsync(ulong groupId, ClusterNodeProcess? notThis = null)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            foreach (var n in Nodes.Where(n => n.Running))
            {
                var status = await CallAsync(n, HttpMethod.Get, "/internal/v1/status", null, StatusResponse.Parser);
                var group = status.Groups.FirstOrDefault(g => g.GroupId == groupId);
                if (group is { Role: "leader" } && n != notThis)
                {
                    return n;
                }
            }
            Assert.True(DateTime.UtcNow < deadline, $"group {groupId} elected no leader");
            await Task.Delay(100);
        }
    }

    /// <summary>Creates a database with an owner role on a group (through any node: followers forward). Unless
    /// <paramref name="waitForEveryMember"/> is false, returns once every running member lists it.</summary>
    public async Task<(string DatabaseId, ulong TenantId)> CreateDatabaseAsync(ulong groupId, ClusterNodeProcess via, string? databaseId = null, bool waitForEveryMember = true)
    {
        var id = databaseId ?? "db_" + Guid.NewGuid().ToString("N")[..16];
        var tenant = Interlocked.Increment(ref _nextTenant);
        await CallAsync(via, HttpMethod.Post, "/internal/v1/databases", new CreateDatabaseRequest
        {
            GroupId = groupId,
            DatabaseId = id,
            TenantId = tenant,
            Owner = new Role { Name = "owner", Kind = RoleKind.Owner, ScramVerifier = ScramSha256Verifier.Create(OwnerPassword, 4096).ToString() },
        }, ApplyResponse.Parser);
        if (waitForEveryMember)
        {
            await WaitUntilListedAsync(groupId, id);
        }
        return (id, tenant);
    }

    /// <summary>
    /// The create answers once the leader applied it; a follower may apply it a moment later (a login there waits for it:
    /// ClusterLoginTests), but the admin listing and statements other than logins do not wait. Tests read any node right
    /// away, so wait until every running member lists it (a stopped or cut-off member is the test's own
    /// subject: after 30 s the wait gives up silently).
    /// </summary>
    private async Task WaitUntilListedAsync(ulong groupId, string databaseId)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        foreach (var node in Nodes.Where(n => n.Running))
        {
            while (DateTime.UtcNow < deadline)
            {
                try
                {
                    using var response = await SendAsync(node, HttpMethod.Get, $"/internal/v1/groups/{groupId}/databases", null);
                    if (response.StatusCode == System.Net.HttpStatusCode.NotFound)
                    {
                        break; // Not a member of this group.
                    }
                    if (response.IsSuccessStatusCode
                        && DatabaseList.Parser.ParseFrom(await response.Content.ReadAsByteArrayAsync()).Databases.Any(d => d.DatabaseId == databaseId))
                    {
                        break;
                    }
                }
                catch (HttpRequestException)
                {
                    // A member restarting: ask again until the deadline.
                }
                await Task.Delay(20);
            }
        }
    }

    public static string ConnectionString(ClusterNodeProcess node, string database, string user = "owner", string password = OwnerPassword) =>
        $"Host=127.0.0.1;Port={node.PgPort};Username={user};Password={password};Database={database};Timeout=30;Command Timeout=60;Pooling=false";
}
