using System.Text;
using System.Text.RegularExpressions;
using Kdb.Sql.Sessions;

namespace Kdb.Sql.Tests.BadInput;

/// <summary>
/// Bad SQL never crashes the engine: random token soups, every prefix of a corpus of valid statements and random
/// bytes either run or fail with a <see cref="SqlException"/> carrying a 5-character SQLSTATE — never another
/// exception type — and the session keeps working (ROLLBACK if the input left a failed transaction block, then
/// <c>SELECT 1</c> answers 1). Committed rows are read back at the end: bad input loses nothing acknowledged (the soup vocabulary has no
/// DELETE, UPDATE, DROP or TRUNCATE, so those rows can only change through a bug).
/// </summary>
public sealed partial class BadSqlTests : IDisposable
{
    private static readonly bool Soak = Environment.GetEnvironmentVariable("KDB_SOAK") == "1";

    /// <summary>Valid statements whose every prefix the prefix test runs (writes go to <c>scratch</c> only).</summary>
    private static readonly string[] Corpus =
    [
        "SELECT 1",
        "SELECT id, name FROM keep WHERE id BETWEEN 2 AND 5 ORDER BY id DESC NULLS LAST LIMIT 3 OFFSET 1",
        "SELECT k.id, count(*) AS n FROM keep k LEFT JOIN scratch s ON s.id = k.id GROUP BY k.id HAVING count(*) >= 1",
        "SELECT DISTINCT upper(name) || '-x' FROM keep WHERE name LIKE 'a%' OR name ILIKE '%B%'",
        "WITH w AS (SELECT id FROM keep) SELECT * FROM w UNION ALL SELECT id FROM scratch EXCEPT SELECT 3",
        "SELECT CASE WHEN id > 2 THEN 'big' ELSE 'small' END, COALESCE(NULL, id), CAST(id AS text) FROM keep",
        "SELECT id, row_number() OVER (PARTITION BY id % 2 ORDER BY id) FROM keep",
        "SELECT * FROM keep WHERE id IN (SELECT id FROM scratch) AND EXISTS (SELECT 1 FROM scratch WHERE scratch.id = keep.id)",
        "SELECT 'it''s', E'a\\nb', $$dollar$$, 1.5e3, -7::bigint, DATE '2024-02-29', INTERVAL '1 day' /* comment */ -- tail",
        "SELECT (SELECT max(id) FROM keep), abs(-3), round(2.567, 2), substring('hello' FROM 2 FOR 3), trim('  x ')",
        "INSERT INTO scratch (id, v) VALUES (100, 'a'), (101, NULL) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v RETURNING id",
        "UPDATE scratch SET v = v || '!' WHERE id = 100 RETURNING *",
        "DELETE FROM scratch WHERE id >= 100 RETURNING id",
        "BEGIN; SELECT 1; SAVEPOINT a; SELECT 2; ROLLBACK TO SAVEPOINT a; COMMIT",
        "CREATE TABLE IF NOT EXISTS extra (a int PRIMARY KEY, b text NOT NULL DEFAULT 'x', c numeric(6,2) CHECK (c > 0))",
        "CREATE INDEX IF NOT EXISTS extra_b ON extra (b)",
        "EXPLAIN SELECT * FROM keep WHERE id = 3",
        "SET statement_timeout = 5000",
        "SHOW statement_timeout",
        "PREPARE p (int) AS SELECT name FROM keep WHERE id = $1",
        "SELECT \"id\" FROM \"keep\" AS \"K\" WHERE \"K\".\"id\" <> ALL (SELECT 9) FOR UPDATE",
        "SELECT g, now() IS NOT NULL, version() LIKE 'PostgreSQL%' FROM generate_series(1, 3) AS g",
    ];

