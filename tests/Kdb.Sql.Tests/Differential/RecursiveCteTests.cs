using Kdb.Testing;
using Kdb.Testing.Postgres;

namespace Kdb.Sql.Tests.Differential;

/// <summary>
/// WITH RECURSIVE against PostgreSQL 15: trees, graphs with cycles (UNION ends them), endless UNION ALL under
/// LIMIT, type rules between the two terms, and every malformed shape PostgreSQL rejects (exact SQLSTATE); also
/// how set operations type their NULL and string-literal columns.
/// </summary>
[Collection(TestCollections.Postgres)]
public sealed class RecursiveCteTests(PostgresFixture server) : DiffCaseSuite(server, "rec", Setup, AnswerQueries, ErrorQueries)
{
    private static readonly string[] Setup =
    [
        "CREATE TABLE node (id int PRIMARY KEY, parent int, name text NOT NULL)",
        "INSERT INTO node VALUES (1, NULL, 'root'), (2, 1, 'a'), (3, 1, 'b'), (4, 2, 'a1'), (5, 2, 'a2'), (6, 4, 'a1x'), (7, 3, 'b1')",
        "CREATE TABLE edge (src int NOT NULL, dst int NOT NULL, w numeric(6,2) NOT NULL, PRIMARY KEY (src, dst))",
        "INSERT INTO edge VALUES (1, 2, 1.50), (2, 3, 2.00), (3, 1, 0.25), (3, 4, 4.00), (4, 4, 1.00), (5, 6, 3.10)",
    ];

