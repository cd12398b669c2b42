using Kdb.Testing.Postgres;

namespace Kdb.Sql.Tests.Differential;

/// <summary>Runs a fixed list of statements on kdb and on PostgreSQL 15 after the same setup, and compares.</summary>
internal static class DiffCases
{
    public static async Task RunAllAsync(PostgresFixture server, string name, string[] setup, string[] queries, Action<string, DiffOutcome, DiffOutcome> check)
    {
        await using var pgDatabase = await server.CreateDatabaseAsync(name);
        await using var connection = await pgDatabase.OpenConnectionAsync();
        using var kdbDatabase = new SqlTestDatabase();
        var kdb = new KdbSide(kdbDatabase.Session());
        var pg = new PgSide(connection);
        foreach (var statement in setup)
        {
            Assert.False((await pg.RunAsync(statement)).IsError, statement);
            Assert.False((await kdb.RunAsync(statement)).IsError, statement);
        }

        foreach (var sql in queries)
        {
            check(sql, await kdb.RunAsync(sql), await pg.RunAsync(sql));
        }
    }

    /// <summary>Every query must succeed on PostgreSQL and give kdb the same rows (in order).</summary>
    public static async Task AnswersMatchAsync(PostgresFixture server, string name, string[] setup, string[] queries)
    {
        var failures = new List<string>();
        await RunAllAsync(server, name, setup, queries, (sql, kdb, pg) =>
        {
            if (pg.IsError)
            {
                failures.Add($"PostgreSQL rejected a test query: {sql}\n{pg.Describe()}");
            }
            else if (DiffComparer.Compare(kdb, pg, Enumerable.Range(0, pg.Names.Count).ToArray()) is { } reason)
            {
                failures.Add($"{sql}\n{reason}\nkdb: {kdb.Describe()}\npg:  {pg.Describe()}");
            }
        });
        Assert.True(failures.Count == 0, string.Join("\n\n", failures));
    }

    /// <summary>Every query must fail on both with the same SQLSTATE.</summary>
    public static async Task ErrorsMatchAsync(PostgresFixture server, string name, string[] setup, string[] queries)
    {
        var failures = new List<string>();
        await RunAllAsync(server, name, setup, queries, (sql, kdb, pg) =>
        {
            if (!pg.IsError || kdb.SqlState != pg.SqlState)
            {
                failures.Add($"{sql}\nkdb: {kdb.Describe()}\npg:  {pg.Describe()}");
            }
        });
        Assert.True(failures.Count == 0, string.Join("\n\n", failures));
    }
}

/// <summary>A fixed differential suite: its setup, queries that must answer as PostgreSQL does, and queries that must fail alike.</summary>
public abstract class DiffCaseSuite(PostgresFixture server, string name, string[] setup, string[] answers, string[] errors)
{
    [Fact]
    public Task Answers_MatchPostgres() => DiffCases.AnswersMatchAsync(server, name, setup, answers);

    [Fact]
    public Task Errors_MatchPostgres() => DiffCases.ErrorsMatchAsync(server, name, setup, errors);
}
