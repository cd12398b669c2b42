using System.Collections.Concurrent;
using System.Diagnostics;
using Kdb.Raft;
using Kdb.Storage;

namespace Kdb.Cluster;

/// <summary>
/// The shard-group replicas of one node, driven by one loop thread (Raft cores are not thread-safe and apply
/// must be serial per group). Other threads hand it work through a queue and await the results.
/// </summary>
public sealed class ClusterHost : IDisposable
{
    private readonly ClusterOptions _options;
    private readonly Action<Message> _send;
    private readonly Action<GroupMember> _peerAdded;
    // Hands the round's queued messages to the sockets (a transport with caller flushes): called once the round's early
    // messages are queued, before the shared fsync, so followers write while the leader syncs, and again after the round.
    private readonly Action _flush;
    private readonly ConcurrentQueue<object> _inbox = new();
    private readonly AutoResetEvent _wake = new(false);
    private readonly ConcurrentDictionary<ulong, ShardGroup> _groups = new();
    // Ticks walk every group: an array (replaced on attach) instead of the dictionary's Values, which copies under all its
    // locks on each call.
    private ShardGroup[] _all = [];
    // The ready queue (loop thread only): groups touched since they were last visited (a message, a proposal, a read, a
    // tick). A round visits only these, so many idle groups cost nothing between ticks.
    private List<ShardGroup> _dirty = [];
    private List<ShardGroup> _visiting = [];
    private readonly ConcurrentDictionary<string, ulong> _databaseGroups = new(StringComparer.Ordinal);
    private const int MaxCachedPlacements = 100_000;
    private readonly Thread _loop;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly List<(ShardGroup Group, Ready Ready)> _round = [];
    private readonly List<Kdb.Raft.Storage.IRaftLogStore> _syncs = [];
    private volatile bool _stopping;
    // 1 while the loop is about to wait or waiting: producers signal the event only then (one syscall per wait, not per message).
    private int _sleeping;
    private long _leaderChanges;

    private ClusterHost(ClusterOptions options, Action<Message> send, Action<GroupMember> peerAdded, Action? flush)
    {
        _options = options;
        _send = send;
        _peerAdded = peerAdded;
        _flush = flush ?? (static () => { });
        RaftId = GroupMember.RaftIdOf(options.NodeId);
        _loop = new Thread(Loop) { IsBackground = true, Name = "kdb-raft-loop" };
    }

    /// <summary>This node's Raft member id in every group.</summary>
    public ulong RaftId { get; }

    public string NodeId => _options.NodeId;

    /// <summary>The node's data directory (the groups live under it; admin work such as backup import stages files here).</summary>
    public string DataDirectory => _options.DataDirectory;

    public long LeaderChanges => Interlocked.Read(ref _leaderChanges);

    /// <summary>Group visits of the loop (a group looked at for output) and ticks, since open: with the ready queue, rounds
    /// between ticks visit only the groups that were touched.</summary>
    public long GroupVisits => Volatile.Read(ref _groupVisits);

    public long Ticks => Volatile.Read(ref _ticks);

    private long _groupVisits;
    private long _ticks;

    /// <summary>Leader changes one local replica has seen.</summary>
    public long LeaderChangesOf(ulong groupId) => Group(groupId).LeaderChanges;

    /// <summary>Databases a group hosts (kept by apply; no scan).</summary>
    public long DatabaseCount(ulong groupId) => Group(groupId).StateMachine.DatabaseCount;

    /// <summary>Called on the loop thread with (group, seconds from proposal to apply) for each command this node proposed
    /// as leader (the metrics' commit latency).</summary>
    public Action<ulong, double>? CommitLatency
    {
        get => _commitLatency;
        set
        {
            _commitLatency = value;
            foreach (var g in _all)
            {
                g.CommitLatency = value;
            }
        }
    }

    private Action<ulong, double>? _commitLatency;

