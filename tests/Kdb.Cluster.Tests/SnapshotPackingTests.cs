using System.Collections.Concurrent;
using System.Diagnostics;
using Kdb.Raft;
using Kdb.Sql.Sessions;
using Kdb.Storage;

namespace Kdb.Cluster.Tests;

/// <summary>Raft snapshots are packed off the group loop: while a (slow) pack runs, heartbeats keep the leader in place and
/// proposals keep committing; a pack that fails or is interrupted by a crash leaves a usable replica.</summary>
public sealed class SnapshotPackingTests
{
    private static readonly DatabaseRole Owner = new("owner", SqlRoleKind.Owner, "SCRAM-SHA-256$4096:c2FsdA==$a:b");

    private static ClusterOptions Options(string dir, string node, Action<ulong, CancellationToken>? hook) => new()
    {
        DataDirectory = Path.Combine(dir, node),
        NodeId = node,
        InternalUrl = "http://127.0.0.1:1/" + node,
        TickMs = 50,
        ElectionTicks = 6,
        HeartbeatTicks = 1,
        SnapshotEveryEntries = 40,
        RetainEntries = 5,
        MemtableBytes = 1 << 16,
        SnapshotPackHook = hook,
    };

    private static async Task CreateAsync(ClusterHost host, ulong group, int from, int count)
    {
        for (var i = from; i < from + count; i++)
        {
            var outcome = await host.ProposeAsync(group, ShardCommand.CreateDatabase($"db_p{i}", (ulong)i + 1, Owner)).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(ApplyStatus.Ok, outcome.Result?.Status);
        }
    }

