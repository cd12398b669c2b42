using Kdb.Testing;
using Kdb.Testing.Postgres;

namespace Kdb.Sql.Tests.Differential;

/// <summary>
/// Partial indexes (CREATE [UNIQUE] INDEX ... WHERE) against PostgreSQL 15: a unique partial index enforces
/// uniqueness only over its rows, through inserts, updates moving rows in and out, ON CONFLICT and index builds;
/// bad predicates get PostgreSQL's SQLSTATEs; the planner uses the index only when the query implies its WHERE.
/// </summary>
[Collection(TestCollections.Postgres)]
public sealed class PartialIndexTests(PostgresFixture server) : DiffCaseSuite(server, "pidx", Setup, AnswerQueries, ErrorQueries)
{
    private static readonly string[] Setup =
    [
        "CREATE TABLE u (id int PRIMARY KEY, email text, deleted boolean NOT NULL DEFAULT false, n int)",
        "CREATE UNIQUE INDEX u_email_live ON u (email) WHERE NOT deleted",
        "INSERT INTO u VALUES (1, 'a', false, 1), (2, 'a', true, 2), (3, 'b', true, 3)",
    ];

    private static readonly string[] AnswerQueries =
    [
        "INSERT INTO u VALUES (4, 'a', true, 4)",
        "UPDATE u SET deleted = true WHERE id = 1",
        "UPDATE u SET deleted = false WHERE id = 2",
        "SELECT id FROM u WHERE email = 'a' AND NOT deleted",
        "SELECT id FROM u WHERE email = 'a' ORDER BY id",
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'u_email_live'",
        "INSERT INTO u VALUES (5, 'a', false, 5) ON CONFLICT DO NOTHING",
        "INSERT INTO u VALUES (6, 'c', false, 6) ON CONFLICT DO NOTHING RETURNING id",
        "UPDATE u SET email = 'c' WHERE id = 4",
        "DELETE FROM u WHERE id = 2",
        "INSERT INTO u VALUES (2, 'a', false, 2)",
        "SELECT id, email, deleted FROM u WHERE NOT deleted AND email = 'a'",
        "CREATE UNIQUE INDEX u_n_pos ON u (n) WHERE n > 2 AND email IS NOT NULL",
        "INSERT INTO u VALUES (7, 'z', false, 1), (8, 'y', false, 1)",
        "INSERT INTO u VALUES (9, NULL, false, 3)",
        "SELECT count(*) FROM u WHERE n > 2 AND email IS NOT NULL",
        "CREATE INDEX u_n_small ON u (n) WHERE n < 3",
        "SELECT id FROM u WHERE n < 3 AND n = 1 ORDER BY id",
        "SELECT id FROM u WHERE n = 1 ORDER BY id",
        "DROP INDEX u_n_small",
        "TRUNCATE u",
        "INSERT INTO u VALUES (1, 'a', false, 1), (2, 'a', true, 2)",
        "SELECT count(*) FROM u",
    ];

    private static readonly string[] ErrorQueries =
    [
        "INSERT INTO u VALUES (5, 'b', false, 5), (6, 'b', false, 6)",
        "UPDATE u SET deleted = false WHERE id = 2",
        "CREATE INDEX ON u (n) WHERE n > (SELECT 1)",
        "CREATE INDEX ON u (n) WHERE random() > 0.5",
        "CREATE INDEX ON u (n) WHERE count(*) > 1",
        "CREATE INDEX ON u (n) WHERE nosuch > 1",
        "CREATE INDEX ON u (n) WHERE n",
        "CREATE UNIQUE INDEX u_bad ON u (email) WHERE deleted OR email = 'a'",
        "CREATE UNIQUE INDEX u_d ON u (deleted) WHERE id > 0",
        "CREATE TABLE child (r text REFERENCES u (email))",
        "CREATE INDEX ON u (n) WHERE",
    ];

    [Fact]
    public async Task Planner_UsesAPartialIndex_OnlyWhenTheQueryImpliesItsWhere()
    {
        using var db = new SqlTestDatabase();
        var s = db.Session();
        foreach (var sql in Setup)
        {
            await s.RunAsync(sql);
        }

        async Task<string> PlanAsync(string sql) => string.Join("\n", (await s.QueryAsync("EXPLAIN " + sql)).Select(r => r[0]));
        Assert.Contains("Index Scan using u_email_live", await PlanAsync("SELECT id FROM u WHERE email = 'a' AND NOT deleted"));
        Assert.Contains("Index Scan using u_email_live", await PlanAsync("SELECT id FROM u WHERE NOT u.deleted AND u.email = 'a' AND id > 0"));
        Assert.DoesNotContain("u_email_live", await PlanAsync("SELECT id FROM u WHERE email = 'a'"));
        Assert.DoesNotContain("u_email_live", await PlanAsync("SELECT id FROM u WHERE email = 'a' AND deleted"));

        // The rows found through the index are the same as a scan finds.
        Assert.Equal("1", await s.ScalarAsync("SELECT id FROM u WHERE email = 'a' AND NOT deleted"));
        Assert.Equal("2", await s.ScalarAsync("SELECT count(*) FROM u WHERE email = 'a'"));
    }
}
