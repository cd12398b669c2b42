using System.Globalization;
using Kdb.Testing.Cloud;
using Kdb.Testing.Hosting;
using Kdb.Testing.Ports;
using Kdb.Testing.Processes;
using Npgsql;

namespace Kdb.Testing.Portal;

/// <summary>
/// The local cloud as <c>./kdb up</c> runs it, every service a real process on free loopback ports: the control plane
/// (in-memory bus, so the real provisioning consumers run inside it) on a database of a private PostgreSQL, three
/// clustered nodes heartbeating to it, the proxy with TLS from a <see cref="DevelopmentCa"/>, and the portal. The
/// control plane hands out connection strings naming the proxy's port and the CA, so what a user copies is what works.
/// The caller builds the hosts (ProjectReference with <c>ReferenceOutputAssembly=false</c>) and owns the PostgreSQL.
/// </summary>
public sealed class ProcessCloud : IAsyncDisposable
{
    public const string NodeSecret = CloudApi.NodeSecret;
    public const string ProvisioningSecret = CloudApi.ProvisioningSecret;
    public const string ProxySecret = CloudApi.ProxySecret;

    private readonly string _root = Path.Combine(Path.GetTempPath(), "kdb-cloud-" + Guid.NewGuid().ToString("N"));
    private readonly List<ILaunchedProcess> _processes = [];
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(60) };

    private ProcessCloud()
    {
    }

    public Uri ControlPlaneUrl { get; private set; } = null!;

    public Uri PortalUrl { get; private set; } = null!;

    public int ProxyPgPort { get; private set; }

    public int ProxyHttpPort { get; private set; }

    public DevelopmentCa Tls { get; private set; } = null!;

    /// <summary>Where provisioning keeps backup objects.</summary>
    public string ObjectStorePath => Path.Combine(_root, "objects");

    /// <summary>Every process, for <see cref="ProcessLauncher.WriteLogsOnFailureAsync"/>.</summary>
    public ILaunchedProcess[] Processes => [.. _processes];

    /// <summary>Starts the cloud on <paramref name="postgresConnectionString"/> (an empty database) and waits until three nodes are alive.</summary>
    public static async Task<ProcessCloud> StartAsync(string postgresConnectionString, int nodes = 3)
    {
        var cloud = new ProcessCloud();
        try
        {
            await cloud.StartServicesAsync(postgresConnectionString, nodes);
            return cloud;
        }
        catch
        {
            await cloud.DisposeAsync();
            throw;
        }
    }

    private async Task StartServicesAsync(string postgresConnectionString, int nodes)
    {
        Tls = DevelopmentCa.Write(Path.Combine(_root, "tls"));
        var controlPlanePort = FreePorts.Allocate();
        var portalPort = FreePorts.Allocate();
        ProxyPgPort = FreePorts.Allocate();
        ProxyHttpPort = FreePorts.Allocate();
        ControlPlaneUrl = new Uri($"http://127.0.0.1:{P(controlPlanePort)}");
        PortalUrl = new Uri($"http://127.0.0.1:{P(portalPort)}");
        var controlPlane = Url(ControlPlaneUrl);

        await StartAsync("controlplane", "controlplane/Kdb.ControlPlane", Readiness.Http(controlPlane + "/health/ready"),
            [
                .. CloudSpecs.ControlPlaneArguments(controlPlanePort, postgresConnectionString, controlPlane, ObjectStorePath),
                "--Connection:Host=127.0.0.1",
                "--Connection:Port=" + P(ProxyPgPort),
                "--Connection:HttpBaseUrl=http://127.0.0.1:" + P(ProxyHttpPort),
                "--Tls:CaCertificate=" + Tls.CaCertificatePath,
                "--Mail:Directory=" + Path.Combine(_root, "mail"),
                "--Mail:LinkBaseUrl=" + Url(PortalUrl),
                "--RateLimits:TokenRequestsPerMinute=100000",
                "--RateLimits:ApiRequestsPerMinute=100000",
            ]);

        var starts = new List<Task>();
        for (var n = 1; n <= nodes; n++)
        {
            starts.Add(StartNodeAsync(n, controlPlane));
        }

        var proxy = FreePorts.Allocate();
        starts.Add(StartAsync("proxy", "proxy/Kdb.Proxy", Readiness.Http($"http://127.0.0.1:{P(proxy)}/health/ready"),
            "--Proxy:PgPort=" + P(ProxyPgPort),
            "--Proxy:HttpPort=" + P(ProxyHttpPort),
            "--Proxy:ManagementPort=" + P(proxy),
            "--Proxy:UsageInterval=00:00:01",
            "--ControlPlane:Url=" + controlPlane,
            "--ServiceClient:Id=kdb-proxy",
            "--ServiceClient:Secret=" + ProxySecret,
            "--Tls:Certificate=" + Tls.CertificatePath,
            "--Tls:Key=" + Tls.KeyPath));
        starts.Add(StartAsync("portal", "portal/Kdb.Portal", Readiness.Http(Url(PortalUrl) + "/health/live"),
            "--Portal:Port=" + P(portalPort),
            "--ControlPlane:Url=" + controlPlane,
            "--DataProtection:KeysPath=" + Path.Combine(_root, "portal-keys")));
        await Task.WhenAll(starts);
        await new CloudApi(_http, controlPlane, () => Logs).WaitForAliveNodesAsync(nodes);
    }

    private Task StartNodeAsync(int index, string controlPlane)
    {
        var ports = FreePorts.Allocate(4);
        return StartAsync("node" + P(index), "dataplane/Kdb.Node", Readiness.All(Readiness.Tcp(ports[0]), Readiness.Tcp(ports[1])),
            CloudSpecs.NodeArguments(Path.Combine(_root, "node" + P(index)), ports, controlPlane));
    }

    private async Task StartAsync(string name, string project, IReadinessProbe readiness, params string[] arguments)
    {
        var spec = ProcessSpec.DotNet(RepoPaths.BuiltAssembly(project), arguments) with
        {
            Name = name,
            Environment = new Dictionary<string, string?>
            {
                ["Logging__LogLevel__Default"] = "Warning",
                ["DOTNET_ENVIRONMENT"] = "Production",
                ["ASPNETCORE_ENVIRONMENT"] = "Production",
            },
            Readiness = readiness,
            ReadyTimeout = TimeSpan.FromSeconds(90),
            StopGracePeriod = TimeSpan.FromSeconds(5),
        };
        var process = await ProcessLauncher.StartAsync(spec);
        lock (_processes)
        {
            _processes.Add(process);
        }
    }

    /// <summary>The services' logs (the last 20,000 characters), for a failing test's message.</summary>
    public string Logs
    {
        get
        {
            var all = string.Join("\n", Processes.Select(p => p.Log));
            return all.Length > 20_000 ? all[^20_000..] : all;
        }
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();

        // The portal and proxy first: they follow the control plane and would log its absence.
        for (var i = _processes.Count - 1; i >= 0; i--)
        {
            await _processes[i].DisposeAsync();
        }

        _http.Dispose();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static string P(int port) => port.ToString(CultureInfo.InvariantCulture);

    private static string Url(Uri uri) => uri.GetLeftPart(UriPartial.Authority);
}
