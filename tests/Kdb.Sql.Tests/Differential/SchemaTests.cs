using Kdb.Testing;
using Kdb.Testing.Postgres;

namespace Kdb.Sql.Tests.Differential;

/// <summary>
/// Schemas other than public against PostgreSQL 15: CREATE/DROP SCHEMA [CASCADE], qualified names, search_path and
/// current_schema(), objects of the same name in two schemas, and pg_namespace / information_schema reflecting them.
/// </summary>
[Collection(TestCollections.Postgres)]
public sealed class SchemaTests(PostgresFixture server) : DiffCaseSuite(server, "sch", Setup, AnswerQueries, ErrorQueries)
{
    private static readonly string[] Setup =
    [
        "CREATE SCHEMA s",
        "CREATE TABLE s.t (id serial PRIMARY KEY, v text)",
        "CREATE TABLE t (id int PRIMARY KEY, w int)",
        "INSERT INTO s.t (v) VALUES ('a'), ('b')",
        "INSERT INTO t VALUES (1, 10)",
    ];

    /// <summary>Run in order on one session: the SETs carry over.</summary>
    private static readonly string[] AnswerQueries =
    [
        "SELECT * FROM s.t ORDER BY id",
        "SELECT * FROM t",
        "SELECT current_schema(), current_schemas(true)::text[], current_schemas(false)::text[]",
        "SET search_path TO s, public",
        "SHOW search_path",
        "SELECT current_schema(), current_schemas(true)::text[], current_schemas(false)::text[]",
        "SELECT * FROM t ORDER BY id",
        "INSERT INTO t (v) VALUES ('c') RETURNING id, v",
        "SELECT p.w, t.v FROM public.t p JOIN t ON t.id = p.id",
        "SELECT 't'::regclass::text, 'public.t'::regclass::text, 's.t'::regclass::oid > 0",
        "SELECT c.relname, n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname IN ('t', 't_pkey', 't_id_seq') ORDER BY 2, 1",
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_name = 't' ORDER BY 1",
        "SELECT schema_name FROM information_schema.schemata WHERE schema_name IN ('s', 'public') ORDER BY 1",
        "SELECT schemaname, tablename FROM pg_tables WHERE tablename = 't' ORDER BY 1",
        "SELECT n.nspname, c.relname, pg_table_is_visible(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 't' ORDER BY 1",
        "SET search_path = public",
        "SELECT * FROM t",
        "SELECT n.nspname, pg_table_is_visible(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 't' ORDER BY 1",
        "CREATE SCHEMA IF NOT EXISTS s",
        "CREATE INDEX ON s.t (v)",
        "SELECT schemaname, indexname FROM pg_indexes WHERE tablename = 't' ORDER BY 1, 2",
        "CREATE VIEW s.v AS SELECT v FROM s.t",
        "SELECT * FROM s.v ORDER BY 1",
        "CREATE SEQUENCE s.q START 5",
        "SELECT nextval('s.q'), nextval('s.q')",
        "ALTER TABLE s.t ADD COLUMN extra int DEFAULT 7",
        "UPDATE s.t SET extra = id * 2 WHERE id > 1 RETURNING id, extra",
        "DELETE FROM s.t WHERE id = 1 RETURNING v",
        "SELECT count(*) FROM s.t",
        "DROP SCHEMA IF EXISTS nosuch",
        "DROP SCHEMA s CASCADE",
        "SELECT count(*) FROM pg_namespace WHERE nspname = 's'",
        "SELECT count(*) FROM pg_class WHERE relname IN ('v', 'q', 't_id_seq')",
        "SELECT * FROM t",
        "SET search_path = nosuch",
        "SELECT current_schema() IS NULL, current_schemas(false)::text[]",
        "SELECT w FROM public.t",
        "SET search_path = \"$user\", public",
        "SELECT current_schema()",
        "CREATE SCHEMA a",
        "CREATE SCHEMA b",
        "CREATE TABLE a.x (n int)",
        "CREATE TABLE b.x (n int)",
        "INSERT INTO a.x VALUES (1)",
        "INSERT INTO b.x VALUES (2)",
        "SET search_path = b, a",
        "SELECT n FROM x",
        "SELECT x.n FROM a.x",
        "SELECT a.x.n FROM a.x",
        "SET search_path = a, b",
        "SELECT n FROM x",
        "PREPARE p AS SELECT n FROM x",
        "EXECUTE p",
        "SET search_path = b",
        "EXECUTE p",
        "TRUNCATE a.x",
        "SELECT count(*) FROM a.x",
        "CREATE TABLE a.y (id int PRIMARY KEY)",
        "CREATE TABLE b.y (id int PRIMARY KEY, r int REFERENCES a.y)",
        "INSERT INTO a.y VALUES (1)",
        "INSERT INTO b.y VALUES (1, 1)",
        "CREATE TABLE public.y (id int PRIMARY KEY, r int REFERENCES public.y)",
        "SET search_path = a",
        "CREATE TABLE z (id int PRIMARY KEY, r int REFERENCES z)",
        "INSERT INTO z VALUES (1, NULL), (2, 1)",
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname LIKE 'z%' ORDER BY 1, 2",
        "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 'y' ORDER BY 1",
        "DROP TABLE a.x, b.x",
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'x'",
        "DROP SCHEMA IF EXISTS nosuch, a CASCADE",
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'a'",
        "SET search_path = \"$user\", public",
        "SELECT count(*) FROM y",
        "BEGIN",
        "CREATE SCHEMA tx",
        "CREATE TABLE tx.r (a int)",
        "ROLLBACK",
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'tx'",
    ];

