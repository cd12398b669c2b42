using Kdb.Sql.Transactions;

namespace Kdb.Sql.Tests;

public sealed class GcThresholdTests
{
    [Fact]
    public void Tick_TrailsTheNewestVersionByTheRetention()
    {
        var set = new List<ulong>();
        var advancer = new GcThresholdAdvancer(set.Add, TimeSpan.FromMinutes(10));
        var start = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        advancer.Tick(start, 100);
        advancer.Tick(start.AddMinutes(5), 200);
        Assert.Empty(set);
        advancer.Tick(start.AddMinutes(10), 300);
        Assert.Equal([100UL], set);
        advancer.Tick(start.AddMinutes(16), 400);
        Assert.Equal([100UL, 200UL], set);
        Assert.Equal(200UL, advancer.Threshold);
    }

    [Fact]
    public async Task SnapshotOlderThanThreshold_FailsWith40001_YoungerCommits()
    {
        using var db = new SqlTestDatabase();
        var s = db.Session();
        await s.RunAsync("CREATE TABLE t (id int PRIMARY KEY, v int)");
        await s.RunAsync("INSERT INTO t VALUES (1, 0)");
        var old = db.Session();
        await old.RunAsync("BEGIN");
        Assert.Equal("0", await old.ScalarAsync("SELECT v FROM t WHERE id = 1"));
        await s.RunAsync("UPDATE t SET v = 1 WHERE id = 1");
        var advancer = new GcThresholdAdvancer(db.Store.SetGcThreshold, TimeSpan.Zero);
        advancer.Tick(DateTimeOffset.UtcNow, db.Engine.LastAppliedIndex);

        // The row changed after the old snapshot: the write refreshes the transaction's reads, which the threshold forbids.
        var e = await old.FailsAsync("UPDATE t SET v = 2 WHERE id = 1", "40001");
        Assert.Contains("snapshot too old", e.Message, StringComparison.Ordinal);
        await old.RunAsync("ROLLBACK");
        await s.RunAsync("UPDATE t SET v = 3 WHERE id = 1");
        Assert.Equal("3", await s.ScalarAsync("SELECT v FROM t WHERE id = 1"));
    }
}
