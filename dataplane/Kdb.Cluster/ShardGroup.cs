using Kdb.Raft;
using Kdb.Raft.Storage;
using Kdb.Storage;

namespace Kdb.Cluster;

/// <summary>
/// One local replica of a shard group: the Raft core, its durable log, and the storage engine as its state
/// machine (Raft mode: no WAL of its own; entries after the engine's last flush are replayed from the log).
/// Everything but the volatile status fields is touched only on the host's loop thread.
/// </summary>
internal sealed class ShardGroup : IDisposable
{
    /// <summary>Whether the group runs with <see cref="RaftConfig.DeferCommitOnlyAppends"/> (see its use below).</summary>
    private const bool DeferCommitAdvances = true;

    private readonly string _directory;
    private readonly ClusterOptions _options;
    private readonly IRaftLogStore _log;
    private readonly Dictionary<ulong, (ulong Term, TaskCompletionSource<ProposeOutcome> Done, long Started)> _proposals = [];
    // Creates posted since the last round, proposed together as one entry; and the waiters of each batch entry in flight.
    private readonly List<(byte[] Command, TaskCompletionSource<ProposeOutcome> Done)> _creates = [];
    private readonly Dictionary<ulong, (ulong Term, TaskCompletionSource<ProposeOutcome>[] Done, long Started)> _batches = [];
    private Func<ulong, GroupMember?>? _member;
    // A batch entry stays well under the core's entry limit (a create is a few hundred bytes).
    private const int MaxBatchBytes = 1 << 20;
    private readonly Dictionary<ulong, (TaskCompletionSource Done, long Deadline)> _reads = [];
    private readonly PriorityQueue<TaskCompletionSource, ulong> _appliedWaiters = new();
    private readonly List<(long Deadline, TaskCompletionSource Done)> _readRetries = [];
    private ulong _nextRead;
    private ulong _lastSnapshotIndex;
    // What the entries applied since the last snapshot take in the Raft log (held in memory until a snapshot compacts it).
    private long _logBytesSinceSnapshot;
    private const int EntryOverheadBytes = 64;
    // When this replica last applied an import entry (Environment.TickCount64), and whether a snapshot waits for the import to end.
    private long? _importAppliedAt;
    private bool _snapshotDeferred;
    private const long RetainBytes = 4L << 20;

    private ShardGroup(string directory, ClusterOptions options, GroupManifest manifest, IRaftLogStore log, IRaftNode node, ShardStateMachine stateMachine)
    {
        _directory = directory;
        _options = options;
        Manifest = manifest;
        _log = log;
        Node = node;
        StateMachine = stateMachine;
        _lastSnapshotIndex = log.Recovered.Snapshot?.Index ?? 0;
        Refresh();
    }

    public ulong GroupId => Manifest.GroupId;
    public GroupManifest Manifest { get; private set; }
    public IRaftNode Node { get; }
    public ShardStateMachine StateMachine { get; }
    public IKvEngine Engine => StateMachine.Engine;

    // Read from other threads.
    public volatile RaftRole Role;
    public ulong LeaderRaftId => Interlocked.Read(ref _leader);
    public ulong AppliedIndex => Interlocked.Read(ref _applied);
    public ulong Term => Interlocked.Read(ref _term);
    public ulong CommitIndex => Interlocked.Read(ref _commit);
    private ulong _leader;
    private ulong _applied;
    private ulong _leaseCommit;
    private long _leaseUntil = long.MinValue;
    private ulong _term;
    private ulong _commit;

