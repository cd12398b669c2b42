using Kdb.Raft.Tests.Linearizability;

namespace Kdb.Raft.Tests.Simulation;

/// <summary>Outcome of one seed of one scenario.</summary>
internal sealed record SimResult(string Scenario, int Seed, int Operations, int Completed, ulong MaxTerm, ulong Committed, long Messages, long Checks, int Crashes,
    int SnapshotsInstalled, int ConfChangesApplied, int LeaderChanges, int ReadsServed, int Stalls = 0, long QuiescedNodeMs = 0,
    int Promotions = 0, int LeaderRemovals = 0, int MidChangeCrashes = 0);

internal enum IoStall : byte
{
    None = 0,
    Stalled = 1,
    Crashed = 2,
}

/// <summary>Runs one scenario with one seed: every source of nondeterminism comes from the seed.</summary>
internal sealed class Simulator
{
    private const int TickMs = 10;
    private readonly Random _rng;
    private readonly Random _crashRng;
    // Stalls, quiet stretches and the failure detector draw from their own stream so seeds without them replay as before.
    private readonly Random _ioRng;
    private readonly bool _async;
    private readonly bool _quiesce;
    private long _quietUntil;
    private int _stalls;
    private long _quiescedNodeMs;
    private readonly List<SimNode> _nodes = [];
    private readonly List<KvOperation> _history = [];
    private readonly (ClientOp? Op, long NextAt)[] _clients;
    private readonly int _seed;
    private ulong _nextOpId;
    private int _nextValue = 1;
    private long _now;
    private bool _faultsOn = true;
    private int _crashes;
    private long _farBehindRestartAt = -1;
    private SimNode? _farBehind;

    public Simulator(Scenario scenario, int seed)
    {
        Scenario = scenario;
        _seed = seed;
        _rng = new Random(seed);
        _crashRng = new Random(seed ^ 0x5eed);
        _ioRng = new Random(seed ^ 0x10);
        _async = scenario.AsyncAppend ?? (seed % 2 == 0);
        _quiesce = scenario.Quiesce ?? (seed % 4 >= 2);
        Network = new SimNetwork(new Random(seed * 31 + 7), scenario);
        _clients = new (ClientOp?, long)[scenario.Clients];
        var voters = new ulong[scenario.Nodes];
        for (var i = 0; i < scenario.Nodes; i++)
        {
            voters[i] = (ulong)(i + 1);
        }
        for (var i = 0; i < scenario.Nodes + scenario.SpareNodes; i++)
        {
            var id = (ulong)(i + 1);
            var skew = 1 + ((_rng.NextDouble() * 2) - 1) * scenario.ClockSkew;
            var config = new RaftConfig
            {
                Id = id,
                GroupId = 1,
                BootstrapVoters = voters,
                ElectionTicks = 10,
                HeartbeatTicks = 1,
                TickMs = TickMs,
                ReadMode = scenario.ReadMode,
                // Drift over one election timeout (100 ms) at the configured skew on both sides, plus margin.
                MaxClockDriftMs = (int)(2 * scenario.ClockSkew * 10 * TickMs) + 5 - scenario.UnsafeLeaseExtraMs,
                MaxBytesPerMessage = 512,
                MaxInflightMessages = 8,
                SnapshotChunkBytes = scenario.SnapshotChunkBytes,
                SnapshotWindowChunks = 3,
                RandomSeed = (ulong)seed,
                AsyncLeaderAppend = _async,
                QuiesceAfterTicks = _quiesce ? 4 : 0,
                // Seeds 4–7 mod 8: commit advances wait for the next append, a read answer or a tick (as the node runs).
                DeferCommitOnlyAppends = (seed & 4) != 0,
            };
            var node = new SimNode(this, id, config, skew, _rng.Next(1000));
            _nodes.Add(node);
            node.Start(0);
        }
    }

    public Scenario Scenario { get; }
    public SimNetwork Network { get; }
    public SafetyChecker Checker { get; } = new();
    public IReadOnlyList<KvOperation> History => _history;
    public int SnapshotsInstalled { get; set; }
    public int ReadsServed { get; private set; }

    public static string ReplayCommand(string scenario, int seed) =>
        $"KDB_RAFT_SCENARIO={scenario} KDB_RAFT_SEED={seed} dotnet test tests/Kdb.Raft.Tests --filter \"FullyQualifiedName~SimulationTests.Replay\"";