    /// <summary>Opens every group found under the data directory and starts the loop. <paramref name="flush"/>: called on the
    /// loop thread after the sends of each half round (a transport that writes only when its caller flushes).</summary>
    public static ClusterHost Open(ClusterOptions options, Action<Message> send, Action<GroupMember> peerAdded, Action? flush = null)
    {
        var host = new ClusterHost(options, send, peerAdded, flush);
        var root = Path.Combine(options.DataDirectory, "groups");
        Directory.CreateDirectory(root);
        foreach (var dir in Directory.GetDirectories(root))
        {
            if (!File.Exists(GroupManifest.PathIn(dir)))
            {
                continue; // A creation that crashed before its manifest was written: nothing was acknowledged.
            }
            var manifest = GroupManifest.Load(dir);
            host.Attach(ShardGroup.Open(dir, options, manifest, host.RaftId));
        }
        host._loop.Start();
        return host;
    }

    /// <summary>Feeds a message from the transport.</summary>
    public void Deliver(Message message)
    {
        _inbox.Enqueue(message);
        Wake();
    }

    private void Wake()
    {
        // Enqueue is a full fence, so either the loop sees the item when it rechecks the inbox, or we see it sleeping.
        if (Volatile.Read(ref _sleeping) == 1 && Interlocked.Exchange(ref _sleeping, 0) == 1)
        {
            _wake.Set();
        }
    }

    public IReadOnlyCollection<ulong> GroupIds => [.. _groups.Keys];