    private static async Task WaitAsync(Func<bool> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), what);
            await Task.Delay(20);
        }
    }

    private static string GroupDir(ClusterHost host, ulong group) => Path.Combine(host.DataDirectory, "groups", group.ToString(System.Globalization.CultureInfo.InvariantCulture));

    private static bool SnapshotFileSaved(ClusterHost host, ulong group) =>
        Directory.GetFiles(Path.Combine(GroupDir(host, group), "raft"), "snapshot-*.data").Length == 1;

    private static bool NoPackLeftovers(ClusterHost host, ulong group) =>
        Directory.GetFiles(GroupDir(host, group), "snapshot-*.pack").Length == 0
        && Directory.GetDirectories(GroupDir(host, group), "snapshot-*.checkpoint").Length == 0;

    private static void AssertNoPackLeftovers(ClusterHost host, ulong group) => Assert.True(NoPackLeftovers(host, group), "no packing leftovers");

    [Fact]
    public async Task While_a_slow_pack_runs_the_leader_keeps_its_term_and_proposals_keep_committing()
    {
        using var dir = new TempDirectory();
        using var gate = new ManualResetEventSlim(false);
        var packing = new ConcurrentDictionary<string, int>();
        var hosts = new ConcurrentDictionary<ulong, ClusterHost>();
        void Send(Message m)
        {
            if (hosts.TryGetValue(m.To, out var to))
            {
                to.Deliver(m);
            }
        }
        var names = new[] { "pk-a", "pk-b", "pk-c" };
        foreach (var name in names)
        {
            // A disk slow enough that packing on the loop would stall heartbeats far past the election timeout.
            var host = ClusterHost.Open(Options(dir.Path, name, (_, token) =>
            {
                packing.AddOrUpdate(name, 1, (_, n) => n + 1);
                gate.Wait(token);
            }), Send, _ => { });
            hosts[host.RaftId] = host;
        }
        try
        {
            const ulong group = 11;
            var members = hosts.Values.Select(h => new GroupMember(h.NodeId, h.RaftId, "http://127.0.0.1:1/" + h.NodeId)).ToList();
            foreach (var h in hosts.Values)
            {
                await h.CreateGroupAsync(group, members, join: false);
            }
            await WaitAsync(() => hosts.Values.Any(h => h.IsLeader(group)), "a leader is elected");
            var leader = hosts.Values.Single(h => h.IsLeader(group));
            await CreateAsync(leader, group, 0, 60);
            await WaitAsync(() => packing.ContainsKey(leader.NodeId), "the leader started packing a snapshot");

            var term = leader.Status(group).Term;
            var changes = hosts.Values.Select(h => h.LeaderChangesOf(group)).ToArray();
            // Several election timeouts (300-600 ms each) pass with the pack blocked, while the group keeps committing.
            var clock = Stopwatch.StartNew();
            var created = 60;
            while (clock.Elapsed < TimeSpan.FromSeconds(2))
            {
                await CreateAsync(leader, group, created, 5);
                created += 5;
                await Task.Delay(100);
            }
            Assert.True(leader.IsLeader(group));
            Assert.Equal(term, leader.Status(group).Term);
            Assert.Equal(changes, hosts.Values.Select(h => h.LeaderChangesOf(group)).ToArray());
            Assert.All(hosts.Values, h => Assert.Equal(term, h.Status(group).Term));
            Assert.False(SnapshotFileSaved(leader, group), "the pack has not been handed over yet");
            Assert.Equal(created, (int)leader.DatabaseCount(group));

            gate.Set();
            await WaitAsync(() => hosts.Values.All(h => SnapshotFileSaved(h, group)), "every replica hands its pack to the log store");
            await CreateAsync(leader, group, created, 5);
            created += 5;
            foreach (var h in hosts.Values)
            {
                // A later pack may be running (the writes above can make one due); it finishes and leaves nothing behind.
                await WaitAsync(() => NoPackLeftovers(h, group), "packing leaves no files behind");
                await WaitAsync(() => h.DatabaseCount(group) == created, "every replica applied everything");
            }
            Assert.Equal(term, leader.Status(group).Term);
        }
        finally
        {
            gate.Set();
            foreach (var h in hosts.Values)
            {
                h.Dispose();
            }
        }
    }

    [Fact]
    public async Task A_failed_pack_is_discarded_and_a_crash_during_packing_leaves_a_usable_replica()
    {
        using var dir = new TempDirectory();
        const ulong group = 12;
        var attempts = 0;
        var created = 0;
        using var gate = new ManualResetEventSlim(false);
        var options = Options(dir.Path, "pk-solo", (_, token) =>
        {
            // The first pack fails (a disk error); the second blocks until the host goes down under it.
            if (Interlocked.Increment(ref attempts) == 1)
            {
                throw new IOException("injected: disk full while packing");
            }
            gate.Wait(token);
        });
        using (var host = ClusterHost.Open(options, _ => { }, _ => { }))
        {
            await host.CreateGroupAsync(group, [new GroupMember(options.NodeId, host.RaftId, options.InternalUrl)], join: false);
            await WaitAsync(() => host.IsLeader(group), "the single replica elects itself");
            await CreateAsync(host, group, 0, 60);
            created = 60;
            var clock = Stopwatch.StartNew();
            while (Volatile.Read(ref attempts) < 2)
            {
                // The next write after the failure makes the snapshot due again.
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), "a failed pack is followed by a new one");
                await CreateAsync(host, group, created, 5);
                created += 5;
            }
            Assert.False(SnapshotFileSaved(host, group));
            // The failed pack left no packed file (the second one is blocked before packing).
            Assert.Empty(Directory.GetFiles(GroupDir(host, group), "snapshot-*.pack"));
            await CreateAsync(host, group, created, 10);
            created += 10;
            // Shut down (as a crash would cut it) while the second pack runs.
        }
        // What a crash right before the hand-over leaves: a packed file and a half-written checkpoint.
        var groupDir = Path.Combine(dir.Path, "pk-solo", "groups", "12");
        File.WriteAllBytes(Path.Combine(groupDir, "snapshot-77.pack"), [1, 2, 3]);
        Directory.CreateDirectory(Path.Combine(groupDir, "snapshot-77.checkpoint"));
        var released = options with { SnapshotPackHook = null };
        using (var host = ClusterHost.Open(released, _ => { }, _ => { }))
        {
            AssertNoPackLeftovers(host, group);
            await WaitAsync(() => host.IsLeader(group), "the reopened replica elects itself");
            Assert.Equal(created, host.DatabaseCount(group));
            await CreateAsync(host, group, created, 60);
            created += 60;
            await WaitAsync(() => SnapshotFileSaved(host, group), "a later pack succeeds");
        }
        using (var host = ClusterHost.Open(released, _ => { }, _ => { }))
        {
            await WaitAsync(() => host.IsLeader(group), "the replica reopens from its snapshot and log");
            Assert.Equal(created, host.DatabaseCount(group));
            Assert.NotNull(host.FindDatabase($"db_p{created - 1}"));
        }
    }

    [Fact]
    public void A_captured_checkpoint_written_later_holds_exactly_the_state_at_its_capture()
    {
        using var dir = new TempDirectory();
        var options = new EngineOptions { RaftMode = true, MemtableBytes = 1 << 14 };
        using var engine = KvEngine.Open(Path.Combine(dir.Path, "engine"), options);
        static byte[] Key(int i) => System.Text.Encoding.ASCII.GetBytes($"k{i:D6}");
        ulong version = 0;
        // Enough to flush several segments, plus a memtable that is frozen by the capture.
        for (var i = 0; i < 3000; i++)
        {
            engine.Apply(new WriteBatch().Put(Key(i), new byte[40]), ++version);
        }
        engine.Apply(new WriteBatch().Delete(Key(7)), ++version);
        Assert.True(engine.Stats.SegmentCount > 0);
        using var captured = ((IKvCheckpointSource)engine).CaptureCheckpoint();
        Assert.Equal(version, captured.Version);
        // Writes after the capture, while it is written out: none of them is part of it.
        for (var i = 3000; i < 3500; i++)
        {
            engine.Apply(new WriteBatch().Put(Key(i), new byte[40]), ++version);
        }
        engine.Apply(new WriteBatch().Put(Key(8), [9]).Delete(Key(9)), ++version);
        var checkpoint = Path.Combine(dir.Path, "checkpoint");
        captured.WriteTo(checkpoint);
        var clock = Stopwatch.StartNew();
        while (!captured.IsPersisted)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), "the engine flushes what the capture froze");
            Thread.Sleep(10);
        }
        using var opened = KvEngine.Open(checkpoint, options);
        Assert.Equal(captured.Version, opened.LastAppliedIndex);
        Assert.Equal(2999, opened.Scan([], null).Count());
        Assert.False(opened.Get(Key(7)).Found);
        Assert.Equal(new byte[40], opened.Get(Key(8)).Value);
        Assert.True(opened.Get(Key(9)).Found);
        Assert.False(opened.Get(Key(3000)).Found);
        Assert.True(engine.Get(Key(3499)).Found);
    }
}
