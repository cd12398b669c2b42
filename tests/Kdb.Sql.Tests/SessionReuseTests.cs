using Kdb.Sql.Sessions;
using Kdb.Sql.Types;

namespace Kdb.Sql.Tests;

/// <summary>
/// A session reuses its transaction object, execution contexts and disposed cursors between statements:
/// reuse must never leak state (reads, writes, parameters, tags) from one statement or transaction into the next.
/// </summary>
public sealed class SessionReuseTests : IDisposable
{
    private readonly SqlTestDatabase _db = new();

    public void Dispose() => _db.Dispose();

    private async Task<SqlSession> AccountsAsync(int rows = 100)
    {
        var s = _db.Session();
        await s.RunAsync("CREATE TABLE accounts (aid int PRIMARY KEY, abalance int NOT NULL, name text)");
        await s.RunAsync($"INSERT INTO accounts SELECT g, g * 10, 'a' || g FROM generate_series(1, {rows}) g");
        return s;
    }

    private static async Task<long?> PointAsync(SqlStatement statement, SqlSession session, int aid)
    {
        long? result = null;
        using (var cursor = await statement.ExecuteAsync([Value.FromInt(aid)]))
        {
            while (cursor.MoveNext())
            {
                result = cursor.Current[0].AsInt;
            }

            Assert.Equal(result is null ? "SELECT 0" : "SELECT 1", cursor.CommandTag);
        }

        await session.SyncAsync();
        return result;
    }

    [Fact]
    public async Task PreparedPointSelect_AllocatesAlmostNothingInSteadyState()
    {
        var s = await AccountsAsync(1000);
        var statement = s.Prepare("SELECT abalance FROM accounts WHERE aid = $1", [SqlTypeId.Int4]);
        var args = new Value[1];
        long sum = 0;

        // No await in the loop: the engine completes these synchronously, and the test's own async state
        // machine (a class in Debug builds) must not be counted.
        void Run(int runs)
        {
            for (var i = 1; i <= runs; i++)
            {
                args[0] = Value.FromInt(i % 1000 + 1);
                var pending = statement.ExecuteAsync(args);
                Assert.True(pending.IsCompletedSuccessfully);
                using (var cursor = pending.Result)
                {
                    while (cursor.MoveNext())
                    {
                        sum += cursor.Current[0].AsInt;
                    }
                }

                Assert.True(s.SyncAsync().IsCompletedSuccessfully);
            }
        }

        Run(2000);
        Assert.Equal(Enumerable.Range(1, 2000).Sum(i => (i % 1000 + 1) * 10L), sum);
        const int Runs = 5000;
        var before = GC.GetAllocatedBytesForCurrentThread();
        Run(Runs);
        var perSelect = (GC.GetAllocatedBytesForCurrentThread() - before) / (double)Runs;

        // The storage engine's snapshot object (about 40 B) is all that remains; the SQL layer allocates nothing.
        Assert.True(perSelect <= 64, $"a point select allocated {perSelect:F0} B");
    }

    [Fact]
    public async Task ReusedTransaction_ForgetsReadsAndWritesOfTheLastOne()
    {
        var s = await AccountsAsync();
        var other = _db.Session();
        var statement = s.Prepare("SELECT abalance FROM accounts WHERE aid = $1", [SqlTypeId.Int4]);

        // A read-only transaction leaves point reads behind; the next writing transaction must not carry them
        // (a stale read set would make it fail with 40001 after another session wrote those rows).
        Assert.Equal(10L, await PointAsync(statement, s, 1));
        await other.RunAsync("UPDATE accounts SET abalance = 11 WHERE aid = 1");
        Assert.Equal("UPDATE 1", await s.RunAsync("UPDATE accounts SET abalance = 21 WHERE aid = 2"));

        // A rolled-back write is gone for the next transaction of the same session.
        await s.RunAsync("BEGIN");
        await s.RunAsync("UPDATE accounts SET abalance = 0 WHERE aid = 3");
        await s.RunAsync("ROLLBACK");
        Assert.Equal(30L, await PointAsync(statement, s, 3));
        Assert.Equal(11L, await PointAsync(statement, s, 1));
        Assert.Equal(21L, await PointAsync(statement, s, 2));

        // A read set kept across statements of one transaction still detects conflicts.
        await s.RunAsync("BEGIN");
        Assert.Equal(50L, await PointAsync(statement, s, 5));
        await other.RunAsync("UPDATE accounts SET abalance = 55 WHERE aid = 5");
        await s.RunAsync("UPDATE accounts SET abalance = 66 WHERE aid = 6");
        var conflict = await Assert.ThrowsAsync<SqlException>(() => s.ExecuteAsync("COMMIT").AsTask());
        Assert.Equal("40001", conflict.SqlState);
        Assert.Equal(55L, await PointAsync(statement, s, 5));
        Assert.Equal(60L, await PointAsync(statement, s, 6));
    }