    public static ShardGroup Open(string directory, ClusterOptions options, GroupManifest manifest, ulong selfRaftId)
    {
        SnapshotPack.DeleteStale(directory);
        var log = RaftLogStore.Open(PhysicalRaftFileSystem.Instance, Path.Combine(directory, "raft"));
        var enginePath = Path.Combine(directory, "engine");
        if (log.Recovered.Snapshot is not null && !Directory.Exists(enginePath))
        {
            // Crashed between saving a leader's snapshot and installing it: install it now.
            CheckpointPacker.Unpack(log.Recovered.SnapshotData.Span, enginePath);
        }
        var engine = KvEngine.Open(enginePath, new EngineOptions { RaftMode = true, MemtableBytes = options.MemtableBytes });
        if (log.Recovered.Snapshot is { } saved && saved.Index > engine.LastAppliedIndex)
        {
            // The log was replaced by a leader's snapshot the engine never finished installing.
            engine.Dispose();
            Directory.Delete(enginePath, recursive: true);
            CheckpointPacker.Unpack(log.Recovered.SnapshotData.Span, enginePath);
            engine = KvEngine.Open(enginePath, new EngineOptions { RaftMode = true, MemtableBytes = options.MemtableBytes });
        }
        var config = new RaftConfig
        {
            Id = selfRaftId,
            GroupId = manifest.GroupId,
            // Members grows as replicas are added (it is the address book), so it is the initial membership only in manifests
            // written before Bootstrap was recorded.
            BootstrapVoters = manifest.Bootstrap is { } bootstrap ? [.. bootstrap] : manifest.Joined ? [] : [.. manifest.Members.Select(m => m.RaftId)],
            ElectionTicks = options.ElectionTicks,
            HeartbeatTicks = options.HeartbeatTicks,
            TickMs = options.TickMs,
            ReadMode = options.ReadMode,
            AsyncLeaderAppend = options.AsyncLeaderAppend,
            // Followers learn a commit advance with the next append while entries are in flight (a wake-up less per round);
            // the advance that drains them is sent at once, so an idle group's followers are current. An earlier form that
            // deferred even the last advance to the next tick left followers' local state a tick behind (docs/cluster-node.md).
            DeferCommitOnlyAppends = DeferCommitAdvances,
            // A snapshot from the leader streams to a staging file next to the log, not into memory.
            SnapshotSink = log.CreateSnapshotSink,
            RandomSeed = selfRaftId ^ manifest.GroupId ^ (ulong)Environment.TickCount64,
        };
        var node = RaftNodeFactory.Create(config, log.Recovered);
        return new ShardGroup(directory, options, manifest, log, node, new ShardStateMachine(engine));
    }

    public void Propose(byte[] command, TaskCompletionSource<ProposeOutcome> done, Func<ulong, GroupMember?> member)
    {
        var r = Node.Propose(command);
        if (r.Status == ProposeStatus.Accepted)
        {
            _proposals[r.Index] = (r.Term, done, System.Diagnostics.Stopwatch.GetTimestamp());
        }
        else
        {
            Refuse(r, done, member);
        }
    }

    private static void Refuse(ProposeResult r, TaskCompletionSource<ProposeOutcome> done, Func<ulong, GroupMember?> member)
    {
        switch (r.Status)
        {
            case ProposeStatus.NotLeader or ProposeStatus.TransferInProgress:
                done.TrySetResult(new ProposeOutcome(null, r.Leader == 0 ? null : member(r.Leader), r.Error));
                break;
            case ProposeStatus.TooLarge:
                done.TrySetException(new ClusterException("54000", r.Error ?? "command too large for one log entry"));
                break;
            default:
                done.TrySetException(new ClusterException("XX000", r.Error ?? r.Status.ToString()));
                break;
        }
    }

    /// <summary>Queues a create for <see cref="ProposeQueuedCreates"/> (loop thread).</summary>
    public void QueueCreate(byte[] command, TaskCompletionSource<ProposeOutcome> done, Func<ulong, GroupMember?> member)
    {
        _member = member;
        _creates.Add((command, done));
    }

