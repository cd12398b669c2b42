namespace Kdb.Proxy.Routing;

/// <summary>
/// What the proxy holds per routed database: the current route entry, its open sessions (for the connection
/// limit), the statement token bucket of a <c>throttled</c> database, byte counters, and the signal that closes
/// its sessions when the route is removed.
/// </summary>
public sealed class DatabaseState
{
    private readonly CancellationTokenSource _removed = new();
    private readonly Lock _bucketLock = new();
    private volatile RouteEntry _entry;
    private int _sessions;
    private long _bytesIn;
    private long _bytesOut;
    private long _connections;
    private double _tokens;
    private long _refilledAt;

    internal DatabaseState(RouteEntry entry)
    {
        _entry = entry;
    }

    /// <summary>The current route entry.</summary>
    public RouteEntry Entry => _entry;

    /// <summary>Sessions open through this proxy.</summary>
    public int Sessions => Volatile.Read(ref _sessions);

    /// <summary>Bytes received from clients.</summary>
    public long BytesIn => Interlocked.Read(ref _bytesIn);

    /// <summary>Bytes sent to clients (egress).</summary>
    public long BytesOut => Interlocked.Read(ref _bytesOut);

    /// <summary>Sessions opened since the proxy started.</summary>
    public long Connections => Interlocked.Read(ref _connections);

    /// <summary>True when the entry's quota state is <c>throttled</c>: statements pass the token bucket.</summary>
    public bool Throttled => _entry.QuotaState == "throttled";

    /// <summary>True when the entry's quota state is <c>suspended</c>: new sessions are refused.</summary>
    public bool Suspended => _entry.QuotaState == "suspended";

    /// <summary>True once the route was removed.</summary>
    public bool Removed => _removed.IsCancellationRequested;

    /// <summary>Fires when the route is removed (after the drain).</summary>
    public CancellationToken RemovedToken => _removed.Token;

    /// <summary>When the entry last changed <c>lockoutResetAt</c>; failures before it are forgotten.</summary>
    public DateTimeOffset? LockoutResetAt => _entry.LockoutResetAt;

    internal void Update(RouteEntry entry) => _entry = entry;

    /// <summary>The entry <see cref="GroupRouteIndex"/> counted for this database (changed only under its lock).</summary>
    internal RouteEntry? IndexedEntry { get; set; }

    /// <summary>Set under <see cref="GroupRouteIndex"/>'s lock once the database left the table: an update racing the
    /// removal must not count a state nobody will take out again.</summary>
    internal bool IndexRetired { get; set; }

    internal void MarkRemoved(TimeSpan drain) => _removed.CancelAfter(drain);

    /// <summary>Takes a session slot; false when the database is at its connection limit.</summary>
    public bool TryOpenSession()
    {
        int limit = _entry.Limits?.MaxConnections ?? 0;
        int now = Interlocked.Increment(ref _sessions);
        if (limit > 0 && now > limit)
        {
            Interlocked.Decrement(ref _sessions);
            return false;
        }

        Interlocked.Increment(ref _connections);
        return true;
    }

    /// <summary>Gives a session slot back.</summary>
    public void CloseSession() => Interlocked.Decrement(ref _sessions);

    internal void AddBytesIn(long count) => Interlocked.Add(ref _bytesIn, count);

    internal void AddBytesOut(long count) => Interlocked.Add(ref _bytesOut, count);

    /// <summary>
    /// Takes one statement token from the bucket (capacity and rate = statements per second); returns how long the
    /// caller must wait before sending the statement (zero when a token was there).
    /// </summary>
    public TimeSpan TakeStatementToken(TimeProvider time)
    {
        int rate = _entry.Limits?.StatementsPerSecond ?? 0;
        if (rate <= 0)
        {
            return TimeSpan.Zero;
        }

        lock (_bucketLock)
        {
            long now = time.GetTimestamp();
            if (_refilledAt == 0)
            {
                _tokens = rate;
            }
            else
            {
                _tokens = Math.Min(rate, _tokens + (time.GetElapsedTime(_refilledAt, now).TotalSeconds * rate));
            }

            _refilledAt = now;
            _tokens -= 1;
            return _tokens >= 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(-_tokens / rate);
        }
    }
}