    [Fact]
    public async Task TwoOpenCursorsOfOneStatement_KeepTheirOwnParametersAndRows()
    {
        var s = await AccountsAsync();
        var statement = s.Prepare("SELECT abalance, name FROM accounts WHERE aid >= $1 ORDER BY aid LIMIT 3", [SqlTypeId.Int4]);
        await s.RunAsync("BEGIN");
        using var first = await statement.ExecuteAsync([Value.FromInt(10)]);
        using var second = await statement.ExecuteAsync([Value.FromInt(50)]);
        var seen = new List<string>();
        while (first.MoveNext() | second.MoveNext())
        {
            seen.Add(first.CommandTag is null ? first.Current[1].AsText : "-");
            seen.Add(second.CommandTag is null ? second.Current[1].AsText : "-");
        }

        Assert.Equal(["a10", "a50", "a11", "a51", "a12", "a52"], seen);
        Assert.Equal("SELECT 3", first.CommandTag);
        Assert.Equal("SELECT 3", second.CommandTag);
        await s.RunAsync("COMMIT");
    }

    [Fact]
    public async Task AbandonedCursor_DoesNotLeakIntoTheNextRun()
    {
        var s = await AccountsAsync();
        var statement = s.Prepare("SELECT aid FROM accounts WHERE aid > $1 ORDER BY aid", [SqlTypeId.Int4]);
        using (var cursor = await statement.ExecuteAsync([Value.FromInt(90)]))
        {
            Assert.True(cursor.MoveNext());
            Assert.Equal(91, cursor.Current[0].AsInt);
        }

        for (var round = 0; round < 3; round++)
        {
            var rows = new List<long>();
            using (var cursor = await statement.ExecuteAsync([Value.FromInt(97)]))
            {
                while (cursor.MoveNext())
                {
                    rows.Add(cursor.Current[0].AsInt);
                }

                Assert.Equal("SELECT 3", cursor.CommandTag);
            }

            Assert.Equal([98L, 99L, 100L], rows);
        }

        await s.SyncAsync();
    }

    [Fact]
    public async Task CursorOfAnEndedTransaction_FailsWith34000()
    {
        var s = await AccountsAsync();
        var statement = s.Prepare("SELECT aid FROM accounts ORDER BY aid", []);
        var cursor = await statement.ExecuteAsync([]);
        Assert.True(cursor.MoveNext());
        await s.SyncAsync();

        // The session's next transaction reuses the transaction object: the old cursor must not read from it.
        Assert.Equal(10L, await PointAsync(s.Prepare("SELECT abalance FROM accounts WHERE aid = $1", [SqlTypeId.Int4]), s, 1));
        await s.ExecuteAsync("BEGIN");
        var e = Assert.Throws<SqlException>(() => cursor.MoveNext());
        Assert.Equal("34000", e.SqlState);
        cursor.Dispose();
        s.Fail();
        await s.ExecuteAsync("ROLLBACK");
        Assert.Equal("100", await s.ScalarAsync("SELECT count(*) FROM accounts"));
    }

    [Fact]
    public async Task RepeatedStatements_RecomputeCtesAndUncorrelatedSubqueries()
    {
        var s = await AccountsAsync(10);
        var statement = s.Prepare(
            "WITH big AS (SELECT aid FROM accounts WHERE abalance > $1) SELECT (SELECT count(*) FROM big), (SELECT max(abalance) FROM accounts WHERE aid IN (SELECT aid FROM big))",
            [SqlTypeId.Int4]);
        for (var round = 0; round < 3; round++)
        {
            foreach (var (threshold, count, max) in new[] { (50, 5L, 100L), (90, 1L, 100L), (100, 0L, -1L) })
            {
                using var cursor = await statement.ExecuteAsync([Value.FromInt(threshold)]);
                Assert.True(cursor.MoveNext());
                Assert.Equal(count, cursor.Current[0].AsInt);
                Assert.Equal(max < 0, cursor.Current[1].IsNull);
                if (max >= 0)
                {
                    Assert.Equal(max, cursor.Current[1].AsInt);
                }
            }

            // Data changes between executions are seen too.
            await s.SyncAsync();
            await s.RunAsync("UPDATE accounts SET abalance = abalance WHERE aid = 1");
        }
    }

    [Fact]
    public async Task CommandTags_CountRowsBeyondTheCachedRange()
    {
        var s = await AccountsAsync(100);
        Assert.Equal("UPDATE 100", await s.RunAsync("UPDATE accounts SET abalance = abalance + 1"));
        Assert.Equal("DELETE 63", await s.RunAsync("DELETE FROM accounts WHERE aid <= 63"));
        Assert.Equal("SELECT 37", (await s.ExecuteAsync("SELECT * FROM accounts"))[0].CommandTag);
        Assert.Equal("INSERT 0 64", await s.RunAsync("INSERT INTO accounts SELECT g, 0, 'x' FROM generate_series(101, 164) g"));
        Assert.Equal("DELETE 0", await s.RunAsync("DELETE FROM accounts WHERE aid < 0"));
    }
}