    private static readonly string[] ErrorQueries =
    [
        "CREATE SCHEMA s",
        "CREATE SCHEMA pg_x",
        "CREATE TABLE nosuch.x (a int)",
        "SELECT * FROM nosuch.x",
        "SELECT * FROM s.nosuch",
        "INSERT INTO s.nosuch VALUES (1)",
        "DROP SCHEMA s",
        "DROP SCHEMA nosuch",
        "DROP SCHEMA public, nosuch",
        "DROP SCHEMA public",
        "DROP TABLE s.nosuch",
        "CREATE TABLE s.t (a int)",
        "SELECT 's.nosuch'::regclass",
        "SELECT * FROM t WHERE v = 'a'",
        "CREATE TABLE pg_catalog.x (a int)",
    ];

    [Fact]
    public async Task SchemasOfOneTenant_AreInvisibleToAnother()
    {
        using var db = new SqlTestDatabase();
        var other = new Sessions.SqlDatabase(db.Store, 43, "otherdb");
        var mine = db.Session();
        var theirs = other.OpenSession("owner", Sessions.SqlRoleKind.Owner);
        await mine.RunAsync("CREATE SCHEMA secret");
        await mine.RunAsync("CREATE TABLE secret.k (a int)");
        await mine.RunAsync("INSERT INTO secret.k VALUES (1)");
        Assert.Equal("0", await theirs.ScalarAsync("SELECT count(*) FROM pg_namespace WHERE nspname = 'secret'"));
        Assert.Equal("0", await theirs.ScalarAsync("SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'secret'"));
        await theirs.FailsAsync("SELECT * FROM secret.k", "42P01");
        await theirs.FailsAsync("CREATE TABLE secret.k (a int)", "3F000");

        // The same names in the other tenant are its own objects.
        await theirs.RunAsync("CREATE SCHEMA secret");
        await theirs.RunAsync("CREATE TABLE secret.k (a int)");
        Assert.Equal("0", await theirs.ScalarAsync("SELECT count(*) FROM secret.k"));
        Assert.Equal("1", await mine.ScalarAsync("SELECT count(*) FROM secret.k"));
    }

    [Fact]
    public async Task ReadOnlyRole_CannotCreateOrDropSchemas()
    {
        using var db = new SqlTestDatabase();
        await db.Session().RunAsync("CREATE SCHEMA s");
        var reader = db.Session(Sessions.SqlRoleKind.ReadOnly, "reader");
        await reader.FailsAsync("CREATE SCHEMA r", "42501");
        await reader.FailsAsync("DROP SCHEMA s", "42501");
    }
}
