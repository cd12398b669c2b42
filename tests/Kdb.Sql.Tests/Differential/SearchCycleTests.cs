using Kdb.Testing;
using Kdb.Testing.Postgres;

namespace Kdb.Sql.Tests.Differential;

/// <summary>
/// SEARCH DEPTH/BREADTH FIRST and CYCLE of WITH RECURSIVE against PostgreSQL 15: orderings, the added columns' text
/// and types, cycle marks of other types, both clauses together, and the misuses PostgreSQL rejects.
/// </summary>
[Collection(TestCollections.Postgres)]
public sealed class SearchCycleTests(PostgresFixture server) : DiffCaseSuite(server, "srchcyc", Setup, AnswerQueries, ErrorQueries)
{
    private const string Tree = "WITH RECURSIVE sub(id, name) AS (SELECT id, name FROM node WHERE parent IS NULL UNION ALL SELECT n.id, n.name FROM node n JOIN sub s ON n.parent = s.id) ";
    private const string Walk = "WITH RECURSIVE g(src, dst) AS (SELECT src, dst FROM edge WHERE src = 1 UNION ALL SELECT e.src, e.dst FROM edge e JOIN g ON e.src = g.dst) ";

    private static readonly string[] Setup =
    [
        "CREATE TABLE node (id int PRIMARY KEY, parent int, name text NOT NULL)",
        "INSERT INTO node VALUES (1, NULL, 'root'), (2, 1, 'b'), (3, 1, 'a'), (4, 2, 'a 1'), (5, 2, 'x,y'), (6, 4, 'q\"t'), (7, 3, 'b1')",
        "CREATE TABLE edge (src int NOT NULL, dst int NOT NULL, PRIMARY KEY (src, dst))",
        "INSERT INTO edge VALUES (1, 2), (2, 3), (3, 1), (3, 4), (4, 4), (5, 6)",
    ];

    private static readonly string[] AnswerQueries =
    [
        Tree + "SEARCH DEPTH FIRST BY id SET ord SELECT id, name FROM sub ORDER BY ord",
        Tree + "SEARCH BREADTH FIRST BY id SET ord SELECT id, name FROM sub ORDER BY ord",
        Tree + "SEARCH DEPTH FIRST BY id SET ord SELECT id, ord::text FROM sub ORDER BY ord",
        Tree + "SEARCH BREADTH FIRST BY id SET ord SELECT id, ord::text FROM sub ORDER BY ord",
        Tree + "SEARCH DEPTH FIRST BY name, id SET ord SELECT id, ord::text FROM sub ORDER BY ord",
        Tree + "SEARCH DEPTH FIRST BY name SET ord SELECT pg_typeof(ord)::text, count(*) FROM sub GROUP BY 1",
        Tree + "SEARCH BREADTH FIRST BY name SET ord SELECT pg_typeof(ord)::text, count(*) FROM sub GROUP BY 1",
        Walk + "CYCLE src SET is_cycle USING path SELECT src, dst, is_cycle, path::text FROM g ORDER BY path, dst",
        Walk + "CYCLE src, dst SET is_cycle USING path SELECT src, dst, is_cycle FROM g ORDER BY path",
        Walk + "CYCLE dst SET seen TO 'Y' DEFAULT 'N' USING trail SELECT src, dst, seen, trail::text FROM g ORDER BY trail",
        Walk + "CYCLE dst SET seen TO 1 DEFAULT 0 USING trail SELECT src, dst, seen, pg_typeof(seen)::text FROM g ORDER BY trail",
        Walk + "CYCLE src SET is_cycle USING path SELECT count(*) FILTER (WHERE NOT is_cycle), count(*) FROM g",
        Walk + "SEARCH DEPTH FIRST BY dst SET ord CYCLE dst SET is_cycle USING path SELECT src, dst, is_cycle, ord::text FROM g ORDER BY ord",
        Walk + "SEARCH BREADTH FIRST BY dst SET ord CYCLE dst SET is_cycle USING path SELECT src, dst, is_cycle FROM g ORDER BY ord",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION SELECT n % 3 + 1 FROM t) CYCLE n SET c USING p SELECT n, c, p::text FROM t ORDER BY p",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 4) SEARCH BREADTH FIRST BY n SET o SELECT n, o::text FROM t ORDER BY o DESC",
        "WITH RECURSIVE t(n) AS (VALUES (1) UNION ALL SELECT n + 1 FROM t WHERE n < 3) SEARCH DEPTH FIRST BY n SET ord SELECT n, ord::text FROM t ORDER BY ord",