    /// <summary>Loop thread, once per round: the creates queued since the last round go into the log as one entry (a
    /// million creates are then a few thousand entries, not a million), or as a plain create when there is only one.</summary>
    public void ProposeQueuedCreates()
    {
        var start = 0;
        while (start < _creates.Count)
        {
            var end = start;
            var bytes = 0;
            while (end < _creates.Count && (end == start || bytes + _creates[end].Command.Length + 4 <= MaxBatchBytes))
            {
                bytes += _creates[end].Command.Length + 4;
                end++;
            }
            if (end - start == 1)
            {
                Propose(_creates[start].Command, _creates[start].Done, _member!);
            }
            else
            {
                ProposeBatch(start, end);
            }
            start = end;
        }
        _creates.Clear();
    }

    private void ProposeBatch(int start, int end)
    {
        var commands = new byte[end - start][];
        var waiters = new TaskCompletionSource<ProposeOutcome>[end - start];
        for (var i = start; i < end; i++)
        {
            commands[i - start] = _creates[i].Command;
            waiters[i - start] = _creates[i].Done;
        }
        var r = Node.Propose(ShardCommand.CreateDatabaseBatch(commands));
        if (r.Status == ProposeStatus.Accepted)
        {
            _batches[r.Index] = (r.Term, waiters, System.Diagnostics.Stopwatch.GetTimestamp());
            return;
        }
        // Refused as a whole (not the leader, a transfer): every waiter learns what one create would.
        foreach (var done in waiters)
        {
            Refuse(r, done, _member!);
        }
    }

    /// <summary>Commit latency sink (the host's metrics); called on the loop thread.</summary>
    public Action<ulong, double>? CommitLatency;

    /// <summary>In the host's ready queue (loop thread only).</summary>
    public bool Queued;

    // The leader last seen by the loop; MaxValue: never looked yet (the first look counts as a change, as at startup).
    private ulong _observedLeader = ulong.MaxValue;
    private long _leaderChanges;

    /// <summary>Leader changes this replica has seen since it opened.</summary>
    public long LeaderChanges => Interlocked.Read(ref _leaderChanges);

    /// <summary>Loop thread, after the group was touched: on a leader change, fails proposals that can no longer commit
    /// and asks the new leader for pending reads. True when the leader changed.</summary>
    public bool ObserveLeader()
    {
        var leader = LeaderRaftId;
        if (leader == _observedLeader)
        {
            return false;
        }
        _observedLeader = leader;
        Interlocked.Increment(ref _leaderChanges);
        FailStaleProposals();
        ReissueReads();
        return true;
    }

    public ProposeResult ProposeConfChange(ConfChange change) => Node.ProposeConfChange(change);

    public void ReadIndex(TaskCompletionSource done, long nowMs)
    {
        Issue(done, nowMs + (long)_options.LeaderWait.TotalMilliseconds, nowMs);
    }

    private void Issue(TaskCompletionSource done, long deadline, long nowMs)
    {
        var ctx = ++_nextRead;
        if (Node.ReadIndex(ctx, nowMs) == ReadIndexStatus.Pending)
        {
            _reads[ctx] = (done, deadline);
        }
        else
        {
            _readRetries.Add((deadline, done));
        }
    }

    /// <summary>The leader changed: reads waiting on the old one may never be answered, so ask the new one.</summary>
    public void ReissueReads()
    {
        foreach (var (_, read) in _reads)
        {
            _readRetries.Add((read.Deadline, read.Done));
        }
        _reads.Clear();
    }

    public void WaitApplied(ulong index, TaskCompletionSource done, long nowMs)
    {
        if (AppliedIndex >= index)
        {
            done.TrySetResult();
        }
        else
        {
            _appliedWaiters.Enqueue(done, index);
            if (DeferCommitAdvances && Node.Role != RaftRole.Leader && index > Node.CommitIndex)
            {
                // A follower waiting for an entry committed elsewhere (a forwarded write): the leader holds back commit-only
                // appends (DeferCommitOnlyAppends) but sends the commit index with its answer to a read index request.
                var nudge = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                // Nobody awaits it: a leaderless timeout must not surface as an unobserved task exception.
                nudge.Task.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
                Issue(nudge, nowMs + (long)_options.LeaderWait.TotalMilliseconds, nowMs);
            }
        }
    }

