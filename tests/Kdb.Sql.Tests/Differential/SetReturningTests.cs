using Kdb.Testing;
using Kdb.Testing.Postgres;

namespace Kdb.Sql.Tests.Differential;

/// <summary>
/// Set-returning functions in the select list (PostgreSQL's ProjectSet: lockstep, NULL padding, nesting, after
/// aggregation) and generate_series over int, bigint, numeric, timestamp and timestamptz, against PostgreSQL 15.
/// </summary>
[Collection(TestCollections.Postgres)]
public sealed class SetReturningTests(PostgresFixture server) : DiffCaseSuite(server, "srf", Setup, AnswerQueries, ErrorQueries)
{
    private static readonly string[] Setup =
    [
        "SET TimeZone = 'UTC'",
        "CREATE TABLE s (id int PRIMARY KEY, n int, tag text, lo bigint)",
        "INSERT INTO s VALUES (1, 3, 'a', 9000000000), (2, 0, NULL, 1), (3, NULL, 'b', -2), (4, 1, 'z', 5)",
    ];

    private static readonly string[] AnswerQueries =
    [
        "SELECT generate_series(1, 3)",
        "SELECT generate_series(1, 10, 3), generate_series(5, 1, -2)",
        "SELECT generate_series(3, 1)",
        "SELECT generate_series(1, 3) + 1 AS x, 'k' AS y",
        "SELECT generate_series(1, 3), unnest(ARRAY['a', 'b'])",
        "SELECT unnest(ARRAY[1, 2]), unnest(ARRAY['a', 'b', 'c'])",
        "SELECT id, generate_series(1, n) FROM s ORDER BY id, 2",
        "SELECT id, unnest(CASE WHEN n = 0 THEN ARRAY[]::text[] WHEN n IS NULL THEN NULL ELSE ARRAY[tag, NULL, tag || tag] END) FROM s ORDER BY id",
        "SELECT id, unnest(ARRAY[tag, tag]), generate_series(1, n) FROM s ORDER BY id, 3",
        "SELECT id, generate_series(lo, lo + 2) FROM s WHERE id <> 2 ORDER BY id, 2",
        "SELECT generate_series(1, generate_series(1, 3))",
        "SELECT generate_series(1, 2), generate_series(1, generate_series(1, 2))",
        "SELECT generate_series(1, 3), generate_series(1, generate_series(1, 2)) * 10, unnest(ARRAY[generate_series(5, 6)])",
        "SELECT count(*), generate_series(1, count(*)::int) FROM s",
        "SELECT n, count(*), generate_series(1, 2) FROM s GROUP BY n ORDER BY n NULLS FIRST, 3",
        "SELECT id, row_number() OVER (ORDER BY id), generate_series(1, 2) FROM s ORDER BY id, 3",
        "SELECT DISTINCT unnest(ARRAY[2, 1, 2, NULL]) ORDER BY 1",
        "SELECT 1 ORDER BY generate_series(1, 3)",
        "SELECT generate_series(1, 5) AS g ORDER BY g DESC LIMIT 2",
        "SELECT sum(g), max(g) FROM (SELECT generate_series(1, 100) AS g) q",
        "SELECT generate_series(1, 2) FROM generate_series(1, 0) z",
        "SELECT x, generate_series(1, x) FROM generate_series(1, 3) x ORDER BY 1, 2",
        "SELECT (SELECT count(*) FROM (SELECT generate_series(1, s.id)) q) FROM s ORDER BY id",
        "SELECT generate_series(1.5, 3), generate_series(1::bigint, 2)",
        "SELECT generate_series(0.1, 0.5, 0.15)",
        "SELECT pg_typeof(generate_series(1, 2))::text, pg_typeof(generate_series(1::int8, 2))::text, pg_typeof(generate_series(1.0, 2))::text",
        "SELECT generate_series(2147483646, 2147483647)",
        "SELECT generate_series(9223372036854775806, 9223372036854775807)",
        "SELECT generate_series('2024-01-01'::timestamp, '2024-01-02', '12 hours')",
        "SELECT generate_series('2024-01-31'::timestamp, '2024-05-01', '1 month')",
        "SELECT generate_series('2024-01-02 00:00+00'::timestamptz, '2024-01-01 00:00+00', '-8 hours')",
        "SELECT g::date FROM generate_series('2024-02-27'::timestamp, '2024-03-02', '1 day') g",
        "SELECT g, o FROM generate_series(10, 30, 10) WITH ORDINALITY AS t(g, o)",
        "SELECT generate_series(1, NULL::int)",
        "SELECT count(*) FROM (SELECT unnest(ARRAY[tag, 'x']) FROM s) q",
        "SELECT u FROM (SELECT unnest(ARRAY[tag, 'x']) AS u FROM s) q WHERE u IS NOT NULL ORDER BY u",
        "SELECT generate_series(1, 3) AS g, count(*) FROM s GROUP BY g ORDER BY g",
        "SELECT generate_series(1, n) AS g, count(*), max(id) FROM s GROUP BY 1 ORDER BY 1",
        "SELECT count(*) FROM s GROUP BY generate_series(1, 2)",
        "SELECT unnest(ARRAY[tag, 'x']) AS u, count(*), sum(id) FROM s GROUP BY u ORDER BY u NULLS FIRST",
        "SELECT n, generate_series(1, 2) AS g, count(*) FROM s GROUP BY n, g ORDER BY 1 NULLS FIRST, 2",
        "SELECT generate_series(1, 2) + 1 AS g, count(*) FROM s WHERE id > 1 GROUP BY 1 HAVING count(*) > 1 ORDER BY 1",
        "SELECT id, count(*) OVER (PARTITION BY generate_series(1, 2)) FROM s ORDER BY 1, 2",
        "SELECT generate_series(1, 2) AS g, count(*) OVER (PARTITION BY generate_series(1, 2)) FROM s ORDER BY 1, 2",
        "SELECT id, row_number() OVER (ORDER BY generate_series(1, 2), id) FROM s ORDER BY 2",
        "SELECT id, rank() OVER w FROM s WINDOW w AS (PARTITION BY generate_series(1, n)) ORDER BY 1, 2",
        "SELECT generate_series(1, 3) AS g, sum(id) OVER (PARTITION BY generate_series(1, 2)) FROM s ORDER BY 1, 2",
        "SELECT n, count(*) OVER (PARTITION BY generate_series(1, 2)) FROM s GROUP BY n ORDER BY 1 NULLS FIRST, 2",
        "INSERT INTO s SELECT g, g, NULL, g FROM generate_series(10, 12) g RETURNING id",
        "INSERT INTO s (id, n) SELECT generate_series(20, 22), 7 RETURNING id, n",
        "SELECT count(*), sum(id) FROM s",
    ];