    public SimResult Run()
    {
        var end = Scenario.DurationMs + Scenario.HealMs;
        var clientsStopAt = Scenario.DurationMs + (Scenario.HealMs / 2);
        for (_now = 1; _now <= end; _now++)
        {
            if (_now == Scenario.DurationMs)
            {
                HealAll();
            }
            if (_faultsOn && _now % Scenario.FaultEveryMs == 0)
            {
                InjectFaults();
            }
            if (_now == _midChangeCrashAt)
            {
                CrashMidChange();
            }
            if (_farBehind is not null && _now == _farBehindRestartAt)
            {
                _farBehind.Start(_now);
            }
            foreach (var node in _nodes)
            {
                if (node.Up && node.PausedUntil >= 0 && node.PausedUntil < _now)
                {
                    Resume(node);
                }
            }
            while (Network.TryTakeDue(_now, out var m))
            {
                var node = _nodes[(int)m.To - 1];
                if (!node.Up)
                {
                    continue;
                }
                if (node.PausedUntil >= _now)
                {
                    Network.Requeue(m, node.PausedUntil + 1);
                    continue;
                }
                node.Core!.Step(m);
                node.AfterStep(m);
            }
            foreach (var node in _nodes)
            {
                if (!node.Up || node.PausedUntil >= _now)
                {
                    continue;
                }
                var local = node.LocalNow(_now);
                if (local >= node.NextTickLocal)
                {
                    node.Core!.Tick(local);
                    node.NextTickLocal += TickMs;
                    if (node.NextTickLocal <= local)
                    {
                        // A process resuming from a pause sees one timer fire, not all it missed.
                        node.NextTickLocal = local + TickMs;
                    }
                }
            }
            if (_now < clientsStopAt)
            {
                RunClients();
            }
            ExpireClients();
            ProcessReadies();
            if (_quiesce)
            {
                foreach (var node in _nodes)
                {
                    _quiescedNodeMs += node.Up && node.Core!.IsQuiesced ? 1 : 0;
                }
                if (_now % 20 == 0)
                {
                    DetectFailures();
                }
            }
        }
        foreach (var node in _nodes)
        {
            foreach (var (_, w) in node.PendingWrites)
            {
                Unknown(w.Op);
            }
        }
        CheckConvergence();
        CheckTerms();
        var lin = LinearizabilityChecker.Check(_history);
        if (!lin.Ok)
        {
            throw new SafetyViolationException($"history of {_history.Count} operations is not linearizable on key {lin.FailedKey}: {lin.Detail}");
        }
        ulong maxTerm = 0;
        foreach (var n in _nodes)
        {
            maxTerm = Math.Max(maxTerm, n.Core?.Term ?? 0);
        }
        var completed = 0;
        foreach (var op in _history)
        {
            if (!op.OutcomeUnknown)
            {
                completed++;
            }
        }
        return new SimResult(Scenario.Name, _seed, _history.Count, completed, maxTerm, Checker.MaxCommitted, Network.Delivered, Checker.Checks, _crashes,
            SnapshotsInstalled, Checker.ConfChangesCommitted, Checker.LeaderChanges, ReadsServed, _stalls, _quiescedNodeMs,
            _promotions, _leaderRemovals, _midChangeCrashes);
    }

    private void ProcessReadies()
    {
        foreach (var node in _nodes)
        {
            for (var i = 0; node.Up && node.PausedUntil < _now && node.Core!.HasReady && i < 8; i++)
            {
                if (!node.ProcessReady(_now))
                {
                    break;
                }
            }
        }
    }

    private void Resume(SimNode node)
    {
        node.PausedUntil = -1;
        if (!node.FinishStalled(_now))
        {
            return;
        }
        // Requests that arrived while paused are handled first, before the node learns anything new: the adversarial order.
        var queued = node.QueuedRequests.ToArray();
        node.QueuedRequests.Clear();
        foreach (var op in queued)
        {
            if (!op.Done)
            {
                node.Submit(op, _now);
            }
        }
    }

    private SimNode? Leader()
    {
        SimNode? best = null;
        foreach (var n in _nodes)
        {
            if (n.Up && n.Core!.Role == RaftRole.Leader && (best is null || n.Core.Term > best.Core!.Term))
            {
                best = n;
            }
        }
        return best;
    }

