using Kdb.Testing.Cloud;
using Kdb.Testing.Processes;

namespace Kdb.Testing.Portal;

/// <summary>
/// The local cloud as <c>./kdb up</c> runs it (a <see cref="WholeCloud"/>), every service a real process on free loopback
/// ports: the control plane (in-memory bus, so the real provisioning consumers run inside it) on a database of a private
/// PostgreSQL, three clustered nodes heartbeating to it, the proxy with TLS from a <see cref="DevelopmentCa"/>, and the
/// portal. The control plane hands out connection strings naming the proxy's port and the CA, so what a user copies is
/// what works. The caller builds the hosts (ProjectReference with <c>ReferenceOutputAssembly=false</c>) and owns the PostgreSQL.
/// </summary>
public sealed class ProcessCloud : IAsyncDisposable
{
    public const string NodeSecret = CloudApi.NodeSecret;
    public const string ProvisioningSecret = CloudApi.ProvisioningSecret;
    public const string ProxySecret = CloudApi.ProxySecret;

    private readonly WholeCloud _cloud;

    private ProcessCloud(WholeCloud cloud) => _cloud = cloud;

    public Uri ControlPlaneUrl => new(_cloud.ControlPlaneUrl);

    public Uri PortalUrl => new(_cloud.PortalUrl);

    public int ProxyPgPort => _cloud.ProxyPgPort;

    public int ProxyHttpPort => _cloud.ProxyHttpPort;

    public DevelopmentCa Tls => _cloud.Tls!;

    /// <summary>Where provisioning keeps backup objects.</summary>
    public string ObjectStorePath => _cloud.ObjectStorePath;

    /// <summary>Every running process, for <see cref="ProcessLauncher.WriteLogsOnFailureAsync"/>.</summary>
    public ILaunchedProcess[] Processes => [.. _cloud.Services.Select(s => s.Process).OfType<ILaunchedProcess>()];

    /// <summary>Starts the cloud on <paramref name="postgresConnectionString"/> (an empty database) and waits until the nodes are alive.</summary>
    public static async Task<ProcessCloud> StartAsync(string postgresConnectionString, int nodes = 3) =>
        new(await WholeCloud.StartAsync(postgresConnectionString, new WholeCloudOptions
        {
            Nodes = nodes,
            Proxy = true,
            ProxyTls = true,
            Portal = true,
            ControlPlaneArguments = ["--RateLimits:TokenRequestsPerMinute=100000", "--RateLimits:ApiRequestsPerMinute=100000"],
        }));

    /// <summary>The last lines of every service's log, for a failing test's message.</summary>
    public string Logs => _cloud.Logs;

    public ValueTask DisposeAsync() => _cloud.DisposeAsync();
}