    public void Tick(long nowMs)
    {
        Node.Tick(nowMs);
        if (_pack is { IsCompleted: true })
        {
            FinishPack();
        }
        if (_snapshotDeferred && _pack is null)
        {
            // The import may have ended with its last entry: nothing else would look again until the next entry applies.
            MaybeSnapshot();
        }
        if (_readRetries.Count > 0)
        {
            var retries = _readRetries.ToArray();
            _readRetries.Clear();
            foreach (var (deadline, done) in retries)
            {
                if (nowMs > deadline)
                {
                    done.TrySetException(new ClusterException("40001", "the shard group has no leader; retry the transaction"));
                }
                else
                {
                    Issue(done, deadline, nowMs);
                }
            }
        }
        if (_reads.Count > 0)
        {
            List<ulong>? expired = null;
            foreach (var (ctx, read) in _reads)
            {
                if (nowMs > read.Deadline)
                {
                    read.Done.TrySetException(new ClusterException("40001", "the shard group's leader did not confirm the read; retry the transaction"));
                    (expired ??= []).Add(ctx);
                }
            }
            foreach (var ctx in expired ?? [])
            {
                _reads.Remove(ctx);
            }
        }
    }

    /// <summary>First half of a round (dataplane/Kdb.Raft/README.md, shared log writer): a leader's appends leave at once
    /// (async leader append), the entries and hard state are written but not yet synced. The host then syncs every
    /// group's log together and calls <see cref="FinishReady"/>.</summary>
    public Ready BeginReady(Action<IReadOnlyList<Message>> send)
    {
        var rd = Node.GetReady();
        // Before anything of this round leaves (messages, applies): a commit index known outside must be published here first.
        PublishLease();
        send(rd.EarlyMessages);
        if (rd.Snapshot is { } snap)
        {
            if (rd.SnapshotFile is { } staged)
            {
                _log.SaveSnapshotFile(snap, staged, rd.SnapshotChecksum, replacesLog: true);
            }
            else
            {
                _log.SaveSnapshot(snap, rd.SnapshotData, replacesLog: true);
            }
        }
        if (rd.Bootstrap is { } bootstrap)
        {
            // Durable before the entries replayed from it (the manifest's save syncs).
            Manifest = Manifest with { Bootstrap = [.. bootstrap] };
            Manifest.Save(_directory);
        }
        _log.Append(rd.Entries, rd.HardState, sync: false);
        return rd;
    }

    /// <summary>The log store, for the host's shared sync.</summary>
    public IRaftLogStore Log => _log;

    /// <summary>Second half of a round, once the log is durable: messages that depend on it, snapshot install, apply,
    /// reads, advance.</summary>
    public void FinishReady(Ready rd, Action<IReadOnlyList<Message>> send)
    {
        send(rd.Messages);
        if (rd.Snapshot is { } installed)
        {
            InstallSnapshot(rd.SnapshotData);
            _lastSnapshotIndex = installed.Index;
            _logBytesSinceSnapshot = 0;
        }
        foreach (var e in rd.CommittedEntries)
        {
            _logBytesSinceSnapshot += e.Data.Length + EntryOverheadBytes;
            ApplyResult? result = null;
            if (e.Type == EntryType.ConfChange)
            {
                LearnMember(ConfChange.Decode(e.Data.Span));
                result = new ApplyResult(ApplyStatus.Ok, e.Index);
            }
            else if (e.Data.Length > 1 && e.Data.Span[1] == (byte)ShardCommandType.CreateDatabaseBatch)
            {
                var results = e.Index > Engine.LastAppliedIndex ? StateMachine.ApplyCreateBatch(e.Index, e.Data) : [];
                CompleteBatch(e, results);
                continue;
            }
            else if (e.Data.Length > 0 && e.Index > Engine.LastAppliedIndex)
            {
                result = StateMachine.Apply(e.Index, e.Data);
                if (e.Data.Length > 1 && e.Data.Span[1] == (byte)ShardCommandType.ImportChunk)
                {
                    _importAppliedAt = Environment.TickCount64;
                }
            }
            if (_proposals.Remove(e.Index, out var pending))
            {
                CommitLatency?.Invoke(GroupId, System.Diagnostics.Stopwatch.GetElapsedTime(pending.Started).TotalSeconds);
                pending.Done.TrySetResult(pending.Term == e.Term
                    ? new ProposeOutcome(result ?? new ApplyResult(ApplyStatus.Ok, e.Index), null)
                    : new ProposeOutcome(null, null, "leadership changed before the proposal committed"));
            }
        }
        foreach (var rs in rd.ReadStates)
        {
            if (_reads.Remove(rs.Context, out var read))
            {
                _appliedWaiters.Enqueue(read.Done, rs.Index);
            }
        }
        Node.Advance(rd);
        Refresh();
        while (_appliedWaiters.TryPeek(out var waiter, out var index) && index <= Node.AppliedIndex)
        {
            _appliedWaiters.Dequeue();
            waiter.TrySetResult();
        }
        MaybeSnapshot();
    }