    private static readonly string[] Tokens =
    [
        "SELECT", "FROM", "WHERE", "GROUP", "BY", "ORDER", "HAVING", "LIMIT", "OFFSET", "JOIN", "LEFT", "RIGHT", "FULL", "CROSS", "ON",
        "USING", "UNION", "INTERSECT", "EXCEPT", "ALL", "DISTINCT", "AS", "AND", "OR", "NOT", "NULL", "IS", "IN", "EXISTS", "BETWEEN",
        "LIKE", "ILIKE", "CASE", "WHEN", "THEN", "ELSE", "END", "CAST", "WITH", "OVER", "PARTITION", "INSERT", "INTO", "VALUES",
        "RETURNING", "ON CONFLICT", "DO", "NOTHING", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "EXPLAIN", "SET", "SHOW", "TRUE",
        "FALSE", "keep", "scratch", "id", "name", "v", "k", "count(*)", "sum", "max", "coalesce", "row_number()", "generate_series",
        "*", "+", "-", "/", "%", "||", "=", "<>", "<", ">=", "::", "::int", "::text", "(", ")", "(", ")", ",", ",", ";", ".", "[", "]",
        "'a'", "'it''s'", "''", "'", "\"", "\"id\"", "$1", "$$", "0", "1", "2", "-1", "2147483648", "99999999999999999999999", "1.5",
        "1e400", ".", "E'\\x'", "/*", "*/", "--", "\n", "?", "@", "#", "\\", "ÿ", "\u0000", "FOR UPDATE", "NULLS FIRST", "INTERVAL",
        "DATE", "'2024-13-45'", "numeric(3,1)", "varchar(2)", "'abc'::varchar(2)",
    ];

    private readonly SqlTestDatabase _db = new();
    private readonly SqlSession _session;

    public BadSqlTests()
    {
        _session = _db.Session();
        Run("CREATE TABLE keep (id int PRIMARY KEY, name text)").GetAwaiter().GetResult();
        Run("CREATE TABLE scratch (id int PRIMARY KEY, v text)").GetAwaiter().GetResult();
        Run("INSERT INTO keep SELECT g, 'name' || g FROM generate_series(1, 20) g").GetAwaiter().GetResult();
        Run("INSERT INTO scratch VALUES (1, 'one'), (3, 'three')").GetAwaiter().GetResult();
    }

    public void Dispose()
    {
        _session.Dispose();
        _db.Dispose();
    }

    [Fact]
    public async Task TokenSoup_FailsOnlyWithSqlState_SessionSurvives()
    {
        var random = new Random(5150);
        var failures = new List<string>();
        var count = Soak ? 30_000 : 3_000;
        for (var i = 0; i < count; i++)
        {
            var soup = new StringBuilder();
            var length = random.Next(1, 16);
            for (var t = 0; t < length; t++)
            {
                soup.Append(Tokens[random.Next(Tokens.Length)]).Append(random.Next(6) == 0 ? string.Empty : " ");
            }

            await CheckAsync(soup.ToString(), failures);
        }

        await AssertIntactAsync(failures);
    }

    [Fact]
    public async Task EveryPrefixOfValidStatements_FailsOnlyWithSqlState_SessionSurvives()
    {
        var failures = new List<string>();
        foreach (var statement in Corpus)
        {
            for (var length = 0; length <= statement.Length; length++)
            {
                await CheckAsync(statement[..length], failures);
            }
        }

        // Whole statements must run: the corpus is valid, so each prefix test above also exercised a real success.
        foreach (var statement in Corpus.Where(s => !s.StartsWith("PREPARE", StringComparison.Ordinal)))
        {
            await CheckAsync(statement, failures, mustSucceed: true);
        }

        await AssertIntactAsync(failures);
    }

