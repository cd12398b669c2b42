using Kdb.Testing;
using Kdb.Testing.Postgres;

namespace Kdb.Sql.Tests.Differential;

/// <summary>
/// int[], bigint[], smallint[] and text[] columns against PostgreSQL 15: literals, ARRAY[...], NULL elements,
/// = ANY(column), unnest of a column (in FROM and the select list), updates, and bad array input.
/// </summary>
[Collection(TestCollections.Postgres)]
public sealed class ArrayColumnTests(PostgresFixture server) : DiffCaseSuite(server, "arrc", Setup, AnswerQueries, ErrorQueries)
{
    private static readonly string[] Setup =
    [
        "CREATE TABLE arr (id int PRIMARY KEY, ints int[], tags text[], big bigint[], small smallint[])",
        "INSERT INTO arr VALUES (1, '{1,2,3}', '{a,b}', '{9000000000}', '{1}'), (2, ARRAY[4, NULL], ARRAY['x y', NULL, 'q\"r'], NULL, '{}'), (3, '{}', '{}', '{}', NULL)",
    ];

    private static readonly string[] AnswerQueries =
    [
        "SELECT id, ints, tags, big, small FROM arr ORDER BY id",
        "SELECT id FROM arr WHERE 2 = ANY(ints) ORDER BY id",
        "SELECT id FROM arr WHERE 'x y' = ANY(tags)",
        "SELECT id, unnest(ints) FROM arr ORDER BY id, 2",
        "SELECT a.id, t FROM arr a, unnest(a.tags) AS t ORDER BY 1, 2",
        "SELECT id, ints[1], tags[2] FROM arr ORDER BY id",
        "SELECT id, array_length(ints, 1), cardinality(tags) FROM arr ORDER BY id",
        "UPDATE arr SET ints = ARRAY[7, 8], tags = '{}' WHERE id = 3 RETURNING ints, tags",
        "UPDATE arr SET tags = ARRAY['c', NULL] WHERE id = 1 RETURNING tags",
        "SELECT a.id, t, o FROM arr a CROSS JOIN unnest(a.ints) WITH ORDINALITY AS u(t, o) ORDER BY 1, 3",
        "SELECT g, x FROM generate_series(1, 2) g, generate_series(g, 2) x ORDER BY 1, 2",
        "SELECT id FROM arr WHERE ints = '{7,8}'",
        "SELECT pg_typeof(ints)::text, pg_typeof(tags)::text, pg_typeof(big)::text FROM arr WHERE id = 1",
        "SELECT column_name, data_type::text, udt_name FROM information_schema.columns WHERE table_name = 'arr' ORDER BY ordinal_position",
        "INSERT INTO arr (id, ints) SELECT 10, array_agg(g) FROM generate_series(1, 3) g RETURNING ints",
        "DELETE FROM arr WHERE 8 = ANY(ints) RETURNING id",
        "SELECT count(*) FROM arr",
    ];

    private static readonly string[] ErrorQueries =
    [
        "INSERT INTO arr (id, ints) VALUES (20, '{1,a}')",
        "INSERT INTO arr (id, ints) VALUES (20, '{1,2')",
        "INSERT INTO arr (id, ints) VALUES (20, '1,2')",
        "INSERT INTO arr (id, ints) VALUES (20, '{99999999999}')",
        "INSERT INTO arr (id, ints) VALUES (20, ARRAY['a'])",
        "INSERT INTO arr (id, tags) VALUES (20, 5)",
    ];

    [Fact]
    public async Task ArrayKeys_AreRefusedClearly()
    {
        using var db = new SqlTestDatabase();
        var s = db.Session();
        await s.RunAsync("CREATE TABLE k (id int PRIMARY KEY, ints int[])");
        await s.FailsAsync("CREATE INDEX ON k (ints)", "0A000");
        await s.FailsAsync("CREATE TABLE k2 (ints int[] PRIMARY KEY)", "0A000");
        await s.RunAsync("INSERT INTO k VALUES (1, '{1,2}')");
        Assert.Equal("{1,2}", await s.ScalarAsync("SELECT ints FROM k"));
    }
}
