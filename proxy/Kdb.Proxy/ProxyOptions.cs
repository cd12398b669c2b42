using System.Security.Cryptography;
using System.Text;
using Kdb.ServiceDefaults;

namespace Kdb.Proxy;

/// <summary>The proxy's settings (configuration section <c>Proxy</c>).</summary>
public sealed class ProxyOptions
{
    /// <summary>Tenant PostgreSQL port (TLS offered).</summary>
    public int PgPort { get; init; } = 6432;

    /// <summary>Tenant HTTP data API port.</summary>
    public int HttpPort { get; init; } = 6480;

    /// <summary>Health and metrics port, never reached by tenants.</summary>
    public int ManagementPort { get; init; } = 6490;

    /// <summary>This proxy's id in the control plane's tracker and in the connection log.</summary>
    public string ProxyId { get; init; } = "proxy-" + Environment.MachineName.ToLowerInvariant();

    /// <summary>Production: refuse plaintext connections even on loopback.</summary>
    public bool RequireTls { get; init; }

    /// <summary>The development flag: accept data-token passwords on loopback without TLS.</summary>
    public bool DevelopmentLoopbackAuth { get; init; }

    /// <summary>Least time between two synchronous fetches of the same unknown name.</summary>
    public TimeSpan RouteMissRetry { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long sessions of a removed database may finish before they are closed.</summary>
    public TimeSpan RemovalDrain { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Failed logins of a pair that impose no wait (a client's own encryption fallback retries once).</summary>
    public int ThrottleFreeFailures { get; init; } = 2;

    /// <summary>Backoff after the first counted failed login of a (client IP, database) pair; it doubles with each failure.</summary>
    public TimeSpan ThrottleBaseDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The cap of the failed-login backoff.</summary>
    public TimeSpan ThrottleMaxDelay { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Time allowed for a TCP connect plus startup to one replica before the next is tried.</summary>
    public TimeSpan BackendConnectTimeout { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// Read-only sessions (a <c>readonly</c> role, or <c>default_transaction_read_only=on</c>) are spread over every
    /// replica instead of the leader: followers serve linearizable reads through ReadIndex.
    /// </summary>
    public bool ReadOnlyOnAnyReplica { get; init; } = true;

    /// <summary>Time a client has to finish its startup and authentication.</summary>
    public TimeSpan StartupTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How often egress and connection counts are reported to the control plane's usage ingestion.</summary>
    public TimeSpan UsageInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long shutdown waits for sessions to finish.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Secret behind the fake SCRAM verifiers of unknown names; proxies of one cloud must share it.</summary>
    public byte[] FakeVerifierSecret { get; init; } = RandomNumberGenerator.GetBytes(32);

    /// <summary>Reads the section, filling defaults.</summary>
    public static ProxyOptions Read(IConfiguration configuration)
    {
        IConfigurationSection s = configuration.GetSection("Proxy");
        string? secret = s["FakeVerifierSecret"] ?? configuration["ServiceClient:Secret"];
        var defaults = new ProxyOptions();
        return new ProxyOptions
        {
            PgPort = configuration.GetPort("Proxy:PgPort", 6432),
            HttpPort = configuration.GetPort("Proxy:HttpPort", 6480),
            ManagementPort = configuration.GetPort("Proxy:ManagementPort", 6490),
            ProxyId = s["ProxyId"] is { Length: > 0 and <= 64 } id ? id : defaults.ProxyId,
            RequireTls = s.GetValue("RequireTls", false),
            DevelopmentLoopbackAuth = s.GetValue("DevelopmentLoopbackAuth", false),
            RouteMissRetry = s.GetValue("RouteMissRetry", defaults.RouteMissRetry),
            RemovalDrain = s.GetValue("RemovalDrain", defaults.RemovalDrain),
            ThrottleFreeFailures = Math.Max(0, s.GetValue("ThrottleFreeFailures", defaults.ThrottleFreeFailures)),
            ThrottleBaseDelay = s.GetValue("ThrottleBaseDelay", defaults.ThrottleBaseDelay),
            ThrottleMaxDelay = s.GetValue("ThrottleMaxDelay", defaults.ThrottleMaxDelay),
            BackendConnectTimeout = s.GetValue("BackendConnectTimeout", defaults.BackendConnectTimeout),
            ReadOnlyOnAnyReplica = s.GetValue("ReadOnlyOnAnyReplica", defaults.ReadOnlyOnAnyReplica),
            StartupTimeout = s.GetValue("StartupTimeout", defaults.StartupTimeout),
            UsageInterval = s.GetValue("UsageInterval", defaults.UsageInterval),
            DrainTimeout = s.GetValue("DrainTimeout", defaults.DrainTimeout),
            FakeVerifierSecret = string.IsNullOrEmpty(secret)
                ? defaults.FakeVerifierSecret
                : HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), "kdb-proxy fake verifiers"u8),
        };
    }
}
