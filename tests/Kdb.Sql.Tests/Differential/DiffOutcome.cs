using System.Globalization;
using System.Text;

namespace Kdb.Sql.Tests.Differential;

/// <summary>
/// What one engine answered: an error (SQLSTATE and message) or columns (names, type OIDs) and rows, every value
/// in PostgreSQL's text form (null for NULL), plus the affected-row count of a DML statement.
/// </summary>
public sealed record DiffOutcome(string? SqlState, string? Error, IReadOnlyList<string> Names, IReadOnlyList<uint> TypeOids, IReadOnlyList<string?[]> Rows, long Affected)
{
    public static DiffOutcome Failed(string sqlState, string message) => new(sqlState, message, [], [], [], -1);

    public bool IsError => SqlState is not null;

    /// <summary>A readable form for mismatch reports (at most <paramref name="maxRows"/> rows).</summary>
    public string Describe(int maxRows = 12)
    {
        if (IsError)
        {
            return $"ERROR {SqlState}: {Error}";
        }

        var text = new StringBuilder();
        text.Append(string.Join(" | ", Names.Select((n, i) => $"{n}:{TypeOids[i]}")));
        text.Append($"  ({Rows.Count} rows{(Affected >= 0 ? $", affected {Affected}" : string.Empty)})");
        foreach (var row in Rows.Take(maxRows))
        {
            text.Append("\n    ").Append(string.Join(" | ", row.Select(v => v ?? "NULL")));
        }

        if (Rows.Count > maxRows)
        {
            text.Append("\n    …");
        }

        return text.ToString();
    }
}

/// <summary>
/// Compares two outcomes as the differential test's rules say:
/// <list type="bullet">
/// <item>errors compare by SQLSTATE class (the first two characters); an error on one side only is a mismatch;</item>
/// <item>column count, names and type OIDs must match;</item>
/// <item>rows compare as multisets; when the query has an ORDER BY, the sequence of its sort-key columns must match
/// too (rows tied on every key may come in any order; numbers equal as values, such as 93 and 93.00, are ties);</item>
/// <item>values compare as text, except numbers: two values that both parse as numbers are equal when they are
/// within a relative 1e-12 of each other AND either their texts match or one of them shows ten or more fractional
/// digits (the result of a division or avg, where PostgreSQL's choice of display scale is an implementation detail
/// kdb's decimal arithmetic need not copy). So 1.50 vs 1.5 from a numeric(10,2) column is a mismatch, while
/// 3.3333333333333333 vs 3.33333333333333333333 is not.</item>
/// </list>
/// </summary>
public static class DiffComparer
{
    /// <summary>Null when the outcomes agree, else why not.</summary>
    public static string? Compare(DiffOutcome kdb, DiffOutcome pg, int[]? sortKeys)
    {
        if (kdb.IsError || pg.IsError)
        {
            if (kdb.IsError && pg.IsError)
            {
                return kdb.SqlState![..2] == pg.SqlState![..2] ? null : $"error class differs ({kdb.SqlState} vs {pg.SqlState})";
            }

            return kdb.IsError ? $"kdb failed ({kdb.SqlState}), PostgreSQL did not" : $"PostgreSQL failed ({pg.SqlState}), kdb did not";
        }

        if (kdb.Names.Count != pg.Names.Count)
        {
            return $"column count differs ({kdb.Names.Count} vs {pg.Names.Count})";
        }

        for (var i = 0; i < kdb.Names.Count; i++)
        {
            if (kdb.Names[i] != pg.Names[i])
            {
                return $"column {i + 1} name differs ({kdb.Names[i]} vs {pg.Names[i]})";
            }

            if (kdb.TypeOids[i] != pg.TypeOids[i])
            {
                return $"column {i + 1} ({pg.Names[i]}) type differs (oid {kdb.TypeOids[i]} vs {pg.TypeOids[i]})";
            }
        }

        if (kdb.Affected >= 0 && pg.Affected >= 0 && kdb.Affected != pg.Affected)
        {
            return $"affected rows differ ({kdb.Affected} vs {pg.Affected})";
        }

        if (kdb.Rows.Count != pg.Rows.Count)
        {
            return $"row count differs ({kdb.Rows.Count} vs {pg.Rows.Count})";
        }

        if (sortKeys is not null)
        {
            for (var r = 0; r < kdb.Rows.Count; r++)
            {
                foreach (var k in sortKeys)
                {
                    if (!OrderEquals(kdb.Rows[r][k], pg.Rows[r][k]))
                    {
                        return $"order differs at row {r + 1}, sort column {k + 1} ({kdb.Rows[r][k] ?? "NULL"} vs {pg.Rows[r][k] ?? "NULL"})";
                    }
                }
            }
        }

        var left = Sorted(kdb.Rows);
        var right = Sorted(pg.Rows);
        for (var r = 0; r < left.Count; r++)
        {
            for (var c = 0; c < left[r].Length; c++)
            {
                if (!CellEquals(left[r][c], right[r][c]))
                {
                    return $"rows differ (column {c + 1}: {left[r][c] ?? "NULL"} vs {right[r][c] ?? "NULL"})";
                }
            }
        }

        return null;
    }

    /// <summary>
    /// Equality of sort-key cells: numbers that are equal as values (93 and 93.00) sort as ties, so tied rows may
    /// come in either order even when their texts differ; the multiset comparison still checks every text.
    /// </summary>
    private static bool OrderEquals(string? a, string? b) =>
        CellEquals(a, b) || (a is not null && b is not null
            && decimal.TryParse(a, NumberStyles.Float, CultureInfo.InvariantCulture, out var x)
            && decimal.TryParse(b, NumberStyles.Float, CultureInfo.InvariantCulture, out var y) && x == y);

    /// <summary>Cell equality with the numeric rule of the class summary.</summary>
    public static bool CellEquals(string? a, string? b)
    {
        if (a is null || b is null)
        {
            return a is null && b is null;
        }

        if (a == b)
        {
            return true;
        }

        if (!TryNumber(a, out var x) || !TryNumber(b, out var y))
        {
            return false;
        }

        if (FractionDigits(a) < 10 && FractionDigits(b) < 10)
        {
            return false;
        }

        var scale = Math.Max(1.0, Math.Max(Math.Abs(x), Math.Abs(y)));
        return Math.Abs(x - y) <= 1e-12 * scale;
    }

    private static bool TryNumber(string text, out double value) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value) && text.Length > 0 && (char.IsAsciiDigit(text[^1]) || text[^1] == '.');

    private static int FractionDigits(string text)
    {
        var dot = text.IndexOf('.', StringComparison.Ordinal);
        return dot < 0 ? 0 : text.Length - dot - 1;
    }

    /// <summary>Rows sorted by a canonical key (long-fraction numbers rounded to 9 places, trailing zeros dropped), so multisets compare pairwise.</summary>
    private static List<string?[]> Sorted(IReadOnlyList<string?[]> rows) =>
        rows.OrderBy(r => string.Join("\u0001", r.Select(Canonical)), StringComparer.Ordinal).ToList();

    private static string Canonical(string? value)
    {
        if (value is null)
        {
            return "\u0000";
        }

        if (FractionDigits(value) >= 10 && decimal.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var number))
        {
            return Math.Round(number, 9).ToString("0.#########", CultureInfo.InvariantCulture);
        }

        return value;
    }
}
