using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using Kdb.Raft;
using Kdb.Sql.Sessions;
using Kdb.Transactions;

namespace Kdb.Cluster.Tests;

/// <summary>A Raft snapshot that falls due while import entries stream in waits for the import to end (packing the whole
/// engine on every replica competed with the import for the disk and the cores), and is taken once it has.</summary>
public sealed class ImportSnapshotTests
{
    private static readonly DatabaseRole Owner = new("owner", SqlRoleKind.Owner, "SCRAM-SHA-256$4096:c2FsdA==$a:b");

    [Fact]
    public async Task A_snapshot_due_during_an_import_is_taken_once_the_import_ends_and_every_replica_has_every_row()
    {
        using var dir = new TempDirectory();
        var packs = new ConcurrentDictionary<string, int>();
        var hosts = new ConcurrentDictionary<ulong, ClusterHost>();
        void Send(Message m)
        {
            if (hosts.TryGetValue(m.To, out var to))
            {
                to.Deliver(m);
            }
        }
        foreach (var name in new[] { "is-a", "is-b", "is-c" })
        {
            var host = ClusterHost.Open(new ClusterOptions
            {
                DataDirectory = Path.Combine(dir.Path, name),
                NodeId = name,
                InternalUrl = "http://127.0.0.1:1/" + name,
                TickMs = 50,
                ElectionTicks = 6,
                HeartbeatTicks = 1,
                SnapshotEveryEntries = 40,
                RetainEntries = 5,
                MemtableBytes = 1 << 16,
                // Far longer than the gap between two entries of the import below, however slow the machine.
                ImportSnapshotQuiet = TimeSpan.FromSeconds(5),
                SnapshotPackHook = (_, _) => packs.AddOrUpdate(name, 1, (_, n) => n + 1),
            }, Send, _ => { });
            hosts[host.RaftId] = host;
        }
        try
        {
            const ulong group = 12;
            const ulong tenant = 7;
            var members = hosts.Values.Select(h => new GroupMember(h.NodeId, h.RaftId, "http://127.0.0.1:1/" + h.NodeId)).ToList();
            foreach (var h in hosts.Values)
            {
                await h.CreateGroupAsync(group, members, join: false);
            }
            await WaitAsync(() => hosts.Values.Any(h => h.IsLeader(group)), "a leader is elected");
            var leader = hosts.Values.Single(h => h.IsLeader(group));
            var created = await leader.ProposeAsync(group, ShardCommand.CreateDatabase("db_import", tenant, Owner)).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(ApplyStatus.Ok, created.Result?.Status);

            // Twice the entries that make a snapshot due, each applied right after the one before.
            const int entries = 80;
            const int rowsPerEntry = 20;
            for (var e = 0; e < entries; e++)
            {
                var writes = new List<TxWrite>();
                for (var r = 0; r < rowsPerEntry; r++)
                {
                    var key = new byte[16];
                    BinaryPrimitives.WriteUInt64BigEndian(key, tenant);
                    BinaryPrimitives.WriteUInt32BigEndian(key.AsSpan(8), 1);
                    BinaryPrimitives.WriteInt32BigEndian(key.AsSpan(12), (e * rowsPerEntry) + r);
                    writes.Add(TxWrite.Put(key, new byte[512]));
                }
                var outcome = await leader.ProposeAsync(group, ShardCommand.ImportChunk("db_import", new CommitRecord(tenant, 0, [], [], writes)))
                    .WaitAsync(TimeSpan.FromSeconds(30));
                Assert.Equal(ApplyStatus.Ok, outcome.Result?.Status);
            }
            Assert.True(packs.IsEmpty, $"no replica packed a snapshot while the import streamed in ({string.Join(", ", packs)})");

            await WaitAsync(() => hosts.Values.All(h => SnapshotFileSaved(h, group)), "every replica takes the snapshot once the import ended");
            var start = new byte[8];
            BinaryPrimitives.WriteUInt64BigEndian(start, tenant);
            var end = new byte[8];
            BinaryPrimitives.WriteUInt64BigEndian(end, tenant + 1);
            foreach (var h in hosts.Values)
            {
                await WaitAsync(() => h.Engine(group).Scan(start, end).Count() == entries * rowsPerEntry, "every replica applied every imported row");
            }
        }
        finally
        {
            foreach (var h in hosts.Values)
            {
                h.Dispose();
            }
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

    private static bool SnapshotFileSaved(ClusterHost host, ulong group) =>
        Directory.GetFiles(Path.Combine(host.DataDirectory, "groups", group.ToString(System.Globalization.CultureInfo.InvariantCulture), "raft"), "snapshot-*.data").Length == 1;
}
