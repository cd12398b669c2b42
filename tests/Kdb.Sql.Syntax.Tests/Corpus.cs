using System.Reflection;

namespace Kdb.Sql.Syntax.Tests;

/// <summary>The SQL corpora embedded in this assembly (entries separated by '-- @@@@' lines).</summary>
internal static class Corpus
{
    private static readonly Lazy<IReadOnlyList<string>> All = new(Load);

    public static IReadOnlyList<string> Entries => All.Value;

    public static IEnumerable<object[]> Cases()
    {
        for (var i = 0; i < Entries.Count; i++)
        {
            yield return [i];
        }
    }

    private static List<string> Load()
    {
        var list = new List<string>();
        foreach (var name in new[] { "Corpus.captured.sql", "Corpus.statements.sql" })
        {
            using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(name)
                ?? throw new InvalidOperationException("missing resource " + name);
            using var reader = new StreamReader(stream);
            var text = reader.ReadToEnd().Replace("\r\n", "\n", StringComparison.Ordinal);
            foreach (var entry in text.Split("\n-- @@@@\n"))
            {
                if (entry.Trim().Length > 0)
                {
                    list.Add(entry);
                }
            }
        }

        return list;
    }
}
