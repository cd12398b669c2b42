using Kdb.Sql.Sessions;
using Kdb.Sql.Types;

namespace Kdb.Sql.Tests;

/// <summary>
/// <see cref="SqlStatement.IsPointRead"/> lets a host run a statement on a thread it must not hold for long (a socket's
/// completion thread): only a primary-key lookup with cheap expressions may say true, and a rebind into anything
/// else must turn it off. <see cref="SqlSession.SyncCommits"/> tells a Sync that commits writes from one that ends a read.
/// </summary>
public sealed class PointReadShapeTests : IDisposable
{
    private readonly SqlTestDatabase _db = new();

    public void Dispose() => _db.Dispose();

    private async Task<SqlSession> AccountsAsync()
    {
        var s = _db.Session();
        await s.RunAsync("CREATE TABLE accounts (aid int PRIMARY KEY, abalance int NOT NULL, name text)");
        await s.RunAsync("INSERT INTO accounts SELECT g, g * 10, 'a' || g FROM generate_series(1, 50) g");
        return s;
    }

    /// <summary>Prepares and runs <paramref name="sql"/>; Prepare binds, so its shape is known before the first run and must not change with it.</summary>
    private static async Task<SqlStatement> RunPreparedAsync(SqlSession session, string sql, Value[] args)
    {
        var statement = session.Prepare(sql, [.. args.Select(_ => SqlTypeId.Int4)]);
        var atPrepare = (statement.IsPointRead, statement.IsPointWrite);
        using (var cursor = await statement.ExecuteAsync(args))
        {
            while (cursor.MoveNext())
            {
            }
        }

        await session.SyncAsync();
        Assert.Equal(atPrepare, (statement.IsPointRead, statement.IsPointWrite));
        Assert.False(statement.IsPointRead && statement.IsPointWrite);
        Assert.Equal(statement.IsPointRead || statement.IsPointWrite, statement.IsBounded);
        return statement;
    }

    private static async Task<bool> PointReadAfterRunAsync(SqlSession session, string sql, params Value[] args) =>
        (await RunPreparedAsync(session, sql, args)).IsPointRead;

    private static async Task<bool> PointWriteAfterRunAsync(SqlSession session, string sql, params Value[] args) =>
        (await RunPreparedAsync(session, sql, args)).IsPointWrite;

    [Fact]
    public async Task PrimaryKeyLookups_WithCheapExpressions_ArePointReads()
    {
        var s = await AccountsAsync();
        Assert.True(await PointReadAfterRunAsync(s, "SELECT abalance FROM accounts WHERE aid = $1", Value.FromInt(3)));
        Assert.True(await PointReadAfterRunAsync(s, "SELECT abalance + 1, name IS NULL FROM accounts WHERE aid = $1 AND abalance > 0", Value.FromInt(3)));
        Assert.True(await PointReadAfterRunAsync(s, "SELECT * FROM accounts WHERE aid = $1 LIMIT 1", Value.FromInt(3)));
    }

    [Fact]
    public async Task Scans_FunctionCalls_Subqueries_AndWrites_AreNot()
    {
        var s = await AccountsAsync();
        Assert.False(await PointReadAfterRunAsync(s, "SELECT abalance FROM accounts WHERE aid > $1", Value.FromInt(3)));
        Assert.False(await PointReadAfterRunAsync(s, "SELECT abalance FROM accounts WHERE abalance = $1", Value.FromInt(30)));
        Assert.False(await PointReadAfterRunAsync(s, "SELECT repeat(name, 3) FROM accounts WHERE aid = $1", Value.FromInt(3)));
        Assert.False(await PointReadAfterRunAsync(s, "SELECT (SELECT count(*) FROM accounts) FROM accounts WHERE aid = $1", Value.FromInt(3)));
        Assert.False(await PointReadAfterRunAsync(s, "SELECT count(*) FROM accounts WHERE aid = $1", Value.FromInt(3)));
        Assert.False(await PointReadAfterRunAsync(s, "UPDATE accounts SET abalance = abalance + 1 WHERE aid = $1", Value.FromInt(3)));
    }

    [Fact]
    public async Task OneRowWrites_WithCheapExpressions_ArePointWrites()
    {
        var s = await AccountsAsync();
        await s.RunAsync("CREATE TABLE history (tid int, aid int, delta int, at timestamp)");
        Assert.True(await PointWriteAfterRunAsync(s, "UPDATE accounts SET abalance = abalance + $1 WHERE aid = $2", Value.FromInt(5), Value.FromInt(3)));
        Assert.True(await PointWriteAfterRunAsync(s, "UPDATE accounts SET name = NULL WHERE aid = $1 AND abalance > 0 RETURNING abalance", Value.FromInt(4)));
        Assert.True(await PointWriteAfterRunAsync(s, "DELETE FROM accounts WHERE aid = $1", Value.FromInt(5)));
        Assert.True(await PointWriteAfterRunAsync(s, "INSERT INTO accounts VALUES ($1, $2)", Value.FromInt(100), Value.FromInt(1)));
        Assert.True(await PointWriteAfterRunAsync(s, "INSERT INTO history (tid, aid, delta) VALUES ($1, $2, $3)", Value.FromInt(1), Value.FromInt(2), Value.FromInt(3)));
        Assert.Equal("35", await s.ScalarAsync("SELECT abalance FROM accounts WHERE aid = 3"));
    }