        // Rows with NULL fields: the path is compared with record equality, where NULL fields match each other.
        "WITH RECURSIVE t(n, m) AS (SELECT 1, NULL::int UNION ALL SELECT n, m FROM t WHERE n < 3) CYCLE n, m SET c USING p SELECT n, m, c, p::text FROM t",
        "WITH RECURSIVE t(n) AS (SELECT NULL::int UNION ALL SELECT n FROM t) CYCLE n SET c USING p SELECT n, c, p::text FROM t",
        "WITH RECURSIVE t(n, m) AS (SELECT 1, NULL::int UNION ALL SELECT n + 1, CASE WHEN n = 1 THEN 7 END FROM t WHERE n < 4) CYCLE m SET c USING p SELECT n, m, c, p::text FROM t",
        "WITH RECURSIVE t(n, m) AS (SELECT 1, 1.0 UNION ALL SELECT n, m * 1.00 FROM t WHERE n < 3) CYCLE m SET c USING p SELECT n, m, c FROM t",
    ];

    private static readonly string[] ErrorQueries =
    [
        Tree + "SEARCH DEPTH FIRST BY nope SET ord SELECT * FROM sub",
        Tree + "SEARCH DEPTH FIRST BY id SET name SELECT * FROM sub",
        Tree + "SEARCH DEPTH FIRST BY id, id SET ord SELECT * FROM sub",
        Walk + "CYCLE src SET p USING p SELECT * FROM g",
        Walk + "CYCLE nope SET c USING p SELECT * FROM g",
        Walk + "SEARCH DEPTH FIRST BY src SET c CYCLE src SET c USING p SELECT * FROM g",
        "WITH RECURSIVE t AS (SELECT 1 AS n) SEARCH DEPTH FIRST BY n SET ord SELECT * FROM t",
        "WITH RECURSIVE t(n) AS ((SELECT 1 UNION SELECT 2) UNION ALL SELECT n + 1 FROM t WHERE n < 3) SEARCH DEPTH FIRST BY n SET ord SELECT * FROM t",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL (SELECT n + 1 FROM t WHERE n < 3 UNION ALL SELECT 5)) CYCLE n SET c USING p SELECT * FROM t",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3) CYCLE n SET c TO 1 DEFAULT 'x' USING p SELECT * FROM t",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3) SEARCH DEPTH FIRST n SET ord SELECT * FROM t",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3) CYCLE n SET c USING SELECT * FROM t",

        // An added column named like an existing one: 42702 where the recursive term reads that name, else 42601.
        Walk + "CYCLE src SET dst USING path SELECT * FROM g",
        "WITH RECURSIVE g(src, dst) AS (SELECT src, dst FROM edge WHERE src = 1 UNION ALL SELECT e.src, e.dst FROM edge e JOIN g ON e.src = g.src) CYCLE src SET dst USING path SELECT * FROM g",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n FROM t WHERE n < 3) CYCLE n SET n USING p SELECT * FROM t",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n FROM t WHERE n < 3) CYCLE n SET c USING n SELECT * FROM t",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n FROM t WHERE n < 3) SEARCH DEPTH FIRST BY n SET n SELECT * FROM t",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n FROM t WHERE n < 3) CYCLE n SET c USING c SELECT * FROM t",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT 2 FROM t WHERE false) CYCLE n SET c USING c SELECT * FROM t",
    ];
}
