using System.Diagnostics.Metrics;

namespace Kdb.Proxy;

/// <summary>The proxy's instruments, exported on the management port's <c>/metrics</c>.</summary>
internal sealed class ProxyMetrics : IDisposable
{
    private readonly Meter _meter = new("Kdb.Proxy");
    private int _open;

    public ProxyMetrics()
    {
        Connections = _meter.CreateCounter<long>("kdb_proxy_connections", description: "Client sessions relayed to a node");
        Denied = _meter.CreateCounter<long>("kdb_proxy_denied", description: "Client connections refused, by reason");
        Throttled = _meter.CreateCounter<long>("kdb_proxy_throttled", description: "Logins refused by the failed-login throttle");
        _meter.CreateObservableGauge("kdb_proxy_open_sessions", () => Volatile.Read(ref _open), description: "Sessions open now");

        // Where a new session's set-up time goes: the client's TLS and authentication exchanges, route lookup, and
        // the backend connection (TCP connect plus the node's own startup), so slow connects can be pinned down.
        StartupPhase = _meter.CreateHistogram<double>("kdb_proxy_startup_phase", unit: "s", description: "Time of each step of a session's set-up",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1, 5] });
    }

    public Counter<long> Connections { get; }

    public Counter<long> Denied { get; }

    public Counter<long> Throttled { get; }

    /// <summary>Seconds per set-up step; tagged <c>phase</c> = tls, route, auth, backend or total.</summary>
    public Histogram<double> StartupPhase { get; }

    public void RecordPhase(string phase, long startTimestamp) =>
        StartupPhase.Record(System.Diagnostics.Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds, new KeyValuePair<string, object?>("phase", phase));

    public int OpenSessions => Volatile.Read(ref _open);

    public void SessionOpened() => Interlocked.Increment(ref _open);

    public void SessionClosed() => Interlocked.Decrement(ref _open);

    public void Dispose() => _meter.Dispose();
}