    [Fact]
    public async Task RandomBytesAndCharacters_FailOnlyWithSqlState_SessionSurvives()
    {
        var random = new Random(77);
        var failures = new List<string>();
        var count = Soak ? 10_000 : 1_000;
        for (var i = 0; i < count; i++)
        {
            var bytes = new byte[random.Next(0, 64)];
            random.NextBytes(bytes);
            string text = (i % 3) switch
            {
                0 => Encoding.UTF8.GetString(bytes),
                1 => Encoding.Latin1.GetString(bytes),
                // Arbitrary UTF-16 code units, lone surrogates included.
                _ => new string(Enumerable.Range(0, bytes.Length).Select(_ => (char)random.Next(0, 0x10000)).ToArray()),
            };
            if (i % 5 == 0)
            {
                text = "SELECT " + text;
            }

            await CheckAsync(text, failures);
        }

        await AssertIntactAsync(failures);
    }

    [Fact]
    public async Task SyntaxError_ReportsSqlState42601AndPosition()
    {
        var e = await Assert.ThrowsAsync<SqlException>(() => _session.ExecuteAsync("SELECT id FROM keep WHERE AND").AsTask());
        Assert.Equal("42601", e.SqlState);
        Assert.True(e.Position > 0, $"syntax error without a position: {e.Message}");
        Assert.Equal("1", await _session.ScalarAsync("SELECT 1"));
    }

    /// <summary>Runs <paramref name="sql"/>; records anything but success or a well-formed SqlException, then checks the session still answers.</summary>
    private async Task CheckAsync(string sql, List<string> failures, bool mustSucceed = false)
    {
        try
        {
            await Run(sql);
        }
        catch (SqlException e)
        {
            if (!SqlStatePattern().IsMatch(e.SqlState))
            {
                failures.Add($"malformed SQLSTATE '{e.SqlState}' for {Show(sql)}: {e.Message}");
            }
            else if (e.SqlState.StartsWith("XX", StringComparison.Ordinal))
            {
                failures.Add($"internal error {e.SqlState} for {Show(sql)}: {e.Message}");
            }
            else if (mustSucceed)
            {
                failures.Add($"valid statement failed with {e.SqlState}: {Show(sql)}: {e.Message}");
            }
        }
        catch (Exception e)
        {
            failures.Add($"{e.GetType().Name} (not SqlException) for {Show(sql)}: {e.Message}\n{e.StackTrace?.Split('\n').FirstOrDefault()}");
        }

        try
        {
            if (_session.Status != SqlTransactionStatus.Idle)
            {
                await Run("ROLLBACK");
            }

            if (_session.GetSetting("statement_timeout") is { } timeout && timeout != "0" && timeout != "5000")
            {
                await Run("RESET statement_timeout");
            }

            var one = await _session.QueryAsync("SELECT 1");
            if (one.Count != 1 || one[0][0] != "1")
            {
                failures.Add($"SELECT 1 answered wrongly after {Show(sql)}");
            }
        }
        catch (Exception e)
        {
            failures.Add($"session broken after {Show(sql)}: {e.GetType().Name}: {e.Message}");
        }
    }

    private async Task AssertIntactAsync(List<string> failures)
    {
        var rows = await _session.QueryAsync("SELECT count(*), sum(id), min(name), max(name) FROM keep WHERE id BETWEEN 1 AND 20");
        Assert.Equal(["20", "210", "name1", "name9"], rows[0]);
        Assert.True(failures.Count == 0, $"{failures.Count} bad inputs were mishandled; first ones:\n" + string.Join("\n", failures.Distinct().Take(30)));
    }

    private async Task Run(string sql) => await _session.ExecuteAsync(sql);

    private static string Show(string sql)
    {
        var escaped = new StringBuilder();
        foreach (var c in sql.Length > 160 ? sql[..160] : sql)
        {
            escaped.Append(char.IsControl(c) || char.IsSurrogate(c) ? $"\\u{(int)c:x4}" : c.ToString());
        }

        return "«" + escaped + "»";
    }

    [GeneratedRegex("^[0-9A-Z]{5}$")]
    private static partial Regex SqlStatePattern();
}
