namespace Kdb.Sql.Tests;

/// <summary>
/// Runs what real clients send — captured from psql 15 (\d family), pgbench 15 (init and run) and Npgsql 10
/// (type loading) against PostgreSQL 15 — through the engine, in order. Only COPY (a wire-protocol
/// sub-protocol, exercised by the node's tests) is skipped.
/// </summary>
public sealed class ClientCorpusTests : IDisposable
{
    private readonly SqlTestDatabase _db = new();

    public void Dispose() => _db.Dispose();

    private static string CorpusPath()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "Kdb.Sql.Syntax.Tests", "Corpus", "captured.sql");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException("captured.sql corpus not found above " + AppContext.BaseDirectory);
    }

    [Fact]
    public async Task CapturedClientStatements_AllRun()
    {
        var session = _db.Session();
        var entries = File.ReadAllText(CorpusPath()).Split("\n-- @@@@");
        var failures = new List<string>();
        var ran = 0;
        foreach (var raw in entries)
        {
            var sql = string.Join('\n', raw.Split('\n').Where(l => !l.TrimStart().StartsWith("--", StringComparison.Ordinal))).Trim();
            if (sql.Length == 0 || sql.StartsWith("copy ", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            // psql's \d queries name a table by oid: point them at a real one.
            var pgbenchAccounts = await session.ScalarAsync("SELECT coalesce(min(oid), 0)::text FROM pg_class WHERE relname = 'pgbench_accounts'");
            sql = sql.Replace("'16384'", "'" + pgbenchAccounts + "'", StringComparison.Ordinal);
            try
            {
                await session.ExecuteAsync(sql);
                ran++;
            }
            catch (SqlException e)
            {
                failures.Add($"{e.SqlState} {e.Message}\n    {sql[..Math.Min(sql.Length, 300)].ReplaceLineEndings(" ")}");
            }
        }

        Assert.True(failures.Count == 0, $"{failures.Count} of {ran + failures.Count} client statements failed:\n" + string.Join("\n", failures));
    }
}