    private void RunClients()
    {
        if (_now < _quietUntil)
        {
            return;
        }
        for (var c = 0; c < _clients.Length; c++)
        {
            if (_clients[c].Op is not null || _clients[c].NextAt > _now)
            {
                continue;
            }
            var node = _nodes[_rng.Next(_nodes.Count)];
            if (_rng.NextDouble() < 0.5 && Leader() is { } leader)
            {
                node = leader;
            }
            var roll = _rng.NextDouble();
            var op = new ClientOp
            {
                ClientId = c,
                Kind = roll < 0.45 ? KvOp.Get : roll < 0.85 ? KvOp.Put : KvOp.Cas,
                Key = _rng.Next(Scenario.Keys),
                Call = _now,
                OpId = ++_nextOpId,
            };
            if (op.Kind != KvOp.Get)
            {
                op.Value = _nextValue++;
            }
            if (op.Kind == KvOp.Cas)
            {
                op.Expected = _rng.NextDouble() < 0.3 ? 0 : Math.Max(0, _nextValue - 1 - _rng.Next(4));
            }
            _clients[c] = (op, 0);
            if (!node.Up)
            {
                Abandon(op);
            }
            else if (node.PausedUntil >= _now)
            {
                node.QueuedRequests.Add(op);
            }
            else
            {
                node.Submit(op, _now);
            }
        }
    }

    private void ExpireClients()
    {
        for (var c = 0; c < _clients.Length; c++)
        {
            if (_clients[c].Op is { } op && _now - op.Call > Scenario.ClientTimeoutMs)
            {
                if (op.Kind == KvOp.Get)
                {
                    Abandon(op);
                }
                else
                {
                    Unknown(op);
                }
            }
        }
    }

    private void Finish(ClientOp op) => _clients[op.ClientId] = (null, _now + 1 + _rng.Next(8));

    public void Complete(ClientOp op, int output, long now)
    {
        if (op.Done)
        {
            return;
        }
        op.Done = true;
        if (op.Kind == KvOp.Get)
        {
            ReadsServed++;
        }
        _history.Add(new KvOperation(op.ClientId, op.Key, (KvOpKind)op.Kind, op.Value, op.Expected, output, op.Call, now));
        Finish(op);
    }

    /// <summary>The operation certainly had no effect (refused, or a read that was never served).</summary>
    public void Abandon(ClientOp op)
    {
        if (op.Done)
        {
            return;
        }
        op.Done = true;
        Finish(op);
    }

    /// <summary>A write whose fate is unknown: it may take effect at any later time.</summary>
    public void Unknown(ClientOp op)
    {
        if (op.Done)
        {
            return;
        }
        op.Done = true;
        if (op.Kind != KvOp.Get)
        {
            _history.Add(new KvOperation(op.ClientId, op.Key, (KvOpKind)op.Kind, op.Value, op.Expected, -1, op.Call, long.MaxValue));
        }
        Finish(op);
    }

    public bool MaybeCrashAt(SimNode node, CrashPoint point)
    {
        if (!_faultsOn || Scenario.CrashPointRate <= 0 || _crashRng.NextDouble() >= Scenario.CrashPointRate)
        {
            return false;
        }
        Crash(node);
        _restartAt[node.Id] = _now + 20 + _rng.Next(200);
        return true;
    }

    private readonly Dictionary<ulong, long> _restartAt = [];

    /// <summary>An async-append host's fsync may take a while after its early messages left; the node is busy meanwhile, and may crash.</summary>
    public IoStall StallIo(SimNode node)
    {
        if (_ioRng.NextDouble() >= Scenario.StallRate)
        {
            return IoStall.None;
        }
        if (_faultsOn && _ioRng.NextDouble() < Scenario.StallCrashRate)
        {
            Crash(node);
            _restartAt[node.Id] = _now + 20 + _ioRng.Next(200);
            return IoStall.Crashed;
        }
        _stalls++;
        node.PausedUntil = Math.Max(node.PausedUntil, _now + 1 + _ioRng.Next(6));
        return IoStall.Stalled;
    }

    /// <summary>The hosts' failure detector: each node hears which peers are down, paused or cut off from it (quiesced groups need it to notice a dead leader).</summary>
    private void DetectFailures()
    {
        foreach (var a in _nodes)
        {
            if (!a.Up || a.PausedUntil >= _now)
            {
                continue;
            }
            foreach (var b in _nodes)
            {
                if (b != a && (!b.Up || b.PausedUntil >= _now || Network.IsBlocked(b.Id, a.Id)))
                {
                    a.Core!.ReportUnreachable(b.Id);
                }
            }
        }
    }

