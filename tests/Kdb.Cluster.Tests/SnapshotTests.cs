using System.Diagnostics;
using Kdb.Sql.Sessions;

namespace Kdb.Cluster.Tests;

/// <summary>Raft snapshots packed to a file and moved into the log store: the same blob as the in-memory packer, no packed
/// file left behind, and a reopened replica has everything.</summary>
public sealed class SnapshotTests
{
    [Fact]
    public async Task Snapshots_through_a_mapped_file_leave_no_file_and_a_reopened_replica_keeps_every_database()
    {
        using var dir = new TempDirectory();
        var options = new ClusterOptions
        {
            DataDirectory = dir.Path,
            NodeId = "node-s",
            InternalUrl = "http://127.0.0.1:1",
            TickMs = 50,
            ElectionTicks = 2,
            HeartbeatTicks = 1,
            SnapshotEveryEntries = 40,
            RetainEntries = 5,
            MemtableBytes = 1 << 16,
        };
        var owner = new DatabaseRole("owner", SqlRoleKind.Owner, "SCRAM-SHA-256$4096:c2FsdA==$a:b");
        using (var host = ClusterHost.Open(options, _ => { }, _ => { }))
        {
            await host.CreateGroupAsync(3, [new GroupMember(options.NodeId, host.RaftId, options.InternalUrl)], join: false);
            await WaitLeaderAsync(host, 3);
            for (var i = 0; i < 200; i++)
            {
                var outcome = await host.ProposeAsync(3, ShardCommand.CreateDatabase($"db_s{i}", (ulong)i + 1, owner));
                Assert.Equal(ApplyStatus.Ok, outcome.Result?.Status);
            }
            // Packed off the loop, then handed to the Raft log store, which moved the packed file in.
            var clock = Stopwatch.StartNew();
            while (!File.Exists(Path.Combine(dir.Path, "groups", "3", "raft", "snapshot")))
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), "a snapshot was taken");
                await Task.Delay(20);
            }
            Assert.Single(Directory.GetFiles(Path.Combine(dir.Path, "groups", "3", "raft"), "snapshot-*.data"));
        }
        using (var reopened = ClusterHost.Open(options, _ => { }, _ => { }))
        {
            await WaitLeaderAsync(reopened, 3);
            Assert.Equal(200, reopened.DatabaseCount(3));
            Assert.NotNull(reopened.FindDatabase("db_s199"));
        }
        Assert.Empty(Directory.GetFiles(dir.Path, "snapshot-*.pack", SearchOption.AllDirectories));
    }

    [Fact]
    public void Packing_to_a_file_writes_the_same_blob_as_packing_in_memory()
    {
        using var dir = new TempDirectory();
        var source = Path.Combine(dir.Path, "src");
        Directory.CreateDirectory(source);
        var random = new Random(5);
        foreach (var (name, size) in new[] { ("a", 0), ("b", 7), ("c", (1 << 20) + 13) })
        {
            var bytes = new byte[size];
            random.NextBytes(bytes);
            File.WriteAllBytes(Path.Combine(source, name), bytes);
        }
        var packed = Path.Combine(dir.Path, "packed");
        CheckpointPacker.PackToFile(source, packed);
        var blob = File.ReadAllBytes(packed);
        Assert.Equal(CheckpointPacker.Pack(source), blob);
        CheckpointPacker.Unpack(blob, Path.Combine(dir.Path, "out"));
        Assert.Equal(File.ReadAllBytes(Path.Combine(source, "c")), File.ReadAllBytes(Path.Combine(dir.Path, "out", "c")));
    }

    private static async Task WaitLeaderAsync(ClusterHost host, ulong group)
    {
        var clock = Stopwatch.StartNew();
        while (!host.IsLeader(group))
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), "the single-replica group elects itself");
            await Task.Delay(20);
        }
    }
}
