namespace Kdb.Sql.Tests;

/// <summary>
/// Where kdb deliberately refuses what PostgreSQL allows (documented in docs/sql.md), with a clear SQLSTATE rather
/// than a wrong answer: renames under a view (views are stored as text). The PostgreSQL-compatible view behaviour is compared in
/// Differential/ViewTests.
/// </summary>
public sealed class ViewDependencyTests : IDisposable
{
    private readonly SqlTestDatabase _db = new();

    public void Dispose() => _db.Dispose();

    [Fact]
    public async Task Rename_UnderAView_IsRefused_AndTheViewKeepsWorking()
    {
        var s = _db.Session();
        await s.RunAsync("CREATE TABLE t (a int PRIMARY KEY, b text, c int)");
        await s.RunAsync("INSERT INTO t VALUES (1, 'x', 2)");
        await s.RunAsync("CREATE VIEW v AS SELECT a, b FROM t");

        var table = await s.FailsAsync("ALTER TABLE t RENAME TO t2", "0A000");
        Assert.Contains("view v depends on it", table.Message, StringComparison.Ordinal);
        await s.FailsAsync("ALTER TABLE t RENAME COLUMN b TO bb", "0A000");

        // A column the view does not read renames freely.
        Assert.Equal("ALTER TABLE", await s.RunAsync("ALTER TABLE t RENAME COLUMN c TO cc"));
        Assert.Equal("x", await s.ScalarAsync("SELECT b FROM v WHERE a = 1"));

        await s.RunAsync("DROP VIEW v");
        Assert.Equal("ALTER TABLE", await s.RunAsync("ALTER TABLE t RENAME TO t2"));
    }

    [Fact]
    public async Task Views_DependenciesSurviveCommit_AndRollbackRestoresThem()
    {
        var s = _db.Session();
        await s.RunAsync("CREATE TABLE t (a int)");
        await s.RunAsync("CREATE VIEW v AS SELECT a FROM t");

        var other = _db.Session();
        await other.FailsAsync("DROP TABLE t", "2BP01");
        await other.RunAsync("BEGIN");
        await other.RunAsync("DROP TABLE t CASCADE");
        await other.FailsAsync("SELECT * FROM v", "42P01");
        await other.RunAsync("ROLLBACK");

        Assert.Equal("0", await other.ScalarAsync("SELECT count(*) FROM v"));
        await s.FailsAsync("CREATE OR REPLACE VIEW v AS SELECT a FROM v", "42P17");
    }

    [Theory]
    [InlineData("SELECT 1::numeric(1001, 0)", "22023")]
    public async Task Unsupported_IsAClearError(string sql, string sqlState)
    {
        var s = _db.Session();
        await s.FailsAsync(sql, sqlState);
        Assert.Equal("1.50", await s.ScalarAsync("SELECT 1.5::numeric(1000, 2)"));
    }
}
