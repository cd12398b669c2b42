using Kdb.Sql.Sessions;

namespace Kdb.Sql.Tests.Anomalies;

/// <summary>
/// The classic anomalies, with two sessions interleaved deterministically, are all prevented at SERIALIZABLE:
/// the transaction that would produce the anomaly fails with 40001 (at a statement or at COMMIT), or its
/// snapshot keeps it from seeing the other's writes at all.
/// </summary>
public sealed class IsolationAnomalyTests : IDisposable
{
    private readonly SqlTestDatabase _db = new();

    public void Dispose() => _db.Dispose();

    [Fact]
    public async Task LostUpdate_SecondReadModifyWrite_FailsWith40001AndRetrySeesFirst()
    {
        var setup = _db.Session();
        await setup.RunAsync("CREATE TABLE counter (id int PRIMARY KEY, v int NOT NULL)");
        await setup.RunAsync("INSERT INTO counter VALUES (1, 10)");
        var a = _db.Session();
        var b = _db.Session();
        await a.RunAsync("BEGIN");
        await b.RunAsync("BEGIN");
        var readA = int.Parse(await a.ScalarAsync("SELECT v FROM counter WHERE id = 1"));
        var readB = int.Parse(await b.ScalarAsync("SELECT v FROM counter WHERE id = 1"));
        Assert.Equal(10, readA);
        Assert.Equal(10, readB);
        await a.RunAsync("UPDATE counter SET v = $1 WHERE id = 1", readA + 1);
        await a.RunAsync("COMMIT");

        // b computed its write from a value a has since replaced: committing it would lose a's increment.
        var failed = await FailsSomewhereAsync(b, $"UPDATE counter SET v = {readB + 1} WHERE id = 1", "COMMIT");
        Assert.Equal("40001", failed);
        Assert.Equal("11", await setup.ScalarAsync("SELECT v FROM counter WHERE id = 1"));

        await b.RunAsync("BEGIN");
        var retry = int.Parse(await b.ScalarAsync("SELECT v FROM counter WHERE id = 1"));
        await b.RunAsync("UPDATE counter SET v = $1 WHERE id = 1", retry + 1);
        await b.RunAsync("COMMIT");
        Assert.Equal("12", await setup.ScalarAsync("SELECT v FROM counter WHERE id = 1"));
    }

    [Fact]
    public async Task WriteSkew_InsertsBasedOnSameCount_SecondCommitFailsWith40001()
    {
        var setup = _db.Session();
        await setup.RunAsync("CREATE TABLE shifts (id int PRIMARY KEY, day int NOT NULL, doctor text NOT NULL)");
        await setup.RunAsync("INSERT INTO shifts VALUES (1, 7, 'alice')");

        // Rule kept by the application: at most two doctors on a day. Each transaction checks, then inserts a
        // different row, so they write no common key; only their reads conflict.
        var a = _db.Session();
        var b = _db.Session();
        await a.RunAsync("BEGIN");
        await b.RunAsync("BEGIN");
        Assert.Equal("1", await a.ScalarAsync("SELECT count(*) FROM shifts WHERE day = 7"));
        Assert.Equal("1", await b.ScalarAsync("SELECT count(*) FROM shifts WHERE day = 7"));
        await a.RunAsync("INSERT INTO shifts VALUES (2, 7, 'bob')");
        await b.RunAsync("INSERT INTO shifts VALUES (3, 7, 'carol')");
        await a.RunAsync("COMMIT");
        Assert.Equal("40001", await FailsSomewhereAsync(b, "COMMIT"));
        Assert.Equal("2", await setup.ScalarAsync("SELECT count(*) FROM shifts WHERE day = 7"));
    }

    [Fact]
    public async Task ReadSkew_TransferBetweenReads_SnapshotStillSumsToTotal()
    {
        var setup = _db.Session();
        await setup.RunAsync("CREATE TABLE acct (id int PRIMARY KEY, balance int NOT NULL)");
        await setup.RunAsync("INSERT INTO acct VALUES (1, 50), (2, 50)");
        var reader = _db.Session();
        var writer = _db.Session();
        await reader.RunAsync("BEGIN");
        var x = int.Parse(await reader.ScalarAsync("SELECT balance FROM acct WHERE id = 1"));
        await writer.RunAsync("BEGIN");
        await writer.RunAsync("UPDATE acct SET balance = balance - 25 WHERE id = 1");
        await writer.RunAsync("UPDATE acct SET balance = balance + 25 WHERE id = 2");
        await writer.RunAsync("COMMIT");
        var y = int.Parse(await reader.ScalarAsync("SELECT balance FROM acct WHERE id = 2"));
        Assert.Equal(100, x + y);
        Assert.Equal("100", await reader.ScalarAsync("SELECT sum(balance) FROM acct"));

        // A read-only transaction never conflicts: its snapshot was consistent.
        Assert.Equal("COMMIT", await reader.RunAsync("COMMIT"));
        Assert.Equal("25", await setup.ScalarAsync("SELECT balance FROM acct WHERE id = 1"));
    }

