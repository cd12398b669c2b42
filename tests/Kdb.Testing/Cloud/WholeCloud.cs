using System.Globalization;
using Kdb.Testing.EndToEnd;
using Kdb.Testing.Hosting;
using Kdb.Testing.Portal;
using Kdb.Testing.Ports;
using Kdb.Testing.Processes;
using Kdb.Testing.Provisioning;
using Npgsql;

namespace Kdb.Testing.Cloud;

/// <summary>What differs between the suites that start the whole local cloud; everything else is <see cref="WholeCloud"/>'s.</summary>
public sealed record WholeCloudOptions
{
    public int Nodes { get; init; } = 3;

    /// <summary>The proxy, which users reach their databases through.</summary>
    public bool Proxy { get; init; }

    /// <summary>
    /// The proxy serves TLS from a <see cref="DevelopmentCa"/>, and the control plane hands out connection strings that
    /// name the proxy's ports and the CA; without it the proxy is plaintext on loopback (its development flag).
    /// </summary>
    public bool ProxyTls { get; init; }

    public bool Portal { get; init; }

    /// <summary>Appended to the control plane's command line (rate limits, schedules, a suite's own settings).</summary>
    public IReadOnlyList<string> ControlPlaneArguments { get; init; } = [];

    public IReadOnlyList<string> ProxyArguments { get; init; } = [];

    /// <summary>Log level of every service (Warning keeps test logs small).</summary>
    public string LogLevel { get; init; } = "Warning";

    /// <summary>How long to wait for the nodes to report alive to the control plane.</summary>
    public int AliveNodesSeconds { get; init; } = 90;

    /// <summary>Prefix of the private directory (node data, objects, TLS, mail) under the temp directory.</summary>
    public string DirectoryPrefix { get; init; } = "kdb-cloud-";
}

/// <summary>
/// The local cloud as <c>./kdb up</c> lays it out, every service a real process on free loopback ports with private
/// directories: the control plane (in-memory bus, so the real provisioning consumers run inside it) on a PostgreSQL
/// database the caller owns, clustered nodes heartbeating to it, and, when asked, the proxy and the portal. Every service
/// is a <see cref="ServiceProcess"/> a test can kill, pause or restart on the same ports and data. The one fixture under
/// <see cref="LocalCloud"/>, <see cref="EndToEndCloud"/> and <see cref="ProcessCloud"/>; their options say what differs.
/// </summary>
public sealed class WholeCloud : IAsyncDisposable
{
    private readonly WholeCloudOptions _options;
    private readonly List<CloudNode> _nodes = [];

    private WholeCloud(WholeCloudOptions options)
    {
        _options = options;
        Root = Path.Combine(Path.GetTempPath(), options.DirectoryPrefix + Guid.NewGuid().ToString("N"));
        Api = new CloudApi(Http, string.Empty, () => Logs);
    }