    [Fact]
    public async Task ManyRowOrUnboundedWrites_AreNotPointWrites()
    {
        var s = await AccountsAsync();
        await s.RunAsync("CREATE TABLE branches (bid int PRIMARY KEY, name text)");
        await s.RunAsync("INSERT INTO branches VALUES (1, 'b')");
        await s.RunAsync("CREATE TABLE tellers (tid int PRIMARY KEY, bid int REFERENCES branches (bid))");
        await s.RunAsync("CREATE TABLE events (id serial PRIMARY KEY, what text)");
        await s.RunAsync("CREATE TABLE stamped (id int PRIMARY KEY, at timestamptz DEFAULT now())");
        await s.RunAsync("CREATE TABLE checked (id int PRIMARY KEY, v text CHECK (length(v) < 10))");
        Assert.False(await PointWriteAfterRunAsync(s, "UPDATE accounts SET abalance = 0 WHERE aid > $1", Value.FromInt(40)));
        Assert.False(await PointWriteAfterRunAsync(s, "UPDATE accounts SET name = repeat(name, 2) WHERE aid = $1", Value.FromInt(3)));
        Assert.False(await PointWriteAfterRunAsync(s, "DELETE FROM accounts WHERE abalance = $1", Value.FromInt(30)));
        Assert.False(await PointWriteAfterRunAsync(s, "INSERT INTO accounts VALUES ($1, 1), (1000, 2)", Value.FromInt(999)));
        Assert.False(await PointWriteAfterRunAsync(s, "INSERT INTO accounts SELECT aid + 500, abalance FROM accounts WHERE aid = $1", Value.FromInt(1)));
        Assert.False(await PointWriteAfterRunAsync(s, "INSERT INTO accounts VALUES ($1, 1) ON CONFLICT DO NOTHING", Value.FromInt(1)));
        Assert.False(await PointWriteAfterRunAsync(s, "INSERT INTO events (what) VALUES ('x' || $1)", Value.FromInt(1)));
        Assert.False(await PointWriteAfterRunAsync(s, "INSERT INTO stamped (id) VALUES ($1)", Value.FromInt(1)));
        Assert.False(await PointWriteAfterRunAsync(s, "INSERT INTO checked VALUES ($1, 'short')", Value.FromInt(1)));

        // Keeping the rows that reference it right can scan them: a referenced table's updates and deletes are unbounded,
        // while writing a referencing row only looks its parent up.
        Assert.False(await PointWriteAfterRunAsync(s, "UPDATE branches SET name = 'c' WHERE bid = $1", Value.FromInt(1)));
        Assert.False(await PointWriteAfterRunAsync(s, "DELETE FROM branches WHERE bid = $1", Value.FromInt(2)));
        Assert.True(await PointWriteAfterRunAsync(s, "INSERT INTO tellers VALUES ($1, 1)", Value.FromInt(1)));
    }

    [Fact]
    public void Begin_IsBounded_CommitAndOtherUtilitiesAreNot()
    {
        var s = _db.Session();
        Assert.True(s.Prepare("BEGIN").IsBounded);
        Assert.True(s.Prepare("START TRANSACTION ISOLATION LEVEL REPEATABLE READ").IsBounded);
        Assert.False(s.Prepare("COMMIT").IsBounded);
        Assert.False(s.Prepare("END").IsBounded);
        Assert.False(s.Prepare("ROLLBACK").IsBounded);
        Assert.False(s.Prepare("CREATE TABLE t (id int PRIMARY KEY)").IsBounded);
    }

    [Fact]
    public async Task ARebindIntoAScan_TurnsItOff()
    {
        var s = await AccountsAsync();
        var statement = s.Prepare("SELECT abalance FROM accounts WHERE aid = $1", [SqlTypeId.Int4]);
        using (var cursor = await statement.ExecuteAsync([Value.FromInt(1)]))
        {
            Assert.True(cursor.MoveNext());
        }

        await s.SyncAsync();
        Assert.True(statement.IsPointRead);

        // The table is replaced by one whose primary key is another column: the same text now scans.
        await s.RunAsync("DROP TABLE accounts");
        await s.RunAsync("CREATE TABLE accounts (id int PRIMARY KEY, aid int, abalance int)");
        await s.RunAsync("INSERT INTO accounts VALUES (1, 1, 7)");
        using (var cursor = await statement.ExecuteAsync([Value.FromInt(1)]))
        {
            Assert.True(cursor.MoveNext());
            Assert.Equal(7, cursor.Current[0].AsInt);
        }

        await s.SyncAsync();
        Assert.False(statement.IsPointRead);
    }

    [Fact]
    public async Task SyncCommits_OnlyForAnImplicitTransactionThatWrote()
    {
        var s = await AccountsAsync();
        var read = s.Prepare("SELECT abalance FROM accounts WHERE aid = $1", [SqlTypeId.Int4]);
        using (var cursor = await read.ExecuteAsync([Value.FromInt(2)]))
        {
            Assert.True(cursor.MoveNext());
        }

        Assert.False(s.SyncCommits);
        await s.SyncAsync();

        var write = s.Prepare("UPDATE accounts SET abalance = 0 WHERE aid = $1", [SqlTypeId.Int4]);
        using (await write.ExecuteAsync([Value.FromInt(2)]))
        {
        }

        Assert.True(s.SyncCommits);
        await s.SyncAsync();
        Assert.False(s.SyncCommits);
    }
}