    private void Crash(SimNode node)
    {
        _crashes++;
        node.Crash(_crashRng, Scenario.TornWrites);
    }

    private int UpCount()
    {
        var n = 0;
        foreach (var node in _nodes)
        {
            if (node.Up)
            {
                n++;
            }
        }
        return n;
    }

    private void InjectFaults()
    {
        // Restarts due.
        foreach (var node in _nodes)
        {
            if (!node.Up && node != _farBehind && (!_restartAt.TryGetValue(node.Id, out var at) || at <= _now))
            {
                node.Start(_now);
                _restartAt.Remove(node.Id);
            }
        }
        var all = new List<ulong>();
        foreach (var n in _nodes)
        {
            all.Add(n.Id);
        }
        var leader = Leader();
        if (Scenario.CrashLeader && leader is not null && _rng.NextDouble() < 0.6)
        {
            Crash(leader);
            _restartAt[leader.Id] = _now + 50 + _rng.Next(300);
        }
        if (Scenario.CrashAny && _rng.NextDouble() < 0.5 && UpCount() > (Scenario.Nodes / 2) + 1)
        {
            var victim = _nodes[_rng.Next(_nodes.Count)];
            if (victim.Up)
            {
                Crash(victim);
                _restartAt[victim.Id] = _now + 30 + _rng.Next(300);
            }
        }
        leader = Leader();
        switch (Scenario.Partitions)
        {
            case PartitionMode.Random:
                Network.Heal();
                if (_rng.NextDouble() < 0.6)
                {
                    var side = new List<ulong>();
                    foreach (var id in all)
                    {
                        if (_rng.NextDouble() < 0.5)
                        {
                            side.Add(id);
                        }
                    }
                    Network.Isolate(side, all);
                }
                break;
            case PartitionMode.OneWay:
                Network.Heal();
                for (var k = _rng.Next(3); k >= 0; k--)
                {
                    var a = all[_rng.Next(all.Count)];
                    var b = all[_rng.Next(all.Count)];
                    if (a != b)
                    {
                        Network.Block(a, b);
                    }
                }
                break;
            case PartitionMode.Bridge:
                Network.Heal();
                if (_rng.NextDouble() < 0.7)
                {
                    var shuffled = all.OrderBy(_ => _rng.Next()).ToList();
                    // shuffled[0] is the bridge; the two sides see only it.
                    var left = shuffled.Skip(1).Take(2).ToList();
                    var right = shuffled.Skip(3).ToList();
                    foreach (var a in left)
                    {
                        foreach (var b in right)
                        {
                            Network.Block(a, b);
                            Network.Block(b, a);
                        }
                    }
                }
                break;
            case PartitionMode.LeaderMinority:
                Network.Heal();
                if (leader is not null && _rng.NextDouble() < 0.7)
                {
                    var side = new List<ulong> { leader.Id };
                    var other = all[_rng.Next(all.Count)];
                    if (other != leader.Id)
                    {
                        side.Add(other);
                    }
                    Network.Isolate(side, all);
                }
                break;
        }
        if (Scenario.Transfers && leader is not null)
        {
            var target = all[_rng.Next(all.Count)];
            leader.Core!.TransferLeadership(target);
        }
        if (Scenario.PauseLeader && leader is not null && _rng.NextDouble() < 0.7)
        {
            var paused = false;
            foreach (var n in _nodes)
            {
                paused |= n.PausedUntil >= _now;
            }
            if (!paused)
            {
                leader.PausedUntil = _now + 150 + _rng.Next(400);
            }
        }
        if (Scenario.FarBehind && _farBehind is null && leader is not null)
        {
            foreach (var n in _nodes)
            {
                if (n != leader && n.Up)
                {
                    _farBehind = n;
                    Crash(n);
                    _farBehindRestartAt = _now + (Scenario.DurationMs / 2);
                    break;
                }
            }
        }
        if (Scenario.Membership && leader is not null)
        {
            ChangeMembership(leader);
        }
        if (_quiesce && _ioRng.NextDouble() < 0.5)
        {
            // Clients go quiet long enough for the group to quiesce, then wake it.
            _quietUntil = _now + 60 + _ioRng.Next(200);
        }
    }

