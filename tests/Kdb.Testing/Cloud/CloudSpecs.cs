using System.Globalization;

namespace Kdb.Testing.Cloud;

/// <summary>
/// The command-line settings every process-based local cloud fixture gives its control plane and nodes, as
/// <c>./kdb up</c> would: one copy, so a new required setting reaches every suite. Fixtures append their own extras.
/// </summary>
public static class CloudSpecs
{
    /// <summary>
    /// Control plane with embedded provisioning (in-memory bus), fast reconcile and usage, scheduled backups out of
    /// the way; rate limits and suite-specific settings are the caller's.
    /// </summary>
    public static string[] ControlPlaneArguments(int port, string postgresConnectionString, string issuer, string objectStorePath) =>
    [
        "--ControlPlane:Port=" + P(port),
        "--Postgres:ConnectionString=" + postgresConnectionString,
        "--Tokens:Issuer=" + issuer,
        "--ServiceClients:Node:Secret=" + CloudApi.NodeSecret,
        "--ServiceClients:Provisioning:Secret=" + CloudApi.ProvisioningSecret,
        "--ServiceClients:Proxy:Secret=" + CloudApi.ProxySecret,
        "--Bus:Transport=inmemory",
        "--Provisioning:ObjectStorePath=" + objectStorePath,
        "--Provisioning:UsageInterval=00:00:01",
        "--Operations:ReconcileInterval=00:00:01",
        "--Operations:RepublishAfter=00:00:20",
        "--Operations:Timeout=00:02:00",
        "--Backups:SchedulerInterval=01:00:00",
        "--Backups:RetentionInterval=01:00:00",
    ];

    /// <summary>A clustered node on <paramref name="ports"/> (PostgreSQL, internal, HTTP, management) heartbeating to the control plane.</summary>
    public static string[] NodeArguments(string dataDirectory, IReadOnlyList<int> ports, string controlPlaneUrl) =>
    [
        "--Node:DataDirectory=" + dataDirectory,
        "--Node:PgPort=" + P(ports[0]),
        "--Node:InternalPort=" + P(ports[1]),
        "--Node:HttpPort=" + P(ports[2]),
        "--Node:ManagementPort=" + P(ports[3]),
        "--Node:DevelopmentLoopbackAuth=true",
        "--Node:HeartbeatInterval=00:00:01",

        // As ./kdb up runs them: reads from the leader's lease (all replicas share one clock on loopback).
        "--Cluster:ReadMode=lease",
        "--ControlPlane:Url=" + controlPlaneUrl,
        "--ServiceClient:Id=kdb-node",
        "--ServiceClient:Secret=" + CloudApi.NodeSecret,
        "--Tokens:Issuer=" + controlPlaneUrl,
        "--Tokens:AllowHttpIssuer=true",
    ];

    private static string P(int value) => value.ToString(CultureInfo.InvariantCulture);
}
