namespace Kdb.Raft;

internal enum ProgressState : byte
{
    Probe = 1,
    Replicate = 2,
    Snapshot = 3,
}

/// <summary>Leader's record of one peer: what it has, what to send next, and how much is in flight.</summary>
internal sealed class Progress(ulong next, bool isLearner, int maxInflight)
{
    private readonly Queue<ulong> _inflight = new();

    public ulong Match { get; set; }
    public ulong Next { get; set; } = next;
    public ProgressState State { get; private set; } = ProgressState.Probe;
    public bool ProbeSent { get; set; }
    public bool RecentActive { get; set; }
    public bool IsLearner { get; set; } = isLearner;
    public ulong HeartbeatRoundAcked { get; set; }
    public ulong PendingSnapshot { get; private set; }
    public long SnapshotAcked { get; set; }
    public long SnapshotSent { get; set; }
    public bool SnapshotProgressed { get; set; }
    /// <summary>The commit index carried by the last append sent to this peer.</summary>
    public ulong CommitSent { get; set; }

    public bool IsPaused => State switch
    {
        ProgressState.Probe => ProbeSent,
        ProgressState.Replicate => _inflight.Count >= maxInflight,
        _ => true,
    };

    public bool MaybeUpdate(ulong n)
    {
        var updated = false;
        if (Match < n)
        {
            Match = n;
            updated = true;
            ProbeSent = false;
        }
        Next = Math.Max(Next, n + 1);
        return updated;
    }

    public void OptimisticUpdate(ulong lastSent)
    {
        Next = lastSent + 1;
        _inflight.Enqueue(lastSent);
    }

    /// <summary>A heartbeat answered: the link works, so let one more append through even if responses were lost.</summary>
    public void FreeFirstInflight()
    {
        if (State == ProgressState.Replicate && _inflight.Count >= maxInflight)
        {
            _inflight.Dequeue();
        }
    }

    public void FreeInflightsTo(ulong index)
    {
        while (_inflight.Count > 0 && _inflight.Peek() <= index)
        {
            _inflight.Dequeue();
        }
    }

    /// <summary>Handles a rejection of the append at <paramref name="rejected"/>; false if it is stale.</summary>
    public bool MaybeDecrTo(ulong rejected, ulong hint)
    {
        if (State == ProgressState.Replicate)
        {
            if (rejected <= Match)
            {
                return false;
            }
            Next = Match + 1;
            return true;
        }
        if (Next - 1 != rejected)
        {
            return false;
        }
        Next = Math.Max(Math.Min(rejected, hint + 1), Match + 1);
        ProbeSent = false;
        return true;
    }

    public void BecomeProbe()
    {
        if (State == ProgressState.Snapshot)
        {
            Next = Math.Max(Match + 1, PendingSnapshot + 1);
            PendingSnapshot = 0;
        }
        else
        {
            Next = Match + 1;
        }
        State = ProgressState.Probe;
        ProbeSent = false;
        _inflight.Clear();
    }

    public void BecomeReplicate()
    {
        State = ProgressState.Replicate;
        Next = Match + 1;
        ProbeSent = false;
        _inflight.Clear();
    }

    public void BecomeSnapshot(ulong index)
    {
        State = ProgressState.Snapshot;
        PendingSnapshot = index;
        SnapshotAcked = 0;
        SnapshotSent = 0;
        SnapshotProgressed = true;
        _inflight.Clear();
    }
}