    // A crash scheduled a few ms after a membership change was proposed: of the leader, or of the node the change is about.
    private long _midChangeCrashAt = -1;
    private ulong _midChangeVictim;
    private int _promotions;
    private int _leaderRemovals;
    private int _midChangeCrashes;

    private void ProposeMembership(SimNode leader, ConfChange change)
    {
        if (!leader.Core!.ProposeConfChange(change).IsAccepted)
        {
            return;
        }
        if (change.Type == ConfChangeType.AddVoter)
        {
            _promotions++;
        }
        if (change.Type == ConfChangeType.RemoveNode && change.NodeId == leader.Id)
        {
            _leaderRemovals++;
        }
        if (_rng.NextDouble() < 0.35)
        {
            _midChangeCrashAt = _now + 1 + _rng.Next(15);
            _midChangeVictim = _rng.NextDouble() < 0.5 ? leader.Id : change.NodeId;
        }
    }

    private void CrashMidChange()
    {
        var node = _nodes[(int)_midChangeVictim - 1];
        if (_faultsOn && node.Up && node != _farBehind)
        {
            Crash(node);
            _midChangeCrashes++;
            _restartAt[node.Id] = _now + 30 + _rng.Next(300);
        }
    }

    private void ChangeMembership(SimNode leader)
    {
        var core = leader.Core!;
        var conf = core.Conf;
        if (conf.Learners.Length > 0)
        {
            var learner = conf.Learners[0];
            // One server at a time: a learner is promoted only once it holds everything committed.
            if (core.GetProgress(learner) is { } p && p.Match >= core.CommitIndex)
            {
                ProposeMembership(leader, new ConfChange(ConfChangeType.AddVoter, learner));
            }
            return;
        }
        if (conf.Voters.Length <= 3)
        {
            foreach (var n in _nodes)
            {
                if (Array.IndexOf(conf.Voters, n.Id) < 0)
                {
                    ProposeMembership(leader, new ConfChange(ConfChangeType.AddLearner, n.Id));
                    return;
                }
            }
            return;
        }
        // Remove a voter; sometimes the leader itself (replace the leader).
        var victim = _rng.NextDouble() < 0.3 ? leader.Id : conf.Voters[_rng.Next(conf.Voters.Length)];
        ProposeMembership(leader, new ConfChange(ConfChangeType.RemoveNode, victim));
    }

    private void HealAll()
    {
        _faultsOn = false;
        Network.Heal();
        Network.Drop = 0;
        Network.Duplicate = 0;
        Network.Replay = 0;
        foreach (var n in _nodes)
        {
            if (!n.Up)
            {
                n.Start(_now);
            }
        }
    }

    private void CheckConvergence()
    {
        var leader = Leader() ?? throw new SafetyViolationException($"no leader {Scenario.HealMs} ms after healing");
        var conf = leader.Core!.Conf;
        var members = new HashSet<ulong>(conf.Voters);
        members.UnionWith(conf.Learners);
        var applied = leader.Sm.AppliedIndex;
        var hash = leader.Sm.StateHash();
        foreach (var n in _nodes)
        {
            if (!members.Contains(n.Id))
            {
                continue;
            }
            if (n.Sm.AppliedIndex != applied || n.Sm.StateHash() != hash)
            {
                throw new SafetyViolationException(
                    $"after healing node {n.Id} applied {n.Sm.AppliedIndex} (hash {n.Sm.StateHash():x}) but leader {leader.Id} applied {applied} (hash {hash:x}); " +
                    $"leader t{leader.Core.Term} last {leader.Core.LastIndex} commit {leader.Core.CommitIndex} sees {leader.Core.GetProgress(n.Id)}; node {n.Core!.Role} t{n.Core.Term} lead {n.Core.Leader} last {n.Core.LastIndex} commit {n.Core.CommitIndex}");
            }
        }
    }

    private void CheckTerms()
    {
        if (Scenario.MaxTerm == 0)
        {
            return;
        }
        foreach (var n in _nodes)
        {
            if (n.Core!.Term > Scenario.MaxTerm)
            {
                throw new SafetyViolationException($"term grew to {n.Core.Term} (bound {Scenario.MaxTerm}): PreVote/CheckQuorum should prevent that");
            }
        }
    }
}
