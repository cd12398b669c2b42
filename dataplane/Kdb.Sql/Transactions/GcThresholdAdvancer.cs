namespace Kdb.Sql.Transactions;

/// <summary>
/// Advances a store's GC threshold to the version that was current <see cref="Retention"/> ago (DESIGN: "for
/// example, every few seconds to the index applied ten minutes earlier"), so compaction can drop old
/// tombstones while every transaction younger than the retention still validates. Driven by the caller's
/// clock: call <see cref="Tick"/> periodically.
/// </summary>
public sealed class GcThresholdAdvancer
{
    private readonly Queue<(DateTimeOffset At, ulong Version)> _samples = new();
    private readonly Action<ulong> _setThreshold;

    /// <param name="setThreshold">Raises the threshold (e.g. <see cref="LocalSqlStore.SetGcThreshold"/>).</param>
    /// <param name="retention">How long a snapshot stays able to commit.</param>
    public GcThresholdAdvancer(Action<ulong> setThreshold, TimeSpan retention)
    {
        _setThreshold = setThreshold;
        Retention = retention;
    }

    /// <summary>How far behind the newest version the threshold trails, in time.</summary>
    public TimeSpan Retention { get; }

    /// <summary>The threshold last set (0 before the first advance).</summary>
    public ulong Threshold { get; private set; }

    /// <summary>Records <paramref name="currentVersion"/> at <paramref name="now"/> and raises the threshold to the newest version at least <see cref="Retention"/> old.</summary>
    public void Tick(DateTimeOffset now, ulong currentVersion)
    {
        _samples.Enqueue((now, currentVersion));
        ulong candidate = 0;
        while (_samples.Count > 0 && now - _samples.Peek().At >= Retention)
        {
            candidate = _samples.Dequeue().Version;
        }

        if (candidate > Threshold)
        {
            Threshold = candidate;
            _setThreshold(candidate);
        }
    }
}
