using Kdb.Testing;
using Kdb.Testing.Postgres;

namespace Kdb.Sql.Tests.Differential;

/// <summary>
/// Views against PostgreSQL 15: a view keeps the columns and tables it was created over (a later ADD COLUMN or
/// search_path change does not alter it), what it reads cannot be dropped without CASCADE (2BP01), CASCADE drops the
/// views, and CREATE OR REPLACE VIEW only appends columns (42P16).
/// </summary>
[Collection(TestCollections.Postgres)]
public sealed class ViewTests(PostgresFixture server) : DiffCaseSuite(server, "views", Setup, AnswerQueries, ErrorQueries)
{
    private static readonly string[] Setup =
    [
        "CREATE TABLE t (a int PRIMARY KEY, b text, c int)",
        "INSERT INTO t VALUES (1, 'x', 10), (2, 'y', 20)",
        "CREATE VIEW v AS SELECT * FROM t",
        "CREATE VIEW w AS SELECT a, b FROM v WHERE a > 1",
        "CREATE VIEW only_a AS SELECT a FROM t",
        "CREATE SCHEMA s",
        "CREATE TABLE s.t (z int)",
        "INSERT INTO s.t VALUES (99)",
        "CREATE TABLE u (k int)",
        "CREATE VIEW on_u AS SELECT k FROM u",
    ];

    /// <summary>Run in order on one session.</summary>
    private static readonly string[] AnswerQueries =
    [
        "SELECT * FROM v ORDER BY a",
        "SELECT * FROM w",
        "ALTER TABLE t ADD COLUMN d int DEFAULT 5",
        "SELECT * FROM v ORDER BY a",
        "SELECT v.* FROM v JOIN t USING (a) ORDER BY 1",
        "SELECT * FROM t ORDER BY a",
        "SET search_path = s, public",
        "SELECT * FROM only_a ORDER BY a",
        "SELECT * FROM t",
        "SET search_path = \"$user\", public",
        "SELECT 't'::regclass, 's.t'::regclass, 'only_a'::regclass, 't_pkey'::regclass",
        "SELECT c.oid::regclass FROM pg_class c WHERE c.relname = 't' ORDER BY c.oid",
        "SELECT c.oid::regclass, c.relname FROM pg_class c WHERE c.relname IN ('v', 'w') ORDER BY 2",
        "SELECT 'integer'::regtype, 'text'::regtype, pg_typeof(1), pg_typeof(1.5)",
        "SELECT n.oid::regnamespace FROM pg_namespace n WHERE n.nspname = 's'",
        "SELECT ('t'::regclass)::oid = (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 't' AND n.nspname = 'public')",
        "ALTER TABLE t DROP COLUMN d",
        "CREATE OR REPLACE VIEW only_a AS SELECT a, b FROM t",
        "SELECT * FROM only_a ORDER BY a",
        "DROP VIEW on_u",
        "DROP VIEW IF EXISTS on_u",
        "DROP TABLE u",
        "DROP VIEW w, v",
        "CREATE VIEW v AS SELECT * FROM t",
        "CREATE VIEW w AS SELECT a, b FROM v WHERE a > 1",
        "ALTER TABLE t DROP COLUMN c CASCADE",
        "SELECT relname FROM pg_class WHERE relname IN ('v', 'w', 'only_a') ORDER BY 1",
        "SELECT * FROM t ORDER BY a",
        "DROP TABLE t CASCADE",
        "SELECT count(*) FROM pg_class WHERE relname IN ('t', 'only_a')",
        "CREATE TABLE t2 (x int)",
        "CREATE VIEW v2 AS SELECT x FROM t2",
        "CREATE VIEW v3 AS SELECT x FROM v2",
        "DROP VIEW v2 CASCADE",
        "SELECT count(*) FROM pg_class WHERE relname IN ('v2', 'v3')",
    ];

    private static readonly string[] ErrorQueries =
    [
        "DROP TABLE t",
        "DROP VIEW v",
        "ALTER TABLE t DROP COLUMN b",
        "ALTER TABLE t DROP COLUMN c",
        "ALTER TABLE t ALTER COLUMN c TYPE bigint",
        "CREATE OR REPLACE VIEW only_a AS SELECT b FROM t",
        "CREATE OR REPLACE VIEW only_a AS SELECT a::bigint AS a FROM t",
        "CREATE OR REPLACE VIEW w AS SELECT a FROM v",
        "CREATE VIEW bad (x, y) AS SELECT 1",
        "CREATE VIEW v AS SELECT 1",
        "DROP SCHEMA s",
        "DROP TABLE u",
        "SELECT 'nosuch'::regclass",
        "SELECT * FROM nosuch_view",
    ];
}
