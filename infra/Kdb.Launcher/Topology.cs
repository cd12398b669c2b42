using System.Globalization;

namespace Kdb.Launcher;

/// <summary>How the local cloud is laid out for one <c>up</c>: which bus, how many nodes.</summary>
internal sealed record CloudOptions(int Nodes, bool RabbitMq)
{
    public const int PostgresPort = 54320;
    public const int ControlPlanePort = 5100;
    public const int PortalPort = 5200;
    public const int ProvisioningPort = 5300;
    public const int RabbitMqPort = 5672;
    public const int ProxyPgPort = 6432;
    public const int ProxyHttpPort = 6480;
    public const int ProxyManagementPort = 6490;
}

/// <summary>The services of the local cloud in start order, with the ports and settings of DESIGN.md.</summary>
internal sealed class Topology
{
    private Topology(IReadOnlyList<IManagedService> services, PostgresService postgres, RabbitMqService? rabbit, CloudOptions options)
    {
        Services = services;
        Postgres = postgres;
        RabbitMq = rabbit;
        Options = options;
    }

    public IReadOnlyList<IManagedService> Services { get; }

    public PostgresService Postgres { get; }

    public RabbitMqService? RabbitMq { get; }

    public CloudOptions Options { get; }

    public IManagedService? Find(string name) => Services.FirstOrDefault(s => s.Name == name);

