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
    }

    public Counter<long> Connections { get; }

    public Counter<long> Denied { get; }

    public Counter<long> Throttled { get; }

    public int OpenSessions => Volatile.Read(ref _open);

    public void SessionOpened() => Interlocked.Increment(ref _open);

    public void SessionClosed() => Interlocked.Decrement(ref _open);

    public void Dispose() => _meter.Dispose();
}