    private void CompleteBatch(Entry e, ApplyResult[] results)
    {
        if (!_batches.Remove(e.Index, out var pending))
        {
            return;
        }
        CommitLatency?.Invoke(GroupId, System.Diagnostics.Stopwatch.GetElapsedTime(pending.Started).TotalSeconds);
        for (var i = 0; i < pending.Done.Length; i++)
        {
            // No results: replayed below the engine's applied index (already applied before a restart).
            var result = results.Length == 0 ? new ApplyResult(ApplyStatus.Ok, e.Index) : results[Math.Min(i, results.Length - 1)];
            pending.Done[i].TrySetResult(pending.Term == e.Term
                ? new ProposeOutcome(result, null)
                : new ProposeOutcome(null, null, "leadership changed before the proposal committed"));
        }
    }

    /// <summary>A proposal whose leader lost its term can never commit: fail what is pending once this node is no longer leader.</summary>
    public void FailStaleProposals()
    {
        if (Node.Role == RaftRole.Leader || (_proposals.Count == 0 && _batches.Count == 0))
        {
            return;
        }
        foreach (var (index, pending) in _batches)
        {
            if (index > Node.LastIndex || Node.Term > pending.Term)
            {
                foreach (var done in pending.Done)
                {
                    done.TrySetException(new ClusterException("08007", "leadership changed while committing; the outcome is unknown"));
                }
                _batches.Remove(index);
            }
        }
        foreach (var (index, pending) in _proposals)
        {
            // It may still commit under the new leader: the outcome is unknown to this proposer.
            if (index > Node.LastIndex || Node.Term > pending.Term)
            {
                pending.Done.TrySetException(new ClusterException("08007", "leadership changed while committing; the transaction's outcome is unknown"));
                _proposals.Remove(index);
            }
        }
    }

    /// <summary>Raised on the loop when an applied membership change names a member this replica had no address for.</summary>
    public event Action<GroupMember>? MemberLearned;

    /// <summary>
    /// Only the leader that took a membership change knew the new member's address; every replica learns it from the
    /// change's entry, so a later leader can reach the member (and status can name it). Replays after a restart find it
    /// known already.
    /// </summary>
    private void LearnMember(ConfChange change)
    {
        if (change.Type == ConfChangeType.RemoveNode || GroupMember.FromContext(change.Context.Span, change.NodeId) is not { } member
            || Manifest.Members.Exists(m => m.RaftId == member.RaftId))
        {
            return;
        }
        UpdateMembers([.. Manifest.Members, member]);
        MemberLearned?.Invoke(member);
    }

    public void UpdateMembers(List<GroupMember> members)
    {
        Manifest = Manifest with { Members = members };
        Manifest.Save(_directory);
    }