    public static Topology Build(KdbPaths paths, Secrets secrets, DevCertificates certs, CloudOptions options)
    {
        var postgres = new PostgresService(paths, secrets, paths.Port(CloudOptions.PostgresPort));
        var rabbit = options.RabbitMq ? new RabbitMqService(paths, paths.Port(CloudOptions.RabbitMqPort)) : null;
        var controlPlanePort = paths.Port(CloudOptions.ControlPlanePort);
        var portalPort = paths.Port(CloudOptions.PortalPort);
        var controlPlaneUrl = $"http://127.0.0.1:{controlPlanePort}";
        var services = new List<IManagedService> { postgres };
        if (rabbit is not null)
        {
            services.Add(rabbit);
        }

        var bus = options.RabbitMq
            ? new Dictionary<string, string>
            {
                ["KDB_Bus__Transport"] = "rabbitmq",
                ["KDB_Bus__RabbitMqHost"] = "127.0.0.1",
                ["KDB_Bus__RabbitMqPort"] = paths.Port(CloudOptions.RabbitMqPort).ToString(CultureInfo.InvariantCulture),
            }
            : new Dictionary<string, string> { ["KDB_Bus__Transport"] = "inmemory" };

        var common = new Dictionary<string, string>
        {
            ["DOTNET_ENVIRONMENT"] = "Production",
            ["KDB_Tls__CaCertificate"] = certs.CaCertificatePath,
            ["KDB_Tls__Certificate"] = certs.ServerCertificatePath,
            ["KDB_Tls__Key"] = certs.ServerKeyPath,
        };

        services.Add(Dotnet(paths, "controlplane", "controlplane", "Kdb.ControlPlane", [controlPlanePort], controlPlanePort, controlPlaneUrl, Merge(common, bus, new()
        {
            ["KDB_ControlPlane__Port"] = Port(controlPlanePort),
            ["KDB_Tokens__Issuer"] = controlPlaneUrl,
            ["KDB_Postgres__ConnectionString"] = postgres.ConnectionString,
            ["KDB_ServiceClients__Proxy__Secret"] = secrets["KDB_CLIENT_PROXY_SECRET"],
            ["KDB_ServiceClients__Node__Secret"] = secrets["KDB_CLIENT_NODE_SECRET"],
            ["KDB_ServiceClients__Provisioning__Secret"] = secrets["KDB_CLIENT_PROVISIONING_SECRET"],
            ["KDB_ServiceClients__Operator__Secret"] = secrets["KDB_CLIENT_OPERATOR_SECRET"],
            ["KDB_DataProtection__Secret"] = secrets["KDB_DATAPROTECTION_SECRET"],
            ["KDB_Mail__Directory"] = paths.Mail,
            ["KDB_Mail__LinkBaseUrl"] = $"http://127.0.0.1:{portalPort}",
            // The connection strings users copy name the proxy as this local cloud runs it.
            ["KDB_Connection__Port"] = Port(paths.Port(CloudOptions.ProxyPgPort)),
            ["KDB_Connection__HttpBaseUrl"] = $"http://127.0.0.1:{paths.Port(CloudOptions.ProxyHttpPort)}",
        })));

        if (options.RabbitMq)
        {
            var provisioningPort = paths.Port(CloudOptions.ProvisioningPort);
            var url = $"http://127.0.0.1:{provisioningPort}";
            services.Add(Dotnet(paths, "provisioning", "provisioning", "Kdb.Provisioning.Worker", [provisioningPort], provisioningPort, url, Merge(common, bus, new()
            {
                ["KDB_Provisioning__Port"] = Port(provisioningPort),
                ["KDB_ControlPlane__Url"] = controlPlaneUrl,
                ["KDB_ServiceClient__Id"] = "kdb-provisioning",
                ["KDB_ServiceClient__Secret"] = secrets["KDB_CLIENT_PROVISIONING_SECRET"],
            })));
        }

        for (var n = 1; n <= options.Nodes; n++)
        {
            var pg = paths.Port(7000 + n);
            var internalPort = paths.Port(7100 + n);
            var http = paths.Port(7200 + n);
            var management = paths.Port(7300 + n);
            services.Add(Dotnet(paths, $"node{n}", "dataplane", "Kdb.Node", [pg, internalPort, http, management], management, $"postgresql://127.0.0.1:{pg}", Merge(common, new()
            {
                ["KDB_Node__Index"] = Port(n),
                ["KDB_Node__DataDirectory"] = Path.Combine(paths.Nodes, Port(n)),
                ["KDB_Node__PgPort"] = Port(pg),
                ["KDB_Node__InternalPort"] = Port(internalPort),
                ["KDB_Node__HttpPort"] = Port(http),
                ["KDB_Node__ManagementPort"] = Port(management),
                // Nodes listen on loopback only in the local cloud, so the development flag is safe here.
                ["KDB_Node__DevelopmentLoopbackAuth"] = "true",

                // Leader leases serve reads without a heartbeat round per statement; safe here because every replica
                // runs on this machine's one clock (the lease is shorter than the election timeout by the drift bound).
                ["KDB_Cluster__ReadMode"] = "lease",
                ["KDB_ControlPlane__Url"] = controlPlaneUrl,
                ["KDB_ServiceClient__Id"] = "kdb-node",
                ["KDB_ServiceClient__Secret"] = secrets["KDB_CLIENT_NODE_SECRET"],
                // Tokens (data, proxy, provisioning, peer nodes) are the control plane's: its issuer and JWKS.
                ["KDB_Tokens__Issuer"] = controlPlaneUrl,
                ["KDB_Tokens__AllowHttpIssuer"] = "true",
            })));
        }

        var (proxyPg, proxyHttp, proxyManagement) = (paths.Port(CloudOptions.ProxyPgPort), paths.Port(CloudOptions.ProxyHttpPort), paths.Port(CloudOptions.ProxyManagementPort));
        services.Add(Dotnet(paths, "proxy", "proxy", "Kdb.Proxy", [proxyPg, proxyHttp, proxyManagement], proxyManagement, $"postgresql://127.0.0.1:{proxyPg}", Merge(common, new()
        {
            ["KDB_Proxy__PgPort"] = Port(proxyPg),
            ["KDB_Proxy__HttpPort"] = Port(proxyHttp),
            ["KDB_Proxy__ManagementPort"] = Port(proxyManagement),
            ["KDB_ControlPlane__Url"] = controlPlaneUrl,
            ["KDB_ServiceClient__Id"] = "kdb-proxy",
            ["KDB_ServiceClient__Secret"] = secrets["KDB_CLIENT_PROXY_SECRET"],
            ["KDB_Proxy__ProxyId"] = "proxy-local",
            // Like the nodes: data tokens are the control plane's (its issuer and JWKS); TLS comes from the common dev-CA settings.
            ["KDB_Tokens__Issuer"] = controlPlaneUrl,
            ["KDB_Tokens__AllowHttpIssuer"] = "true",
        })));

        services.Add(Dotnet(paths, "portal", "portal", "Kdb.Portal", [portalPort], portalPort, $"http://127.0.0.1:{portalPort}", Merge(common, new()
        {
            ["KDB_Portal__Port"] = Port(portalPort),
            ["KDB_ControlPlane__Url"] = controlPlaneUrl,
        })));

        return new Topology(services, postgres, rabbit, options);
    }

    /// <summary>The build of a service host (<see cref="KdbPaths.Configuration"/>).</summary>
    public static string DllPath(KdbPaths paths, string folder, string project) =>
        Path.Combine(paths.Root, folder, project, "bin", paths.Configuration, "net10.0", project + ".dll");

    private static DotnetService Dotnet(KdbPaths paths, string name, string folder, string project, int[] ports, int healthPort, string url, Dictionary<string, string> env) =>
        new(paths, name, DllPath(paths, folder, project), ports, new Uri($"http://127.0.0.1:{healthPort}/health/ready"), url, env);

    private static string Port(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static Dictionary<string, string> Merge(params Dictionary<string, string>[] parts)
    {
        var merged = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var part in parts)
        {
            foreach (var (key, value) in part)
            {
                merged[key] = value;
            }
        }

        return merged;
    }
}
