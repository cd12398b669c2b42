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

    private static async Task<bool> PointReadAfterRunAsync(SqlSession session, string sql, params Value[] args)
    {
        var statement = session.Prepare(sql, [.. args.Select(_ => SqlTypeId.Int4)]);
        var atPrepare = statement.IsPointRead; // Prepare binds: the shape is known before the first run
        using (var cursor = await statement.ExecuteAsync(args))
        {
            while (cursor.MoveNext())
            {
            }
        }

        await session.SyncAsync();
        Assert.Equal(atPrepare, statement.IsPointRead);
        return statement.IsPointRead;
    }

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