    public string Root { get; }

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(60) };

    /// <summary>REST calls against this cloud's control plane.</summary>
    public CloudApi Api { get; private set; }

    public string ControlPlaneUrl { get; private set; } = null!;

    public ServiceProcess ControlPlane { get; private set; } = null!;

    /// <summary>The node processes, in start order.</summary>
    public IReadOnlyList<CloudNode> Nodes => _nodes;

    public ServiceProcess? Proxy { get; private set; }

    public ServiceProcess? Portal { get; private set; }

    public int ProxyPgPort { get; private set; }

    public int ProxyHttpPort { get; private set; }

    public string PortalUrl { get; private set; } = string.Empty;

    /// <summary>The proxy's TLS files, when <see cref="WholeCloudOptions.ProxyTls"/>.</summary>
    public DevelopmentCa? Tls { get; private set; }

    /// <summary>Where provisioning keeps backup objects.</summary>
    public string ObjectStorePath => Path.Combine(Root, "objects");

    /// <summary>Every service, in start order.</summary>
    public IEnumerable<ServiceProcess> Services =>
        new[] { ControlPlane }.Concat(_nodes).Append(Proxy).Append(Portal).OfType<ServiceProcess>();

    /// <summary>The last lines of every service's log, for a failing check's message.</summary>
    public string Logs => string.Join("\n", Services.Select(s => $"==== {s.Name}\n{(s.Log.Length > 6000 ? s.Log[^6000..] : s.Log)}"));

    /// <summary>The node whose data directory holds <paramref name="nodeId"/>, or null.</summary>
    public CloudNode? NodeById(string nodeId) => _nodes.FirstOrDefault(n => n.NodeId == nodeId);

    /// <summary>Starts the cloud on <paramref name="postgresConnectionString"/> (an empty database) and waits until every node is alive.</summary>
    public static async Task<WholeCloud> StartAsync(string postgresConnectionString, WholeCloudOptions options)
    {
        var cloud = new WholeCloud(options);
        try
        {
            await cloud.StartServicesAsync(postgresConnectionString);
            return cloud;
        }
        catch
        {
            await cloud.DisposeAsync();
            throw;
        }
    }

    private async Task StartServicesAsync(string postgresConnectionString)
    {
        var controlPlanePort = FreePorts.Allocate();
        ControlPlaneUrl = "http://127.0.0.1:" + P(controlPlanePort);
        Api = new CloudApi(Http, ControlPlaneUrl, () => Logs);
        ProxyPgPort = FreePorts.Allocate();
        ProxyHttpPort = FreePorts.Allocate();
        var portalPort = FreePorts.Allocate();
        PortalUrl = "http://127.0.0.1:" + P(portalPort);
        Tls = _options.ProxyTls ? DevelopmentCa.Write(Path.Combine(Root, "tls")) : null;

        List<string> controlPlane = [.. CloudSpecs.ControlPlaneArguments(controlPlanePort, postgresConnectionString, ControlPlaneUrl, ObjectStorePath)];
        if (Tls is not null)
        {
            // What a user copies from the API or the portal names this proxy and this CA.
            controlPlane.AddRange([
                "--Connection:Host=127.0.0.1",
                "--Connection:Port=" + P(ProxyPgPort),
                "--Connection:HttpBaseUrl=http://127.0.0.1:" + P(ProxyHttpPort),
                "--Tls:CaCertificate=" + Tls.CaCertificatePath]);
        }
        if (_options.Portal)
        {
            controlPlane.AddRange(["--Mail:Directory=" + Path.Combine(Root, "mail"), "--Mail:LinkBaseUrl=" + PortalUrl]);
        }
        ControlPlane = Service("controlplane", "controlplane/Kdb.ControlPlane", Readiness.Http(ControlPlaneUrl + "/health/ready"),
            [.. controlPlane, .. _options.ControlPlaneArguments]);
        await ControlPlane.StartAsync();

        for (var i = 1; i <= _options.Nodes; i++)
        {
            _nodes.Add(NodeService(i));
        }
        await Task.WhenAll(_nodes.Select(n => n.StartAsync()));

        var starts = new List<Task>();
        if (_options.Proxy)
        {
            Proxy = ProxyService();
            starts.Add(Proxy.StartAsync());
        }
        if (_options.Portal)
        {
            Portal = Service("portal", "portal/Kdb.Portal", Readiness.Http(PortalUrl + "/health/live"),
                ["--Portal:Port=" + P(portalPort), "--ControlPlane:Url=" + ControlPlaneUrl, "--DataProtection:KeysPath=" + Path.Combine(Root, "portal-keys")]);
            starts.Add(Portal.StartAsync());
        }
        await Task.WhenAll(starts);
        await Api.WaitForAliveNodesAsync(_options.Nodes, _options.AliveNodesSeconds);
    }

    private CloudNode NodeService(int index)
    {
        var ports = FreePorts.Allocate(4);
        var dataDirectory = Path.Combine(Root, "node" + P(index));
        return new CloudNode(index, dataDirectory, ports, Spec("node" + P(index), "dataplane/Kdb.Node",
            Readiness.All(Readiness.Tcp(ports[0]), Readiness.Tcp(ports[1])), CloudSpecs.NodeArguments(dataDirectory, ports, ControlPlaneUrl)));
    }

    private ServiceProcess ProxyService()
    {
        var management = FreePorts.Allocate();
        List<string> arguments =
        [
            "--Proxy:PgPort=" + P(ProxyPgPort),
            "--Proxy:HttpPort=" + P(ProxyHttpPort),
            "--Proxy:ManagementPort=" + P(management),
            "--Proxy:UsageInterval=00:00:01",
            "--ControlPlane:Url=" + ControlPlaneUrl,
            "--ServiceClient:Id=kdb-proxy",
            "--ServiceClient:Secret=" + CloudApi.ProxySecret,
            "--Tokens:Issuer=" + ControlPlaneUrl,
            "--Tokens:AllowHttpIssuer=true",
        ];
        arguments.AddRange(Tls is null
            ? ["--Proxy:DevelopmentLoopbackAuth=true"]
            : ["--Tls:Certificate=" + Tls.CertificatePath, "--Tls:Key=" + Tls.KeyPath]);
        return Service("proxy", "proxy/Kdb.Proxy", Readiness.Http($"http://127.0.0.1:{P(management)}/health/ready"), [.. arguments, .. _options.ProxyArguments]);
    }

    private ServiceProcess Service(string name, string project, IReadinessProbe readiness, string[] arguments) =>
        new(Spec(name, project, readiness, arguments));

    private ProcessSpec Spec(string name, string project, IReadinessProbe readiness, string[] arguments) =>
        ProcessSpec.DotNet(RepoPaths.BuiltAssembly(project), arguments) with
        {
            Name = name,
            Environment = new Dictionary<string, string?>
            {
                ["Logging__LogLevel__Default"] = _options.LogLevel,
                ["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Information",
                ["DOTNET_ENVIRONMENT"] = "Production",
                ["ASPNETCORE_ENVIRONMENT"] = "Production",
            },
            Readiness = readiness,
            ReadyTimeout = TimeSpan.FromSeconds(90),
            StopGracePeriod = TimeSpan.FromSeconds(5),
        };

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();

        // Dependants first: the portal, the proxy and the nodes follow the control plane and would log its absence.
        foreach (var service in Services.Reverse().ToList())
        {
            await service.DisposeAsync();
        }
        Http.Dispose();
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static string P(int value) => value.ToString(CultureInfo.InvariantCulture);
}
