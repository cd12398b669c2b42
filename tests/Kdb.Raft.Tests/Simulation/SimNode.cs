using Kdb.Raft.Storage;

namespace Kdb.Raft.Tests.Simulation;

internal sealed class ClientOp
{
    public int ClientId;
    public KvOp Kind;
    public int Key;
    public int Value;
    public int Expected;
    public long Call;
    public ulong OpId;
    public bool Done;
}

internal enum CrashPoint : byte
{
    BeforePersist = 1,
    AfterSnapshotInstallSaved = 2,
    AfterPersist = 3,
    AfterSend = 4,
    AfterSnapshotRestored = 5,
    MidApply = 6,
    BeforeLocalSnapshotSave = 7,
    AfterLocalSnapshotSave = 8,
}

/// <summary>A simulated process: the Raft core, its durable log on a simulated disk, and the KV state machine.</summary>
internal sealed class SimNode
{
    private readonly Simulator _sim;
    private readonly RaftConfig _config;
    private IRaftLogStore? _store;
    private ulong _lastCommitSeen;
    private Ready? _stalled;

    public SimNode(Simulator sim, ulong id, RaftConfig config, double clockRate, long clockOffset)
    {
        _sim = sim;
        Id = id;
        _config = config;
        ClockRate = clockRate;
        ClockOffset = clockOffset;
    }

    public ulong Id { get; }
    public SimFileSystem Disk { get; } = new();
    public IRaftNode? Core { get; private set; }
    public KvStateMachine Sm { get; private set; } = new();
    public NodeLog Log { get; } = new();
    public bool Up => Core is not null;
    public long PausedUntil { get; set; } = -1;
    public double ClockRate { get; }
    public long ClockOffset { get; }
    public long NextTickLocal { get; set; }
    public Dictionary<ulong, (ulong Term, ClientOp Op)> PendingWrites { get; } = [];
    public Dictionary<ulong, (ClientOp Op, ulong? Index)> PendingReads { get; } = [];
    public List<ClientOp> QueuedRequests { get; } = [];
    public ulong LocalSnapshotIndex { get; private set; }
    public int Restarts { get; private set; }

    public long LocalNow(long realMs) => (long)(realMs * ClockRate) + ClockOffset;

    // The cluster host's lease read (Kdb.Cluster ShardGroup.TryLeaseRead): the core's lease and commit index, published after
    // each GetReady and Advance and after a heartbeat response, and served later from these values without asking the core.
    private long _publishedLeaseUntil = long.MinValue;
    private ulong _publishedLeaseCommit;

    public void PublishLease()
    {
        var until = Core!.LeaseReadUntil;
        if (until != long.MinValue)
        {
            _publishedLeaseCommit = Core.CommitIndex;
        }
        _publishedLeaseUntil = until;
    }

    /// <summary>Called after the simulator steps a message into the core (the host publishes on heartbeat responses).</summary>
    public void AfterStep(Message m)
    {
        if (m.Type == MessageType.HeartbeatResponse)
        {
            PublishLease();
        }
    }

    public void Start(long now)
    {
        _store = RaftLogStore.Open(Disk, "/raft", new RaftLogStoreOptions { SegmentBytes = 4096 });
        var rec = _store.Recovered;
        Sm = new KvStateMachine { SnapshotPadding = _sim.Scenario.SnapshotPadding };
        if (rec.Snapshot is { } snap)
        {
            Sm.Restore(rec.SnapshotData.Span, snap.Index);
            Log.Reset(snap.Index, snap.Term);
            LocalSnapshotIndex = snap.Index;
        }
        else
        {
            Log.Reset(0, 0);
            LocalSnapshotIndex = 0;
        }
        foreach (var e in rec.Entries)
        {
            Log.Append(e);
        }
        Core = RaftNodeFactory.Create(_config with { RandomSeed = _config.RandomSeed + (ulong)Restarts * 7919 }, rec);
        _lastCommitSeen = Math.Max(rec.HardState.Commit, rec.Snapshot?.Index ?? 0);
        NextTickLocal = LocalNow(now) + _config.TickMs;
        PausedUntil = -1;
        _publishedLeaseUntil = long.MinValue;
    }

