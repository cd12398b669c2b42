using System.Diagnostics;
using Kdb.Sql.Sessions;

namespace Kdb.Cluster.Tests;

/// <summary>
/// Creates that reach the leader in one loop round share one log entry (<see cref="ShardCommandType.CreateDatabaseBatch"/>):
/// each keeps its own result, duplicates inside a batch are judged as if applied one by one, and a malformed batch is
/// refused whole without touching state.
/// </summary>
public sealed class CreateBatchTests
{
    private static readonly DatabaseRole Owner = new("owner", SqlRoleKind.Owner, "SCRAM-SHA-256$4096:c2FsdA==$a:b");

    [Fact]
    public void A_batch_applies_each_create_in_order_with_its_own_result()
    {
        using var dir = new TempDirectory();
        using var engine = Kdb.Storage.KvEngine.Open(dir.Path, new Kdb.Storage.EngineOptions { RaftMode = true });
        var sm = new ShardStateMachine(engine);
        Assert.Equal(ApplyStatus.Ok, sm.Apply(1, ShardCommand.CreateDatabase("db_old", 5, Owner)).Status);
        var batch = ShardCommand.CreateDatabaseBatch([
            ShardCommand.CreateDatabase("db_a", 7, Owner),
            ShardCommand.CreateDatabase("db_a", 7, Owner), // the same create again in the batch: idempotent, like a redelivery
            ShardCommand.CreateDatabase("db_a", 8, Owner), // same id, other tenant
            ShardCommand.CreateDatabase("db_b", 7, Owner), // tenant taken earlier in this batch
            ShardCommand.CreateDatabase("db_c", 5, Owner), // tenant taken before the batch
            ShardCommand.CreateDatabase("db_z", 0, Owner), // invalid
            ShardCommand.CreateDatabase("db_d", 9, Owner),
        ]);
        var results = sm.ApplyCreateBatch(2, batch);
        Assert.Equal(
            [ApplyStatus.Ok, ApplyStatus.Ok, ApplyStatus.AlreadyExists, ApplyStatus.AlreadyExists, ApplyStatus.AlreadyExists, ApplyStatus.Invalid, ApplyStatus.Ok],
            results.Select(r => r.Status).ToArray());
        Assert.All(results, r => Assert.Equal(2UL, r.Index));
        Assert.Equal(3, sm.DatabaseCount);
        Assert.Equal(7UL, sm.FindDatabase("db_a")!.TenantId);
        Assert.Equal(9UL, sm.FindDatabase("db_d")!.TenantId);
        Assert.Null(sm.FindDatabase("db_b"));
        Assert.Equal("db_d", sm.FindTenant(9)!.DatabaseId);
        // Through the generic entry point too (a replica replaying its log uses the same code).
        Assert.Equal(ApplyStatus.Ok, sm.Apply(3, ShardCommand.CreateDatabaseBatch([ShardCommand.CreateDatabase("db_e", 10, Owner), ShardCommand.CreateDatabase("db_f", 11, Owner)])).Status);
        Assert.Equal(5, sm.DatabaseCount);
    }

    [Fact]
    public void Every_truncation_and_corruption_of_a_batch_is_refused_whole()
    {
        using var dir = new TempDirectory();
        using var engine = Kdb.Storage.KvEngine.Open(dir.Path, new Kdb.Storage.EngineOptions { RaftMode = true });
        var sm = new ShardStateMachine(engine);
        var batch = ShardCommand.CreateDatabaseBatch([ShardCommand.CreateDatabase("db_a", 7, Owner), ShardCommand.CreateDatabase("db_b", 8, Owner)]);
        ulong index = 1;
        for (var cut = 0; cut < batch.Length; cut++)
        {
            var results = cut < 2 ? [sm.Apply(index, batch.AsMemory(0, cut))] : sm.ApplyCreateBatch(index, batch.AsMemory(0, cut));
            // Every prefix breaks the framing (a count of two, lengths that run past the end): refused whole.
            Assert.Equal([ApplyStatus.Invalid], results.Select(r => r.Status).ToArray());
            index++;
        }
        // A batch that holds anything but creates, a count larger than the bytes, trailing bytes.
        var nested = ShardCommand.CreateDatabaseBatch([ShardCommand.DropDatabase("db_a")]);
        Assert.Equal(ApplyStatus.Invalid, sm.ApplyCreateBatch(index++, nested).Single().Status);
        var lying = (byte[])batch.Clone();
        lying[2] = 0xFF;
        Assert.Equal(ApplyStatus.Invalid, sm.ApplyCreateBatch(index++, lying).Single().Status);
        Assert.Equal(ApplyStatus.Invalid, sm.ApplyCreateBatch(index++, (byte[])[.. batch, 0]).Single().Status);
        Assert.Equal(0, sm.DatabaseCount);
        // Random corruption: each create is judged on its own bytes (a flipped verifier byte still creates), never a crash,
        // and every result carries the entry's index.
        var random = new Random(16);
        for (var i = 0; i < 300; i++)
        {
            var bytes = (byte[])batch.Clone();
            bytes[2 + random.Next(bytes.Length - 2)] ^= (byte)(1 + random.Next(255));
            var at = index++;
            Assert.All(sm.ApplyCreateBatch(at, bytes), r => Assert.Equal(at, r.Index));
        }
    }

    [Fact]
    public async Task Concurrent_creates_share_entries_and_each_gets_its_own_answer()
    {
        using var dir = new TempDirectory();
        var options = new ClusterOptions { DataDirectory = dir.Path, NodeId = "node-a", InternalUrl = "http://127.0.0.1:1", MemtableBytes = 4 << 20 };
        using var host = ClusterHost.Open(options, _ => { }, _ => { });
        var self = new GroupMember(options.NodeId, host.RaftId, options.InternalUrl);
        await host.CreateGroupAsync(3, [self], join: false);
        var deadline = Stopwatch.StartNew();
        while (!host.IsLeader(3))
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(30), "the single-replica group elects itself");
            await Task.Delay(20);
        }
        var before = host.Status(3).AppliedIndex;
        const int creates = 2_000;
        var tasks = new Task<ProposeOutcome>[creates + 1];
        for (var i = 0; i < creates; i++)
        {
            tasks[i] = host.ProposeAsync(3, ShardCommand.CreateDatabase($"db_batch{i}", 100UL + (ulong)i, Owner));
        }
        // A tenant id taken by a create in flight at the same time: exactly that one fails.
        tasks[creates] = host.ProposeAsync(3, ShardCommand.CreateDatabase("db_clash", 100, Owner));
        var outcomes = await Task.WhenAll(tasks);
        Assert.All(outcomes.Take(creates), o => Assert.Equal(ApplyStatus.Ok, o.Result?.Status));
        Assert.Equal(ApplyStatus.AlreadyExists, outcomes[creates].Result?.Status);
        Assert.Equal(creates, host.DatabaseCount(3));
        Assert.Equal(100UL + 1234, host.FindDatabase("db_batch1234")!.Value.Record.TenantId);
        var entries = host.Status(3).AppliedIndex - before;
        Assert.True(entries < creates / 4, $"{creates} concurrent creates took {entries} log entries");
        // A single create on its own is still an ordinary create entry.
        Assert.Equal(ApplyStatus.Ok, (await host.ProposeAsync(3, ShardCommand.CreateDatabase("db_alone", 99_999, Owner))).Result?.Status);
        Assert.Equal(creates + 1, host.DatabaseCount(3));
    }
}