    [Fact]
    public async Task Phantom_InsertIntoReadRange_IsInvisibleAndWritingReaderFailsWith40001()
    {
        var setup = _db.Session();
        await setup.RunAsync("CREATE TABLE items (id int PRIMARY KEY, k int NOT NULL)");
        await setup.RunAsync("CREATE INDEX items_k ON items (k)");
        await setup.RunAsync("CREATE TABLE summary (id int PRIMARY KEY, n bigint)");
        await setup.RunAsync("INSERT INTO items VALUES (1, 1), (2, 4), (3, 20)");
        var a = _db.Session();
        var b = _db.Session();
        await a.RunAsync("BEGIN");
        Assert.Equal("2", await a.ScalarAsync("SELECT count(*) FROM items WHERE k BETWEEN 1 AND 10"));
        await b.RunAsync("INSERT INTO items VALUES (4, 5)");
        Assert.Equal("2", await a.ScalarAsync("SELECT count(*) FROM items WHERE k BETWEEN 1 AND 10"));
        Assert.Equal("2", await a.ScalarAsync("SELECT count(*) FROM items WHERE id BETWEEN 1 AND 4 AND k <= 10"));

        // a now records what it saw; a phantom appeared in its read range, so it must not commit.
        Assert.Equal("40001", await FailsSomewhereAsync(a, "INSERT INTO summary SELECT 1, count(*) FROM items WHERE k BETWEEN 1 AND 10", "COMMIT"));
        Assert.Equal("0", await setup.ScalarAsync("SELECT count(*) FROM summary"));
        Assert.Equal("3", await setup.ScalarAsync("SELECT count(*) FROM items WHERE k BETWEEN 1 AND 10"));
    }

    [Fact]
    public async Task Phantom_DeleteFromReadRangeWithUpdate_SecondCommitFailsWith40001()
    {
        var setup = _db.Session();
        await setup.RunAsync("CREATE TABLE orders (id int PRIMARY KEY, customer int NOT NULL, total int NOT NULL)");
        await setup.RunAsync("CREATE TABLE totals (customer int PRIMARY KEY, total bigint NOT NULL)");
        await setup.RunAsync("INSERT INTO orders VALUES (1, 1, 10), (2, 1, 20), (3, 2, 5)");
        await setup.RunAsync("INSERT INTO totals VALUES (1, 30), (2, 5)");
        var a = _db.Session();
        var b = _db.Session();
        await a.RunAsync("BEGIN");
        await b.RunAsync("BEGIN");
        await a.RunAsync("UPDATE totals SET total = (SELECT sum(total) FROM orders WHERE customer = 1) WHERE customer = 1");
        await b.RunAsync("DELETE FROM orders WHERE id = 2");
        await b.RunAsync("COMMIT");
        Assert.Equal("40001", await FailsSomewhereAsync(a, "COMMIT"));
        Assert.Equal("30", await setup.ScalarAsync("SELECT total FROM totals WHERE customer = 1"));
        Assert.Equal("10", await setup.ScalarAsync("SELECT sum(total) FROM orders WHERE customer = 1"));
    }

    [Fact]
    public async Task Phantom_WriterOfTheSameRowWaits_ThenBothCommitInASerialOrder()
    {
        var setup = _db.Session();
        await setup.RunAsync("CREATE TABLE orders (id int PRIMARY KEY, customer int NOT NULL, total int NOT NULL)");
        await setup.RunAsync("CREATE TABLE totals (customer int PRIMARY KEY, total bigint NOT NULL)");
        await setup.RunAsync("INSERT INTO orders VALUES (1, 1, 10), (2, 1, 20), (3, 2, 5)");
        await setup.RunAsync("INSERT INTO totals VALUES (1, 30), (2, 5)");
        var a = _db.Session();
        var b = _db.Session();
        await a.RunAsync("BEGIN");
        await b.RunAsync("BEGIN");
        await a.RunAsync("UPDATE totals SET total = (SELECT sum(total) FROM orders WHERE customer = 1) WHERE customer = 1");
        await b.RunAsync("DELETE FROM orders WHERE id = 2");

        // b's update waits for a's row lock, then runs after a's commit (its delete's reads are still true there).
        var waiting = b.RunAsync("UPDATE totals SET total = total - 20 WHERE customer = 1");
        for (var i = 0; _db.Database.LockWaiterCount == 0; i++)
        {
            Assert.True(i < 20_000 && !waiting.IsCompleted, "b's update did not wait for a's row lock");
            await Task.Delay(1);
        }

        await a.RunAsync("COMMIT");
        Assert.Equal("UPDATE 1", await waiting);
        await b.RunAsync("COMMIT");
        Assert.Equal("10", await setup.ScalarAsync("SELECT total FROM totals WHERE customer = 1"));
        Assert.Equal("10", await setup.ScalarAsync("SELECT sum(total) FROM orders WHERE customer = 1"));
    }

    /// <summary>
    /// Runs the statements in order until one fails; returns its SQLSTATE (null if all succeed). Leaves the
    /// session idle (ROLLBACK after a failure inside the block).
    /// </summary>
    private static async Task<string?> FailsSomewhereAsync(SqlSession session, params string[] statements)
    {
        foreach (var statement in statements)
        {
            try
            {
                await session.ExecuteAsync(statement);
            }
            catch (SqlException e)
            {
                if (session.Status != SqlTransactionStatus.Idle)
                {
                    await session.ExecuteAsync("ROLLBACK");
                }

                return e.SqlState;
            }
        }

        return null;
    }
}