    public void Crash(Random rng, bool tear)
    {
        if (Core is null)
        {
            return;
        }
        Core = null;
        _stalled = null;
        _store?.Dispose();
        _store = null;
        Disk.Crash(rng, tear);
        Restarts++;
        foreach (var (_, w) in PendingWrites)
        {
            _sim.Unknown(w.Op);
        }
        PendingWrites.Clear();
        foreach (var (_, r) in PendingReads)
        {
            _sim.Abandon(r.Op);
        }
        PendingReads.Clear();
        foreach (var op in QueuedRequests)
        {
            _sim.Unknown(op);
        }
        QueuedRequests.Clear();
    }

    public void Submit(ClientOp op, long now)
    {
        var core = Core!;
        if (op.Kind == KvOp.Get)
        {
            // Every other read takes the host's published lease when it runs (both paths stay covered).
            if (op.OpId % 2 == 0 && LocalNow(now) < _publishedLeaseUntil)
            {
                PendingReads[op.OpId] = (op, _publishedLeaseCommit);
                ServeReads(now);
                return;
            }
            var st = core.ReadIndex(op.OpId, LocalNow(now));
            if (st == ReadIndexStatus.Pending)
            {
                PendingReads[op.OpId] = (op, null);
            }
            else
            {
                _sim.Abandon(op);
            }
            return;
        }
        var cmd = new KvCommand(op.Kind, op.OpId, op.Key, op.Value, op.Expected).Encode();
        var r = core.Propose(cmd);
        if (r.IsAccepted)
        {
            PendingWrites[r.Index] = (r.Term, op);
        }
        else
        {
            _sim.Abandon(op);
        }
    }

    /// <summary>One Ready cycle in the order a real host follows. Returns false if the node crashed on the way.</summary>
    public bool ProcessReady(long now)
    {
        var rd = Core!.GetReady();
        PublishLease();
        // Early messages leave before anything of this Ready is durable: that is the opt-in being proven.
        foreach (var m in rd.EarlyMessages)
        {
            _sim.Network.Send(m, now);
        }
        var allEarly = _sim.Scenario.UnsafeSendAllEarly;
        if (allEarly)
        {
            foreach (var m in rd.Messages)
            {
                SendMessage(m, now);
            }
        }
        if ((rd.EarlyMessages.Count > 0 || (allEarly && rd.Messages.Count > 0)) && rd.MustSync)
        {
            switch (_sim.StallIo(this))
            {
                case IoStall.Crashed:
                    return false;
                case IoStall.Stalled:
                    _stalled = rd;
                    return true;
            }
        }
        return FinishReady(rd, now);
    }

    /// <summary>The stalled fsync completes: the rest of the Ready cycle runs. Returns false if the node crashed on the way.</summary>
    public bool FinishStalled(long now)
    {
        if (_stalled is not { } rd)
        {
            return true;
        }
        _stalled = null;
        return FinishReady(rd, now);
    }