    private static readonly string[] ErrorQueries =
    [
        "SELECT 1 WHERE generate_series(1, 2) > 0",
        "SELECT count(generate_series(1, 3))",
        "SELECT CASE WHEN true THEN generate_series(1, 2) END",
        "SELECT coalesce(generate_series(1, 2), 0)",
        "SELECT sum(generate_series(1, 2)) OVER ()",
        "SELECT 1 FROM s LIMIT generate_series(1, 2)",
        "SELECT 1 FROM s HAVING generate_series(1, 2) > 1",
        "UPDATE s SET n = generate_series(1, 2)",
        "SELECT * FROM s WHERE id IN (unnest(ARRAY[1]))",
        "SELECT generate_series(1, 3, 0)",
        "SELECT generate_series(1.0, 3, 0)",
        "SELECT generate_series('2024-01-01'::timestamp, '2024-01-02', '0 s')",
        "SELECT generate_series(1, 3, 'a')",
        "SELECT generate_series('2024-01-01'::timestamp, '2024-01-02')",
        "SELECT generate_series(1)",
        "SELECT generate_series(1, 2, 3, 4)",
        "SELECT unnest(1)",
        "SELECT unnest()",
        "SELECT * FROM generate_series(1, 3, 0)",
        "SELECT generate_series(1, 2147483648::bigint)::int FROM s WHERE false UNION ALL SELECT 2147483648::bigint::int",
    ];

    [Fact]
    public async Task Explain_ShowsProjectSet_AndLargeSeriesStreams()
    {
        using var db = new SqlTestDatabase();
        var session = db.Session();
        var plan = string.Join("\n", (await session.QueryAsync("EXPLAIN SELECT generate_series(1, 3), unnest(ARRAY[1])")).Select(r => r[0]));
        Assert.Contains("ProjectSet", plan);
        Assert.Equal("1000000", await session.ScalarAsync("SELECT count(*) FROM (SELECT generate_series(1, 1000000)) q"));
        Assert.Equal("3", await session.ScalarAsync("SELECT generate_series(1, 1000000000) LIMIT 3 OFFSET 2"));
    }
}