    /// <summary>Lease read on the caller's thread (no hop to the loop): true with the index to wait for when this replica
    /// leads under a running lease. Published after every step and before every round's output, commit index before lease,
    /// so a reader that sees a lease also sees a commit index at least as new as anything acknowledged before it.</summary>
    public bool TryLeaseRead(long nowMs, out ulong index)
    {
        var until = Volatile.Read(ref _leaseUntil);
        index = Volatile.Read(ref _leaseCommit);
        return nowMs < until;
    }

    /// <summary>Publishes the core's lease (loop thread): cheap enough to call after every message.</summary>
    public void PublishLease()
    {
        var until = Node.LeaseReadUntil;
        if (until == long.MinValue)
        {
            Volatile.Write(ref _leaseUntil, long.MinValue);
            return;
        }
        Volatile.Write(ref _leaseCommit, Node.CommitIndex);
        Volatile.Write(ref _leaseUntil, until);
    }

    private void Refresh()
    {
        PublishLease();
        Role = Node.Role;
        Interlocked.Exchange(ref _leader, Node.Leader);
        Interlocked.Exchange(ref _applied, Node.AppliedIndex);
        Interlocked.Exchange(ref _term, Node.Term);
        Interlocked.Exchange(ref _commit, Node.CommitIndex);
    }

    private void MaybeSnapshot()
    {
        // A snapshot packs the whole engine, so its cost grows with the engine: take one after enough entries only once the
        // log since the last one is a fair share of the engine (a million small creates must not pack a large engine fifty
        // times), and whatever the count once the log alone is large (it is held in memory until then).
        if (_pack is not null)
        {
            if (_pack.IsCompleted)
            {
                FinishPack();
            }
            return;
        }
        _snapshotDeferred = false;
        var entries = Node.AppliedIndex - _lastSnapshotIndex;
        if (entries < _options.SnapshotEveryEntries && _logBytesSinceSnapshot < _options.SnapshotLogBytes)
        {
            return;
        }
        var stats = Engine.Stats;
        var engineBytes = stats.SegmentBytes + stats.DeltaBytes;
        // The log alone is held until a quarter of the engine (not the whole engine: batched creates make few, large
        // entries, so the entry count never triggers, and a million databases' log stayed in memory until it matched the
        // engine); packs still grow geometrically with the engine, so their total stays a small multiple of it.
        var due = (entries >= _options.SnapshotEveryEntries && _logBytesSinceSnapshot >= engineBytes / 4)
            || _logBytesSinceSnapshot >= Math.Max(_options.SnapshotLogBytes, engineBytes / 4);
        if (!due)
        {
            return;
        }
        // While an import streams in, the pack would copy the whole engine on every replica at once (in a 128 MB restore on
        // 2 cores: 12 % of the nodes' CPU and most of their page-cache writes): it waits for the import to end, unless the
        // log held in memory meanwhile grows past four times the usual bar.
        _snapshotDeferred = _importAppliedAt is { } importAt
            && Environment.TickCount64 - importAt < (long)_options.ImportSnapshotQuiet.TotalMilliseconds
            && _logBytesSinceSnapshot < 4 * _options.SnapshotLogBytes;
        if (_snapshotDeferred)
        {
            return;
        }
        // Entries kept after the snapshot (for followers slightly behind) are bounded in bytes too: 2,000 batch entries of a
        // few hundred creates each would keep most of the log. The average entry size since the last snapshot estimates it.
        var averageEntryBytes = Math.Max(1, _logBytesSinceSnapshot / (long)Math.Max(1, entries));
        var retain = Math.Min(_options.RetainEntries, (ulong)Math.Max(1, RetainBytes / averageEntryBytes));
        // Packing a large engine takes seconds: only the capture runs here (no I/O), the packing on a thread of its own, and
        // the loop takes the packed file back in FinishPack. Stalling the loop would stop every group's heartbeats.
        _pack = SnapshotPack.Start(_directory, Engine, Node.CaptureSnapshotMetadata(), retain, _logBytesSinceSnapshot,
            _options.SnapshotPackHook is { } hook ? token => hook(GroupId, token) : null);
        _logBytesSinceSnapshot = 0;
    }