    /// <summary>Queries whose answers must equal PostgreSQL's (all ordered, so rows compare in sequence).</summary>
    private static readonly string[] AnswerQueries =
    [
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 10) SELECT n, n * n FROM t ORDER BY n",
        "WITH RECURSIVE t(n) AS (VALUES (1) UNION ALL SELECT n + 1 FROM t WHERE n < 5) SELECT sum(n), count(*) FROM t",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT n FROM t LIMIT 7",
        "WITH RECURSIVE t AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM t) SELECT * FROM t LIMIT 5",
        "WITH RECURSIVE sub AS (SELECT id, name, 0 AS depth, name AS path FROM node WHERE parent IS NULL UNION ALL SELECT c.id, c.name, s.depth + 1, s.path || '/' || c.name FROM node c JOIN sub s ON c.parent = s.id) SELECT id, depth, path FROM sub ORDER BY path",
        "WITH RECURSIVE up(id, parent, name) AS (SELECT id, parent, name FROM node WHERE id = 6 UNION ALL SELECT n.id, n.parent, n.name FROM up, node n WHERE n.id = up.parent) SELECT string_agg(name, ' <- ' ORDER BY id DESC) FROM up",
        "WITH RECURSIVE reach(id) AS (SELECT 1 UNION SELECT e.dst FROM edge e JOIN reach r ON e.src = r.id) SELECT id FROM reach ORDER BY id",
        "WITH RECURSIVE reach(id, hops) AS (SELECT 1, 0 UNION SELECT e.dst, r.hops + 1 FROM edge e JOIN reach r ON e.src = r.id WHERE r.hops < 6) SELECT id, min(hops), count(*) FROM reach GROUP BY id ORDER BY id",
        "WITH RECURSIVE walk(id, cost) AS (SELECT 1, 0.00::numeric(6,2) UNION ALL SELECT e.dst, (w.cost + e.w)::numeric(6,2) FROM edge e JOIN walk w ON e.src = w.id WHERE w.cost < 9) SELECT id, cost FROM walk ORDER BY cost, id",
        "WITH RECURSIVE t(n, s) AS (SELECT 1, 'x' UNION ALL SELECT n + 1, s || 'y' FROM t WHERE n < 4) SELECT n, s, length(s) FROM t ORDER BY n",
        "WITH RECURSIVE t(n) AS (SELECT 1::bigint UNION ALL SELECT n + 1 FROM t WHERE n < 3) SELECT n, pg_typeof(n)::text FROM t ORDER BY n",
        "WITH RECURSIVE t(n) AS (SELECT 3 UNION SELECT CASE WHEN n % 2 = 0 THEN n / 2 ELSE 3 * n + 1 END FROM t) SELECT n FROM t ORDER BY n",
        "WITH RECURSIVE a(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM a WHERE n < 3), b AS (SELECT n * 10 AS m FROM a) SELECT a.n, b.m FROM a JOIN b ON b.m = a.n * 10 ORDER BY 1",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 4) SELECT x.n, y.n FROM t x CROSS JOIN t y WHERE x.n < y.n ORDER BY 1, 2",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM (SELECT n FROM t) s WHERE n < 4) SELECT n FROM t ORDER BY n",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT t.n + 1 FROM t LEFT JOIN node ON node.id = t.n WHERE t.n < 9) SELECT n FROM t ORDER BY n",
        "WITH RECURSIVE t(n) AS (SELECT 10 UNION ALL SELECT n - 1 FROM t WHERE n > 0 AND n IN (SELECT id FROM node UNION SELECT 10 UNION SELECT 9 UNION SELECT 8)) SELECT n FROM t ORDER BY n",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3) SELECT (SELECT max(n) FROM t), EXISTS (SELECT 1 FROM t WHERE n = 2)",
        "WITH RECURSIVE t(n) AS (SELECT 5 UNION ALL SELECT n - 1 FROM t WHERE n > 1) SELECT n, row_number() OVER (ORDER BY n DESC) FROM t ORDER BY n",
        "WITH RECURSIVE plain AS (SELECT id FROM node WHERE id < 3) SELECT id FROM plain ORDER BY id",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 2) SELECT * FROM (WITH RECURSIVE u(m) AS (SELECT n FROM t UNION ALL SELECT m * 10 FROM u WHERE m < 100) SELECT m FROM u) q ORDER BY m",
        "WITH RECURSIVE t(n) AS (SELECT 1 WHERE false UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL (SELECT n + 1 FROM t WHERE n < 5 EXCEPT SELECT 3)) SELECT n FROM t ORDER BY n",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL (SELECT n + 1 FROM t WHERE n < 5 INTERSECT SELECT id FROM node)) SELECT n FROM t ORDER BY n",
        "WITH RECURSIVE t(a, b) AS (SELECT 1, NULL::int UNION SELECT a + 1, NULL FROM t WHERE a < 3) SELECT a, b FROM t ORDER BY a",
        "SELECT 1 UNION SELECT NULL ORDER BY 1",
        "SELECT NULL UNION SELECT NULL",
        "SELECT 'a' UNION ALL SELECT 'b' UNION ALL SELECT NULL ORDER BY 1",
        "SELECT 2.5 UNION SELECT NULL UNION SELECT 1 ORDER BY 1",
        "WITH RECURSIVE fib(a, b) AS (SELECT 0::numeric, 1::numeric UNION ALL SELECT b, a + b FROM fib WHERE a < 1000) SELECT a FROM fib ORDER BY a",
        "SELECT id, (WITH c AS (SELECT n.id * 2 AS x) SELECT x FROM c) FROM node n ORDER BY id",
        "SELECT id, (WITH RECURSIVE up(i, p) AS (SELECT n.id, n.parent UNION ALL SELECT node.id, node.parent FROM node JOIN up ON node.id = up.p) SELECT count(*) FROM up) AS depth FROM node n ORDER BY id",

        // Statements that write come last: the queries above read the setup data.
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3) INSERT INTO node SELECT n + 100, NULL, 'x' || n FROM t RETURNING id, parent, name",
        "INSERT INTO node SELECT 300, NULL, 'q' RETURNING id, parent, name",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3) UPDATE node SET name = 'z' || id WHERE id IN (SELECT n FROM t)",
        "WITH RECURSIVE t(n) AS (SELECT 102 UNION ALL SELECT n + 1 FROM t WHERE n < 103) DELETE FROM node WHERE id IN (SELECT n FROM t)",
        "SELECT id, parent, name FROM node ORDER BY id",
    ];

    /// <summary>Malformed recursive queries: PostgreSQL's SQLSTATE (and kdb must not hang or crash).</summary>
    private static readonly string[] ErrorQueries =
    [
        "WITH RECURSIVE t(n) AS (SELECT n FROM t) SELECT * FROM t",
        "WITH RECURSIVE t(n) AS (SELECT 1 INTERSECT SELECT n FROM t) SELECT * FROM t",
        "WITH RECURSIVE t(n) AS (SELECT n FROM t UNION ALL SELECT 1) SELECT * FROM t",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT a.n FROM t a, t b) SELECT * FROM t",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM node WHERE id IN (SELECT n FROM t)) SELECT * FROM t",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT node.id FROM node LEFT JOIN t ON t.n = node.id) SELECT * FROM t",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT t.n FROM t FULL JOIN node ON t.n = node.id) SELECT * FROM t",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL (SELECT 2 EXCEPT SELECT n FROM t)) SELECT * FROM t",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL (SELECT n FROM t INTERSECT ALL SELECT 1)) SELECT * FROM t",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT count(*) FROM t) SELECT * FROM t",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t ORDER BY 1) SELECT * FROM t",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t LIMIT 3) SELECT * FROM t",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1.5 FROM t WHERE n < 3) SELECT * FROM t",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT (n + 1)::bigint FROM t WHERE n < 3) SELECT * FROM t",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n, n FROM t) SELECT * FROM t",
        "WITH RECURSIVE t(n) AS (SELECT 'a'::text UNION ALL SELECT 1 FROM t) SELECT * FROM t",
        "WITH RECURSIVE t(n, m) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3) SELECT * FROM t",
        "SELECT 1 UNION SELECT 'a'",
    ];

    [Fact]
    public async Task EndlessUnionAll_WithoutLimit_StopsAtTheMemoryLimit()
    {
        using var db = new SqlTestDatabase();
        var session = db.Session();
        await session.RunAsync("SET statement_timeout = '20s'");
        var e = await Assert.ThrowsAsync<SqlException>(() => session.ExecuteAsync("WITH RECURSIVE t(n, pad) AS (SELECT 1, repeat('x', 1000) UNION ALL SELECT n + 1, pad FROM t) SELECT count(*) FROM t").AsTask());
        Assert.Contains(e.SqlState, new[] { "53200", "57014" });
        Assert.Equal("1", await session.ScalarAsync("SELECT 1"));
    }

    [Fact]
    public async Task Explain_ShowsTheRecursiveUnion()
    {
        using var db = new SqlTestDatabase();
        var session = db.Session();
        var plan = string.Join("\n", (await session.QueryAsync("EXPLAIN WITH RECURSIVE t(n) AS (SELECT 1 UNION SELECT n + 1 FROM t WHERE n < 3) SELECT n FROM t")).Select(r => r[0]));
        Assert.Contains("Recursive Union (distinct)", plan);
        Assert.Contains("WorkTable Scan on t", plan);
        Assert.Contains("CTE Scan on t", plan);
    }
}
