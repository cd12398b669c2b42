using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Kdb.PgWire.Auth;
using Kdb.Testing.Cluster;

namespace Kdb.Testing.Proxy;

/// <summary>
/// Three real node processes, one shard group on them, a <see cref="RouteTableServer"/> describing that group, and a
/// real proxy process following it with TLS offered (a self-signed certificate for <c>localhost</c> and
/// <c>*.kdb.localhost</c>). Use it as a collection fixture.
/// </summary>
public sealed class ProxyTestBed : IAsyncLifetime
{
    private readonly string _tlsDirectory = Path.Combine(Path.GetTempPath(), "kdb-proxy-tls-" + Guid.NewGuid().ToString("N"));

    /// <summary>Extra command-line settings for the three nodes (e.g. a higher <c>--Node:MaxConnections</c>).</summary>
    public IReadOnlyList<string> NodeArguments { get; init; } = [];

    public ThreeNodeCluster Cluster { get; private set; } = null!;

    public RouteTableServer Routes { get; private set; } = null!;

    public ProxyProcess Proxy { get; private set; } = null!;

    public ulong GroupId { get; private set; }

    /// <summary>The PEM certificate the proxy serves.</summary>
    public string CertificatePath => Path.Combine(_tlsDirectory, "proxy.crt");

    /// <summary>Settings for the proxy process; tests of throttling read <c>Proxy:ThrottleBaseDelay</c> from here.</summary>
    public static TimeSpan ThrottleBaseDelay => TimeSpan.FromMilliseconds(400);

    public async Task InitializeAsync()
    {
        Cluster = new ThreeNodeCluster { ExtraArguments = NodeArguments };
        await Cluster.InitializeAsync();
        Routes = await RouteTableServer.StartAsync();
        GroupId = await Cluster.CreateGroupAsync((ulong)Random.Shared.NextInt64(1, long.MaxValue));
        WriteCertificate();
        Proxy = await ProxyProcess.StartAsync(Routes.BaseAddress, Cluster.Issuer, new Dictionary<string, string>
        {
            ["Proxy:ThrottleBaseDelay"] = ThrottleBaseDelay.ToString("c", CultureInfo.InvariantCulture),
            ["Proxy:ThrottleMaxDelay"] = "00:00:05",
            ["Proxy:RouteMissRetry"] = "00:00:01",
            ["Proxy:RemovalDrain"] = "00:00:00.200",
            ["Proxy:UsageInterval"] = "00:00:01",
            ["Tls:Certificate"] = CertificatePath,
            ["Tls:Key"] = Path.Combine(_tlsDirectory, "proxy.key"),
        });
    }

    public async Task DisposeAsync()
    {
        if (Proxy is not null)
        {
            await Proxy.DisposeAsync();
        }

        if (Routes is not null)
        {
            await Routes.DisposeAsync();
        }

        if (Cluster is not null)
        {
            await Cluster.DisposeAsync();
        }

        try
        {
            Directory.Delete(_tlsDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>The group's replicas as route-entry replicas.</summary>
    public IReadOnlyList<TestReplica> Replicas() =>
        Cluster.Nodes.Select(n => new TestReplica(n.NodeId, "127.0.0.1:" + n.PgPort.ToString(CultureInfo.InvariantCulture), "http://127.0.0.1:" + n.HttpPort.ToString(CultureInfo.InvariantCulture))).ToList();

    /// <summary>
    /// Creates a database on the group and publishes its route with an owner role whose password is
    /// <paramref name="ownerPassword"/> (the proxy checks the route table's verifier; the node trusts the proxy).
    /// </summary>
    public async Task<TestRouteEntry> CreateRoutedDatabaseAsync(string ownerPassword, string quotaState = "ok", int maxConnections = 100, int statementsPerSecond = 1000, bool publish = true)
    {
        var (id, tenant) = await Cluster.CreateDatabaseAsync(GroupId, Cluster.Nodes[0]);
        var leader = await Cluster.LeaderOfAsync(GroupId);
        var entry = new TestRouteEntry(
            id,
            tenant.ToString(CultureInfo.InvariantCulture),
            "org_test",
            GroupId.ToString(CultureInfo.InvariantCulture),
            Replicas(),
            leader.NodeId,
            [new TestRouteRole("owner", "owner", ScramSha256Verifier.Create(ownerPassword, 4096).ToString())],
            quotaState,
            new TestRouteLimits(maxConnections, statementsPerSecond),
            null,
            0);
        if (!publish)
        {
            Routes.HiddenFromPoll.Add(id);
        }

        return Routes.Upsert(entry);
    }

    /// <summary>Publishes a changed entry and waits until the proxy has had time to receive it.</summary>
    public async Task<TestRouteEntry> UpdateAsync(TestRouteEntry entry)
    {
        var stored = Routes.Upsert(entry);

        // The long-poll wakes at once; a short pause covers the proxy applying the answer.
        await Task.Delay(300);
        return stored;
    }

    private void WriteCertificate()
    {
        Directory.CreateDirectory(_tlsDirectory);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddDnsName("*.kdb.localhost");
        san.AddIpAddress(System.Net.IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        File.WriteAllText(CertificatePath, certificate.ExportCertificatePem());
        File.WriteAllText(Path.Combine(_tlsDirectory, "proxy.key"), key.ExportPkcs8PrivateKeyPem());
    }
}