    // The snapshot being packed off the loop (one at a time).
    private SnapshotPack? _pack;

    /// <summary>Loop thread, once the pack finished: the log store takes its file (a rename) and the log is compacted at
    /// the captured index; a failed or superseded pack is discarded and the old snapshot and log stay.</summary>
    private void FinishPack()
    {
        var pack = _pack!;
        if (pack.Succeeded && !pack.EnginePersisted && Node.CanCompact(pack.Meta))
        {
            // The engine's own flush of what the capture froze is still running: the log may not drop those entries yet.
            return;
        }
        _pack = null;
        using (pack)
        {
            if (!pack.Succeeded)
            {
                // Counted again, so the next snapshot is due as soon as this one was.
                _logBytesSinceSnapshot += pack.LogBytes;
                return;
            }
            if (!Node.CanCompact(pack.Meta))
            {
                return;
            }
            var data = _log.SaveSnapshotFile(pack.Meta, pack.Path, pack.Checksum, replacesLog: false);
            pack.HandedOver();
            Node.Compact(pack.Meta, data, pack.Checksum, pack.Retain);
            if (pack.Meta.Index > pack.Retain)
            {
                _log.Compact(pack.Meta.Index - pack.Retain);
            }
            _lastSnapshotIndex = pack.Meta.Index;
        }
    }

    public byte[] PackCheckpoint()
    {
        byte[]? packed = null;
        PackCheckpoint(temp => packed = CheckpointPacker.Pack(temp));
        return packed!;
    }

    private void PackCheckpoint(Action<string> pack)
    {
        var temp = Path.Combine(_directory, "checkpoint.tmp");
        if (Directory.Exists(temp))
        {
            Directory.Delete(temp, recursive: true);
        }
        Engine.Checkpoint(temp);
        try
        {
            pack(temp);
        }
        finally
        {
            Directory.Delete(temp, recursive: true);
        }
    }

    private void InstallSnapshot(ReadOnlyMemory<byte> data)
    {
        var enginePath = Path.Combine(_directory, "engine");
        var incoming = Path.Combine(_directory, "engine.incoming");
        var old = Path.Combine(_directory, "engine.old");
        foreach (var d in new[] { incoming, old })
        {
            if (Directory.Exists(d))
            {
                Directory.Delete(d, recursive: true);
            }
        }
        CheckpointPacker.Unpack(data.Span, incoming);
        // A pack of the engine being replaced is superseded.
        _pack?.Dispose();
        _pack = null;
        Engine.Dispose();
        Directory.Move(enginePath, old);
        Directory.Move(incoming, enginePath);
        Directory.Delete(old, recursive: true);
        StateMachine.ReplaceEngine(KvEngine.Open(enginePath, new EngineOptions { RaftMode = true, MemtableBytes = _options.MemtableBytes }));
    }

    public void Dispose()
    {
        foreach (var (_, pending) in _proposals)
        {
            pending.Done.TrySetException(new ClusterException("08007", "the node is shutting down; the transaction's outcome is unknown"));
        }
        foreach (var (_, read) in _reads)
        {
            read.Done.TrySetException(new ClusterException("57P01", "the node is shutting down"));
        }
        foreach (var (_, done) in _creates)
        {
            done.TrySetException(new ClusterException("57P01", "the node is shutting down"));
        }
        foreach (var (_, batch) in _batches)
        {
            foreach (var done in batch.Done)
            {
                done.TrySetException(new ClusterException("08007", "the node is shutting down; the outcome is unknown"));
            }
        }
        try
        {
            _pack?.Dispose();
            _pack = null;
            Engine.Flush();
        }
        finally
        {
            Engine.Dispose();
            _log.Dispose();
        }
    }
}
