using System.Text;
using System.Text.RegularExpressions;

namespace Kdb.Sql.Tests.Differential;

/// <summary>One disagreement between kdb and PostgreSQL.</summary>
public sealed record Mismatch(int Seed, GeneratedQuery Query, string Reason, DiffOutcome Kdb, DiffOutcome Postgres)
{
    /// <summary>What kind of disagreement this is, with values and positions taken out, to report each kind once.</summary>
    public string Signature
    {
        get
        {
            if (Kdb.IsError && !Postgres.IsError)
            {
                return $"{Query.Category}: kdb error {Kdb.SqlState} {Normalize(Kdb.Error!)}";
            }

            if (Postgres.IsError && !Kdb.IsError)
            {
                return $"{Query.Category}: PostgreSQL error {Postgres.SqlState} {Normalize(Postgres.Error!)}, kdb succeeded";
            }

            if (Kdb.IsError)
            {
                return $"{Query.Category}: error {Kdb.SqlState} vs {Postgres.SqlState}";
            }

            var reason = Reason.Contains("type differs", StringComparison.Ordinal) ? Reason : Reason.Split(" (")[0];
            return $"{Query.Category}: {Normalize(reason)}";
        }
    }

    private static string Normalize(string text)
    {
        var cut = Regex.Replace(text, "\"[^\"]*\"|'[^']*'|\\d+", "_");
        return cut.Length > 90 ? cut[..90] : cut;
    }

    public string Describe() =>
        $"seed {Seed} [{Query.Category}] {Reason}\n  query: {Query.Sql}\n  kdb:        {Kdb.Describe()}\n  PostgreSQL: {Postgres.Describe()}";
}

/// <summary>
/// Appends each new kind of mismatch to <c>/tmp/sql-bugs.md</c> for the engine's author, once: a kind already
/// in the file (its signature is recorded in an HTML comment) is not written again.
/// </summary>
internal static class BugLog
{
    public const string Path = "/tmp/sql-bugs.md";

    private static readonly Lock Gate = new();

    public static int Append(IEnumerable<Mismatch> mismatches, int limit)
    {
        lock (Gate)
        {
            string existing;
            try
            {
                existing = File.Exists(Path) ? File.ReadAllText(Path) : string.Empty;
            }
            catch (IOException)
            {
                existing = string.Empty;
            }

            var written = 0;
            var text = new StringBuilder();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var mismatch in mismatches)
            {
                var signature = mismatch.Signature.Replace("--", "-", StringComparison.Ordinal);
                if (written >= limit || !seen.Add(signature) || existing.Contains($"<!-- sig: {signature} -->", StringComparison.Ordinal))
                {
                    continue;
                }

                text.Append($"\n## [differential, auto] {mismatch.Query.Category}: {mismatch.Reason}\n<!-- sig: {signature} -->\n");
                text.Append($"seed {mismatch.Seed} (`tests/Kdb.Sql.Tests/Differential`, re-run with the seed's theory case)\n\n");
                text.Append($"```sql\n{mismatch.Query.Sql}\n```\n");
                text.Append($"kdb:\n```\n{mismatch.Kdb.Describe(6)}\n```\nPostgreSQL 15:\n```\n{mismatch.Postgres.Describe(6)}\n```\n");
                written++;
            }

            if (written > 0)
            {
                File.AppendAllText(Path, text.ToString());
            }

            return written;
        }
    }
}