    private bool FinishReady(Ready rd, long now)
    {
        var core = Core!;
        var checker = _sim.Checker;
        if (_sim.MaybeCrashAt(this, CrashPoint.BeforePersist))
        {
            return false;
        }
        if (rd.Snapshot is { } snap)
        {
            _store!.SaveSnapshot(snap, rd.SnapshotData, replacesLog: true);
            Log.Reset(snap.Index, snap.Term);
            LocalSnapshotIndex = snap.Index;
            _sim.SnapshotsInstalled++;
            if (_sim.MaybeCrashAt(this, CrashPoint.AfterSnapshotInstallSaved))
            {
                return false;
            }
        }
        _store!.Append(rd.Entries, rd.HardState, rd.MustSync && !_sim.Scenario.UnsafeSkipFsync);
        foreach (var e in rd.Entries)
        {
            Log.Append(e);
        }
        checker.OnPersisted(Id, Log, rd.Entries);
        if (rd.HardState is { } hs && hs.Commit > _lastCommitSeen)
        {
            checker.OnCommitted(Id, hs.Term, Log, _lastCommitSeen + 1, hs.Commit);
            _lastCommitSeen = hs.Commit;
        }
        if (rd.SoftState is { Role: RaftRole.Leader })
        {
            checker.OnLeader(Id, core.Term, Log);
        }
        if (_sim.MaybeCrashAt(this, CrashPoint.AfterPersist))
        {
            return false;
        }
        if (!_sim.Scenario.UnsafeSendAllEarly)
        {
            foreach (var m in rd.Messages)
            {
                SendMessage(m, now);
            }
        }
        if (_sim.MaybeCrashAt(this, CrashPoint.AfterSend))
        {
            return false;
        }
        if (rd.Snapshot is { } installed)
        {
            Sm.Restore(rd.SnapshotData.Span, installed.Index);
            FailWritesUpTo(installed.Index);
            if (_sim.MaybeCrashAt(this, CrashPoint.AfterSnapshotRestored))
            {
                return false;
            }
        }
        foreach (var e in rd.CommittedEntries)
        {
            if (e.Index <= Sm.AppliedIndex)
            {
                continue;
            }
            var result = Sm.Apply(e);
            checker.OnApplied(Id, e);
            if (PendingWrites.Remove(e.Index, out var w))
            {
                if (w.Term == e.Term)
                {
                    _sim.Complete(w.Op, result, now);
                }
                else
                {
                    _sim.Abandon(w.Op);
                }
            }
            if (_sim.MaybeCrashAt(this, CrashPoint.MidApply))
            {
                return false;
            }
        }
        foreach (var rs in rd.ReadStates)
        {
            if (PendingReads.TryGetValue(rs.Context, out var r))
            {
                PendingReads[rs.Context] = (r.Op, rs.Index);
            }
        }
        core.Advance(rd);
        PublishLease();
        ServeReads(now);
        return MaybeSnapshot();
    }

    private void SendMessage(Message m, long now)
    {
        if (m.Type == MessageType.VoteResponse && !m.Reject)
        {
            _sim.Checker.OnVoteGranted(Id, m.Term, m.To);
        }
        _sim.Network.Send(m, now);
    }

    private void FailWritesUpTo(ulong index)
    {
        // Entries covered by an installed snapshot were applied elsewhere; we cannot tell our proposals' fate here.
        List<ulong>? drop = null;
        foreach (var (i, w) in PendingWrites)
        {
            if (i <= index)
            {
                _sim.Unknown(w.Op);
                (drop ??= []).Add(i);
            }
        }
        if (drop is not null)
        {
            foreach (var i in drop)
            {
                PendingWrites.Remove(i);
            }
        }
    }

    private void ServeReads(long now)
    {
        List<ulong>? done = null;
        foreach (var (ctx, r) in PendingReads)
        {
            if (r.Index is { } idx && Sm.AppliedIndex >= idx)
            {
                _sim.Complete(r.Op, Sm.Get(r.Op.Key), now);
                (done ??= []).Add(ctx);
            }
        }
        if (done is not null)
        {
            foreach (var c in done)
            {
                PendingReads.Remove(c);
            }
        }
    }

    private bool MaybeSnapshot()
    {
        var every = _sim.Scenario.SnapshotEvery;
        var core = Core!;
        if (every <= 0 || core.AppliedIndex < LocalSnapshotIndex + (ulong)every)
        {
            return true;
        }
        if (_sim.MaybeCrashAt(this, CrashPoint.BeforeLocalSnapshotSave))
        {
            return false;
        }
        var data = Sm.Snapshot();
        var retain = (ulong)_sim.Scenario.RetainEntries;
        var meta = core.Compact(data, retain);
        _store!.SaveSnapshot(meta, data, replacesLog: false);
        LocalSnapshotIndex = meta.Index;
        if (_sim.MaybeCrashAt(this, CrashPoint.AfterLocalSnapshotSave))
        {
            return false;
        }
        if (meta.Index > retain)
        {
            _store.Compact(meta.Index - retain);
        }
        return true;
    }
}
