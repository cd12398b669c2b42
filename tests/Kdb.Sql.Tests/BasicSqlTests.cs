using Kdb.Sql.Sessions;

namespace Kdb.Sql.Tests;

public sealed class BasicSqlTests : IDisposable
{
    private readonly SqlTestDatabase _db = new();

    public void Dispose() => _db.Dispose();

    [Fact]
    public async Task CreateInsertSelect_RoundTripsRows()
    {
        var s = _db.Session();
        Assert.Equal("CREATE TABLE", await s.RunAsync("CREATE TABLE t (id int PRIMARY KEY, name text NOT NULL, score numeric(6,2))"));
        Assert.Equal("INSERT 0 3", await s.RunAsync("INSERT INTO t VALUES (1, 'a', 1.5), (2, 'b', NULL), (3, 'c', 10)"));
        var rows = await s.QueryAsync("SELECT id, name, score FROM t ORDER BY id DESC");
        Assert.Equal(["3", "c", "10.00"], rows[0]);
        Assert.Equal(["2", "b", "NULL"], rows[1]);
        Assert.Equal(["1", "a", "1.50"], rows[2]);
    }

    [Fact]
    public async Task PointSelect_WithParameter_FindsRow()
    {
        var s = _db.Session();
        await s.RunAsync("CREATE TABLE accounts (aid int PRIMARY KEY, abalance int)");
        await s.RunAsync("INSERT INTO accounts SELECT g, g * 10 FROM generate_series(1, 100) g");
        Assert.Equal("420", await s.ScalarAsync("SELECT abalance FROM accounts WHERE aid = $1", 42));
        Assert.Equal("100", await s.ScalarAsync("SELECT count(*) FROM accounts"));
    }

    [Fact]
    public async Task Constraints_ReportPostgresSqlStates()
    {
        var s = _db.Session();
        await s.RunAsync("CREATE TABLE p (id int PRIMARY KEY, v int CHECK (v > 0), u text UNIQUE)");
        await s.RunAsync("INSERT INTO p VALUES (1, 1, 'x')");
        await s.FailsAsync("INSERT INTO p VALUES (1, 2, 'y')", "23505");
        await s.FailsAsync("INSERT INTO p VALUES (2, 0, 'y')", "23514");
        await s.FailsAsync("INSERT INTO p VALUES (3, 1, 'x')", "23505");
        await s.FailsAsync("INSERT INTO p (id) VALUES (NULL)", "23502");
        await s.RunAsync("CREATE TABLE c (id serial PRIMARY KEY, pid int REFERENCES p ON DELETE CASCADE)");
        await s.FailsAsync("INSERT INTO c (pid) VALUES (9)", "23503");
        await s.RunAsync("INSERT INTO c (pid) VALUES (1), (1)");
        Assert.Equal("2", await s.ScalarAsync("SELECT count(*) FROM c"));
        await s.RunAsync("DELETE FROM p WHERE id = 1");
        Assert.Equal("0", await s.ScalarAsync("SELECT count(*) FROM c"));
    }

    [Fact]
    public async Task JoinsGroupByAndWindows_Work()
    {
        var s = _db.Session();
        await s.RunAsync("CREATE TABLE dept (id int PRIMARY KEY, name text)");
        await s.RunAsync("CREATE TABLE emp (id int PRIMARY KEY, dept int, salary int)");
        await s.RunAsync("INSERT INTO dept VALUES (1, 'eng'), (2, 'ops'), (3, 'empty')");
        await s.RunAsync("INSERT INTO emp VALUES (1, 1, 100), (2, 1, 200), (3, 2, 50)");
        var rows = await s.QueryAsync("SELECT d.name, count(e.id), sum(e.salary) FROM dept d LEFT JOIN emp e ON e.dept = d.id GROUP BY d.name ORDER BY 1");
        Assert.Equal(["empty", "0", "NULL"], rows[0]);
        Assert.Equal(["eng", "2", "300"], rows[1]);
        var ranked = await s.QueryAsync("SELECT id, rank() OVER (PARTITION BY dept ORDER BY salary DESC) FROM emp ORDER BY id");
        Assert.Equal(["1", "2"], ranked[0]);
        Assert.Equal(["2", "1"], ranked[1]);
        Assert.Equal("300", await s.ScalarAsync("SELECT sum(salary) FROM emp, dept WHERE emp.dept = dept.id AND dept.name = 'eng'"));
    }

    [Fact]
    public async Task Transactions_RollbackAndSavepoints()
    {
        var s = _db.Session();
        await s.RunAsync("CREATE TABLE t (id int PRIMARY KEY)");
        await s.RunAsync("BEGIN");
        await s.RunAsync("INSERT INTO t VALUES (1)");
        await s.RunAsync("SAVEPOINT a");
        await s.RunAsync("INSERT INTO t VALUES (2)");
        await s.RunAsync("ROLLBACK TO a");
        await s.RunAsync("COMMIT");
        Assert.Equal("1", await s.ScalarAsync("SELECT count(*) FROM t"));
        await s.RunAsync("BEGIN");
        await s.RunAsync("DELETE FROM t");
        await s.RunAsync("ROLLBACK");
        Assert.Equal("1", await s.ScalarAsync("SELECT count(*) FROM t"));
    }

    [Fact]
    public async Task WriteSkew_IsPreventedWithSerializationFailure()
    {
        var setup = _db.Session();
        await setup.RunAsync("CREATE TABLE doctors (id int PRIMARY KEY, on_call bool)");
        await setup.RunAsync("INSERT INTO doctors VALUES (1, true), (2, true)");
        var a = _db.Session();
        var b = _db.Session();
        await a.RunAsync("BEGIN");
        await b.RunAsync("BEGIN");
        Assert.Equal("2", await a.ScalarAsync("SELECT count(*) FROM doctors WHERE on_call"));
        Assert.Equal("2", await b.ScalarAsync("SELECT count(*) FROM doctors WHERE on_call"));
        await a.RunAsync("UPDATE doctors SET on_call = false WHERE id = 1");
        await b.RunAsync("UPDATE doctors SET on_call = false WHERE id = 2");
        await a.RunAsync("COMMIT");
        await b.FailsAsync("COMMIT", "40001");
        Assert.Equal("1", await setup.ScalarAsync("SELECT count(*) FROM doctors WHERE on_call"));
    }

    [Fact]
    public async Task ReadOnlyRole_CannotWrite()
    {
        var owner = _db.Session();
        await owner.RunAsync("CREATE TABLE t (id int)");
        var reader = _db.Session(SqlRoleKind.ReadOnly, "reader");
        await reader.FailsAsync("INSERT INTO t VALUES (1)", "42501");
        var writer = _db.Session(SqlRoleKind.ReadWrite, "writer");
        await writer.RunAsync("INSERT INTO t VALUES (1)");
        await writer.FailsAsync("CREATE TABLE u (id int)", "42501");
        Assert.Equal("1", await reader.ScalarAsync("SELECT count(*) FROM t"));
    }
}