    /// <summary>Creates the local replica of a group. <paramref name="join"/>: the group exists elsewhere and will add this
    /// replica as a learner (it starts with no voters and learns membership from the leader).</summary>
    public Task CreateGroupAsync(ulong groupId, IReadOnlyList<GroupMember> members, bool join)
    {
        if (groupId == 0)
        {
            throw new ArgumentException("group id 0 is reserved", nameof(groupId));
        }
        if (!join && !members.Any(m => m.RaftId == RaftId))
        {
            throw new ArgumentException("this node is not among the group's members", nameof(members));
        }
        return RunAsync(() =>
        {
            if (_groups.TryGetValue(groupId, out var existing))
            {
                return existing.Manifest.Members.Select(m => m.NodeId).Order().SequenceEqual(members.Select(m => m.NodeId).Order())
                    ? true
                    : throw new InvalidOperationException($"group {groupId} already exists here with other members");
            }
            var dir = Path.Combine(_options.DataDirectory, "groups", groupId.ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
            Directory.CreateDirectory(dir);
            var manifest = new GroupManifest(groupId, [.. members], join, join ? null : [.. members.Select(m => m.RaftId)]);
            var group = ShardGroup.Open(dir, _options, manifest, RaftId);
            manifest.Save(dir);
            Attach(group);
            if (!join && RaftId == members.Min(m => m.RaftId))
            {
                _ = StandForFirstElectionAsync(group);
            }
            return true;
        });
    }

    /// <summary>
    /// A new group has no leader until an election timeout (1–2 s) runs out, and a database placed on it waits that long.
    /// The member with the lowest id stands at once instead: a couple of heartbeat intervals after creation (its peers'
    /// replicas are created in parallel and must exist to vote), again if that round found no quorum. Once any leader is
    /// known it stops; if every round fails the ordinary timeout elects someone.
    /// </summary>
    private async Task StandForFirstElectionAsync(ShardGroup group)
    {
        for (var round = 1; round <= 3 && !_stopping; round++)
        {
            await Task.Delay(_options.TickMs * _options.HeartbeatTicks * round);
            var stood = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            Post(group, () =>
            {
                var leaderless = group.Node.Leader == 0 && _groups.ContainsKey(group.GroupId);
                if (leaderless)
                {
                    group.Node.Campaign();
                }
                stood.TrySetResult(leaderless);
            });
            // A host that stops never runs the work; the ordinary timeout covers a loop too busy to answer.
            var answered = await Task.WhenAny(stood.Task, Task.Delay(TimeSpan.FromSeconds(5))).ConfigureAwait(false);
            if (answered != stood.Task || !stood.Task.Result)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Deletes this node's replica of a group it has left (repair removed it): false when the group is not hosted here.
    /// Refused while the replica leads, or lists itself as a member while it hears from a leader. A removed replica
    /// rarely learns of its own removal (the leader stops sending to it once the change commits), so a member that has
    /// no leader is taken at the caller's word, which comes from the group's leader. The replica first leaves the
    /// lookups (new work finds no group), and is closed and deleted a second later, once work already queued for it ran.
    /// </summary>
    public async Task<bool> RemoveGroupAsync(ulong groupId)
    {
        var removed = await RunAsync<ShardGroup?>(() =>
        {
            if (!_groups.TryGetValue(groupId, out var group))
            {
                return null;
            }
            var conf = group.Node.Conf;
            var member = Array.IndexOf(conf.Voters, RaftId) >= 0 || Array.IndexOf(conf.Learners, RaftId) >= 0;
            if (group.Role == RaftRole.Leader || (member && group.LeaderRaftId != 0))
            {
                throw new InvalidOperationException($"this node is still a member of shard group {groupId}");
            }
            _groups.TryRemove(groupId, out _);
            _all = Array.FindAll(_all, g => g != group);
            foreach (var (databaseId, cached) in _databaseGroups)
            {
                if (cached == groupId)
                {
                    _databaseGroups.TryRemove(databaseId, out _);
                }
            }
            return group;
        });
        if (removed is null)
        {
            return false;
        }
        await Task.Delay(TimeSpan.FromSeconds(1));
        await RunAsync(() =>
        {
            _dirty.Remove(removed);
            removed.Dispose();
            Directory.Delete(Path.Combine(_options.DataDirectory, "groups", groupId.ToString(System.Globalization.CultureInfo.InvariantCulture)), recursive: true);
            return true;
        });
        return true;
    }

    /// <summary>Proposes a command to a group. On the leader it completes once the command is applied here; elsewhere it
    /// answers with the leader to forward to.</summary>
    public Task<ProposeOutcome> ProposeAsync(ulong groupId, byte[] command)
    {
        var group = Group(groupId);
        var done = new TaskCompletionSource<ProposeOutcome>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (command.Length > 1 && command[1] == (byte)ShardCommandType.CreateDatabase)
        {
            // Creates arriving in one round share an entry (ProcessReadies proposes them).
            Post(group, () => group.QueueCreate(command, done, raftId => Member(group, raftId)));
        }
        else
        {
            Post(group, () => group.Propose(command, done, raftId => Member(group, raftId)));
        }
        return done.Task;
    }

    /// <summary>Completes once this replica has applied everything committed before the call (ReadIndex, also on followers).</summary>
    public Task ReadIndexAsync(ulong groupId)
    {
        var group = Group(groupId);
        if (group.TryLeaseRead(_clock.ElapsedMilliseconds, out var leaseIndex))
        {
            return WaitApplied(group, leaseIndex);
        }
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(group, () => group.ReadIndex(done, _clock.ElapsedMilliseconds));
        return done.Task;
    }

    /// <summary>Completes once this replica has applied <paramref name="index"/>.</summary>
    public Task WaitAppliedAsync(ulong groupId, ulong index) => WaitApplied(Group(groupId), index);

    private Task WaitApplied(ShardGroup group, ulong index)
    {
        if (group.AppliedIndex >= index)
        {
            return Task.CompletedTask;
        }
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(group, () => group.WaitApplied(index, done, _clock.ElapsedMilliseconds));
        return done.Task;
    }

    /// <summary>The group's engine (reads see every applied entry; writes only through proposals).</summary>
    public IKvEngine Engine(ulong groupId) => Group(groupId).Engine;

    public bool HasGroup(ulong groupId) => _groups.ContainsKey(groupId);

    /// <summary>The leader of a group as this replica knows it, or null.</summary>
    public GroupMember? Leader(ulong groupId)
    {
        var group = Group(groupId);
        var leader = group.LeaderRaftId;
        return leader == 0 ? null : Member(group, leader);
    }

    public bool IsLeader(ulong groupId) => Group(groupId).Role == RaftRole.Leader;

    /// <summary>Finds a hosted database and its group, or null when no local group hosts it.</summary>
    public (ulong GroupId, DatabaseRecord Record)? FindDatabase(string databaseId)
    {
        if (_databaseGroups.TryGetValue(databaseId, out var cached) && _groups.TryGetValue(cached, out var g) && g.StateMachine.FindDatabase(databaseId) is { } hit)
        {
            return (cached, hit);
        }
        foreach (var (id, group) in _groups)
        {
            if (group.StateMachine.FindDatabase(databaseId) is { } record)
            {
                if (_databaseGroups.Count >= MaxCachedPlacements)
                {
                    // Bounded: a node of a million databases keeps no entry per idle one; a miss costs one read per group.
                    _databaseGroups.Clear();
                }
                _databaseGroups[databaseId] = id;
                return (id, record);
            }
        }
        _databaseGroups.TryRemove(databaseId, out _);
        return null;
    }

    /// <summary>The database as one local group hosts it, or null (a move keeps an id on two groups until the source is dropped).</summary>
    public DatabaseRecord? FindDatabase(ulong groupId, string databaseId) =>
        _groups.TryGetValue(groupId, out var group) ? group.StateMachine.FindDatabase(databaseId) : null;

    /// <summary>Every database a group hosts (reads its tenant-0 directory).</summary>
    public IReadOnlyList<DatabaseRecord> Databases(ulong groupId)
    {
        var engine = Group(groupId).Engine;
        var list = new List<DatabaseRecord>();
        foreach (var e in engine.Scan(SystemKeys.Prefix(SystemKeys.DatabasesTable), SystemKeys.TableEnd(SystemKeys.DatabasesTable)))
        {
            list.Add(DatabaseRecord.Decode(e.Value));
        }
        return list;
    }

    public GroupStatus Status(ulong groupId) => StatusOf(groupId, Group(groupId));

    /// <summary>The status of a hosted group, or null when this node does not (or no longer) host it: a group listed by
    /// <see cref="GroupIds"/> can leave the node (a move, a repair) before its status is read.</summary>
    public GroupStatus? TryStatus(ulong groupId) => _groups.TryGetValue(groupId, out var group) ? StatusOf(groupId, group) : null;

    private GroupStatus StatusOf(ulong groupId, ShardGroup group)
    {
        var conf = group.Node.Conf;
        var leader = group.LeaderRaftId;
        var stats = group.Engine.Stats;
        return new GroupStatus(groupId, group.Role, group.Term, leader == 0 ? null : Member(group, leader)?.NodeId, group.CommitIndex, group.AppliedIndex,
            group.Manifest.Members, conf.Voters, conf.Learners, (int)group.StateMachine.DatabaseCount, stats.SegmentBytes + stats.DeltaBytes, group.StateMachine.GcThreshold);
    }

    /// <summary>Asks the group's leader (this node) to hand leadership to another member.</summary>
    public Task<bool> TransferLeadershipAsync(ulong groupId, ulong targetRaftId) =>
        RunAsync(() => Group(groupId).Node.TransferLeadership(targetRaftId));

    /// <summary>On the leader: adds a member as a learner (its node must have created the replica with join), or promotes a
    /// caught-up learner to voter, or removes a member.</summary>
    public Task<ProposeResult> ChangeMembershipAsync(ulong groupId, ConfChangeType type, GroupMember member) =>
        RunAsync(() =>
        {
            var group = Group(groupId);
            if (type != ConfChangeType.RemoveNode && !group.Manifest.Members.Any(m => m.RaftId == member.RaftId))
            {
                group.UpdateMembers([.. group.Manifest.Members, member]);
                _peerAdded(member);
            }
            return group.ProposeConfChange(type == ConfChangeType.RemoveNode
                ? new ConfChange(type, member.RaftId)
                : new ConfChange(type, member.RaftId, member.EncodeContext()));
        });

    /// <summary>The leader's view of a member's replication (to decide when a learner has caught up).</summary>
    public Task<PeerProgress?> ProgressAsync(ulong groupId, ulong raftId) => RunAsync(() => Group(groupId).Node.GetProgress(raftId));

    /// <summary>SHA-256 over every key, value and version of the group's state machine, with the applied index it
    /// reflects (taken on the loop thread, so no entry applies meanwhile): replicas at the same index must agree.</summary>
    public Task<(ulong AppliedIndex, string Hash)> StateHashAsync(ulong groupId) =>
        RunAsync(() =>
        {
            var group = Group(groupId);
            using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
            Span<byte> version = stackalloc byte[8];
            foreach (var e in group.Engine.Scan([], null))
            {
                sha.AppendData(e.Key);
                sha.AppendData(e.Value);
                System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(version, e.Version);
                sha.AppendData(version);
            }
            return (group.AppliedIndex, Convert.ToHexStringLower(sha.GetHashAndReset()));
        });

    /// <summary>Packs a consistent checkpoint of the group's engine (for backups and operators).</summary>
    public Task<byte[]> CheckpointAsync(ulong groupId) => RunAsync(() => Group(groupId).PackCheckpoint());

    /// <summary>Hands leadership of every group this node leads to another voter (graceful shutdown).</summary>
    public async Task TransferAllLeadershipAsync(TimeSpan wait)
    {
        foreach (var (id, group) in _groups)
        {
            if (group.Role != RaftRole.Leader)
            {
                continue;
            }
            var target = group.Node.Conf.Voters.FirstOrDefault(v => v != RaftId);
            if (target != 0)
            {
                await TransferLeadershipAsync(id, target);
            }
        }
        var deadline = _clock.Elapsed + wait;
        while (_clock.Elapsed < deadline && _groups.Values.Any(g => g.Role == RaftRole.Leader && g.Node.Conf.Voters.Length > 1))
        {
            await Task.Delay(20);
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _wake.Set();
        _loop.Join();
        foreach (var group in _groups.Values)
        {
            group.Dispose();
        }
        _wake.Dispose();
    }

    private void Attach(ShardGroup group)
    {
        group.StateMachine.DatabaseChanged += id => _databaseGroups.TryRemove(id, out _);
        group.MemberLearned += m =>
        {
            if (m.RaftId != RaftId)
            {
                _peerAdded(m);
            }
        };
        group.CommitLatency = _commitLatency;
        _groups[group.GroupId] = group;
        _all = [.. _all, group];
        foreach (var m in group.Manifest.Members)
        {
            if (m.RaftId != RaftId)
            {
                _peerAdded(m);
            }
        }
    }

    private static GroupMember? Member(ShardGroup group, ulong raftId)
    {
        foreach (var m in group.Manifest.Members)
        {
            if (m.RaftId == raftId)
            {
                return m;
            }
        }
        return null;
    }

    private ShardGroup Group(ulong groupId) =>
        _groups.TryGetValue(groupId, out var g) ? g : throw new ClusterException("42704", $"shard group {groupId} is not hosted on this node");

    private void Post(object item)
    {
        if (_stopping)
        {
            throw new ClusterException("57P01", "the node is shutting down");
        }
        _inbox.Enqueue(item);
        Wake();
    }

    /// <summary>Work for one group: the loop queues only that group for the next round.</summary>
    private void Post(ShardGroup group, Action action) => Post(new GroupWork(group, action));

    private sealed record GroupWork(ShardGroup Group, Action Action);

    private void MarkDirty(ShardGroup group)
    {
        if (!group.Queued)
        {
            group.Queued = true;
            _dirty.Add(group);
        }
    }

    private void MarkAllDirty()
    {
        foreach (var g in _all)
        {
            MarkDirty(g);
        }
    }

    private Task<T> RunAsync<T>(Func<T> func)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() =>
        {
            try
            {
                done.TrySetResult(func());
            }
            catch (Exception e)
            {
                done.TrySetException(e);
            }
        });
        return done.Task;
    }

    private void Loop()
    {
        var nextTick = _clock.ElapsedMilliseconds + _options.TickMs;
        while (!_stopping)
        {
            var wait = (int)Math.Max(0, nextTick - _clock.ElapsedMilliseconds);
            if (_inbox.IsEmpty && wait > 0)
            {
                Interlocked.Exchange(ref _sleeping, 1);
                if (_inbox.IsEmpty)
                {
                    _wake.WaitOne(wait);
                }
                Interlocked.Exchange(ref _sleeping, 0);
            }
            while (_inbox.TryDequeue(out var item))
            {
                switch (item)
                {
                    case Message m:
                        if (_groups.TryGetValue(m.GroupId, out var target))
                        {
                            target.Node.Step(m);
                            if (m.Type == MessageType.HeartbeatResponse)
                            {
                                // An acknowledged heartbeat round extends the lease; it makes no Ready of its own.
                                target.PublishLease();
                            }
                            MarkDirty(target);
                        }
                        break;
                    case GroupWork w:
                        w.Action();
                        MarkDirty(w.Group);
                        break;
                    case Action a:
                        // Rare whole-host work (group creation, membership, transfers): it may touch any group.
                        a();
                        MarkAllDirty();
                        break;
                }
            }
            var now = _clock.ElapsedMilliseconds;
            if (now >= nextTick)
            {
                foreach (var g in _all)
                {
                    g.Tick(now);
                    MarkDirty(g);
                }
                nextTick = now + _options.TickMs;
                Volatile.Write(ref _ticks, _ticks + 1);
            }
            ProcessReadies();
        }
    }

    /// <summary>Every queued group with output: write all logs, one shared fsync, then everything that depends on
    /// durability. A group that had output is queued again (applying may make more); one with none leaves the queue after
    /// its leadership check.</summary>
    private void ProcessReadies()
    {
        while (_dirty.Count > 0)
        {
            (_visiting, _dirty) = (_dirty, _visiting);
            _round.Clear();
            _syncs.Clear();
            Volatile.Write(ref _groupVisits, _groupVisits + _visiting.Count);
            foreach (var g in _visiting)
            {
                g.Queued = false;
                g.ProposeQueuedCreates();
                if (g.ObserveLeader())
                {
                    Interlocked.Increment(ref _leaderChanges);
                }
                if (g.Node.HasReady)
                {
                    var rd = g.BeginReady(SendAll);
                    _round.Add((g, rd));
                    if (rd.MustSync)
                    {
                        _syncs.Add(g.Log);
                    }
                }
            }
            _visiting.Clear();
            if (_round.Count == 0)
            {
                return;
            }
            // The leader's appends leave before its own fsync: the followers' writes overlap it.
            _flush();
            if (_syncs.Count == 1)
            {
                _syncs[0].Sync();
            }
            else if (_syncs.Count > 1)
            {
                Kdb.Raft.Storage.RaftLogStore.SyncAll(_syncs);
            }
            foreach (var (g, rd) in _round)
            {
                g.FinishReady(rd, SendAll);
                MarkDirty(g);
            }
            _flush();
        }
    }

    private void SendAll(IReadOnlyList<Message> messages)
    {
        foreach (var m in messages)
        {
            _send(m);
        }
    }
}
