using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Kdb.PgWire.Session;
using Kdb.PgWire.Types;

namespace Kdb.PgWire.Tests.Support;

/// <summary>One recognised statement shape of <see cref="TestSession"/>.</summary>
internal sealed partial class TestStatement : IPgStatement
{
    private readonly TestSession _session;
    private readonly PgTypeOid[] _parameterTypes;

    private TestStatement(TestSession session, StatementKind kind, PgTypeOid[] parameterTypes, IReadOnlyList<PgColumn>? columns, Item[] items, long number, bool csv)
    {
        _session = session;
        Kind = kind;
        _parameterTypes = parameterTypes;
        Columns = columns;
        Items = items;
        Number = number;
        Csv = csv;
    }

    internal enum StatementKind
    {
        Echo,
        Series,
        Sleep,
        SelectItems,
        Insert,
        Delete,
        Begin,
        Commit,
        Rollback,
        Discard,
        Set,
        RaiseError,
        Notice,
        CopyIn,
        CopyOut,
        NoOp,
    }

    /// <summary>A select-list or VALUES item: a parameter ($n, possibly cast) or a literal.</summary>
    internal readonly record struct Item(int Parameter, PgTypeOid Type, string? Literal);

    public StatementKind Kind { get; }

    public Item[] Items { get; }

    public long Number { get; }

    public bool Csv { get; }

    public TestSession Session => _session;

    public ReadOnlyMemory<PgTypeOid> ParameterTypes => _parameterTypes;

    public IReadOnlyList<PgColumn>? Columns { get; }

    public IPgPortal Bind(PgParameters parameters) => new TestPortal(this, parameters);

    public void Dispose()
    {
    }

    public static TestStatement Create(TestSession session, string sql, ReadOnlySpan<PgTypeOid> given)
    {
        string lower = sql.ToLowerInvariant();
        Match m;
        if ((m = SeriesRe().Match(lower)).Success)
        {
            return Simple(StatementKind.Series, [new("generate_series", PgTypeOid.Int4)], long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
        }

        if ((m = SleepRe().Match(lower)).Success)
        {
            return Simple(StatementKind.Sleep, [new("pg_sleep", PgTypeOid.Text)], (long)(double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) * 1000));
        }

        if (SelectItemsRe().IsMatch(lower))
        {
            return Simple(StatementKind.SelectItems, [new("id", PgTypeOid.Int4, TableOid: 16384, ColumnAttributeNumber: 1), new("name", PgTypeOid.Text, TableOid: 16384, ColumnAttributeNumber: 2)]);
        }

        if (lower == "select raise_error()")
        {
            return Simple(StatementKind.RaiseError, [new("raise_error", PgTypeOid.Int4)]);
        }

        if (lower == "select notice()")
        {
            return Simple(StatementKind.Notice, [new("notice", PgTypeOid.Text)]);
        }

        if (lower is "delete from items")
        {
            return Simple(StatementKind.Delete, null);
        }

        if (lower.StartsWith("begin", StringComparison.Ordinal) || lower.StartsWith("start transaction", StringComparison.Ordinal))
        {
            return Simple(StatementKind.Begin, null);
        }

        if (lower is "commit" or "end")
        {
            return Simple(StatementKind.Commit, null);
        }

        if (lower is "rollback")
        {
            return Simple(StatementKind.Rollback, null);
        }

        // Npgsql's pool reset when the connection keeps prepared statements; Npgsql counts the response
        // messages of this reset, so pg_advisory_unlock_all must answer with a row as PostgreSQL does.
        if (lower is "select pg_advisory_unlock_all()")
        {
            return new TestStatement(session, StatementKind.Echo, [], [new PgColumn("pg_advisory_unlock_all", PgTypeOid.Text)], [new Item(0, PgTypeOid.Text, string.Empty)], 0, false);
        }

        if (lower is "set session authorization default" or "reset all" or "close all" or "unlisten *" or "discard sequences" or "discard temp")
        {
            return new TestStatement(session, StatementKind.NoOp, [], null, [new Item(0, PgTypeOid.Text, sql.ToUpperInvariant())], 0, false);
        }

        if (lower is "discard all")
        {
            return Simple(StatementKind.Discard, null);
        }

        if ((m = CopyRe().Match(lower)).Success)
        {
            return new TestStatement(session, m.Groups[1].Value == "from stdin" ? StatementKind.CopyIn : StatementKind.CopyOut, [], null, [], 0, m.Groups[2].Value.Contains("csv", StringComparison.Ordinal));
        }

        if ((m = SetRe().Match(sql)).Success)
        {
            return new TestStatement(session, StatementKind.Set, [], null, [new Item(0, PgTypeOid.Text, m.Groups[1].Value), new Item(0, PgTypeOid.Text, m.Groups[2].Value)], 0, false);
        }

        if ((m = InsertRe().Match(sql)).Success)
        {
            Item[] values = ParseItems(m.Groups[1].Value, given, out PgTypeOid[] types);
            return values.Length == 2 ? new TestStatement(session, StatementKind.Insert, types, null, values, 0, false) : throw Syntax(sql);
        }

        if ((m = SelectRe().Match(sql)).Success)
        {
            Item[] items = ParseItems(m.Groups[1].Value, given, out PgTypeOid[] types);
            var columns = new PgColumn[items.Length];
            for (int i = 0; i < items.Length; i++)
            {
                columns[i] = new PgColumn("?column?", items[i].Type);
            }

            return new TestStatement(session, StatementKind.Echo, types, columns, items, 0, false);
        }

        throw Syntax(sql);

        TestStatement Simple(StatementKind kind, PgColumn[]? columns, long number = 0) => new(session, kind, [], columns, [], number, false);
    }

    private static PgException Syntax(string sql)
    {
        string word = sql.Split(' ', 2)[0];
        return new PgException("42601", $"syntax error at or near \"{word}\"", position: 1);
    }

    /// <summary>Items: <c>$n</c>, <c>$n::type</c>, integer or quoted string literals. Parameter types come from the client, else the cast, else text.</summary>
    private static Item[] ParseItems(string list, ReadOnlySpan<PgTypeOid> given, out PgTypeOid[] parameterTypes)
    {
        string[] parts = list.Split(',');
        var items = new Item[parts.Length];
        int maxParameter = 0;
        var casts = new Dictionary<int, PgTypeOid>();
        for (int i = 0; i < parts.Length; i++)
        {
            string p = parts[i].Trim();
            Match m = ParamRe().Match(p);
            if (m.Success)
            {
                int n = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
                maxParameter = Math.Max(maxParameter, n);
                PgTypeOid cast = m.Groups[2].Success ? TestSession.TypeFromName(m.Groups[2].Value) : PgTypeOid.Unspecified;
                if (cast != PgTypeOid.Unspecified)
                {
                    casts[n] = cast;
                }

                items[i] = new Item(n, cast, null);
            }
            else if (long.TryParse(p, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _))
            {
                items[i] = new Item(0, PgTypeOid.Int4, p);
            }
            else if (p.Length >= 2 && p[0] == '\'' && p[^1] == '\'')
            {
                items[i] = new Item(0, PgTypeOid.Text, p[1..^1]);
            }
            else
            {
                throw new PgException("42703", $"column \"{p}\" does not exist", position: 8);
            }
        }

        parameterTypes = new PgTypeOid[Math.Max(maxParameter, given.Length)];
        for (int n = 1; n <= parameterTypes.Length; n++)
        {
            PgTypeOid fromClient = n <= given.Length ? given[n - 1] : PgTypeOid.Unspecified;
            parameterTypes[n - 1] = fromClient is not (PgTypeOid.Unspecified or PgTypeOid.Unknown)
                ? fromClient
                : casts.TryGetValue(n, out PgTypeOid c) ? c : PgTypeOid.Text;
        }

        for (int i = 0; i < items.Length; i++)
        {
            if (items[i].Parameter > 0)
            {
                PgTypeOid t = items[i].Type != PgTypeOid.Unspecified ? items[i].Type : parameterTypes[items[i].Parameter - 1];
                items[i] = items[i] with { Type = t };
            }
        }

        return items;
    }

    internal static string Utf8(ReadOnlySpan<byte> b) => Encoding.UTF8.GetString(b);

    [GeneratedRegex(@"^select \* from generate_series\(1, ?(\d+)\)$")]
    private static partial Regex SeriesRe();

    [GeneratedRegex(@"^select pg_sleep\((\d+(?:\.\d+)?)\)$")]
    private static partial Regex SleepRe();

    [GeneratedRegex(@"^select (id, name|\*) from items( order by id)?$")]
    private static partial Regex SelectItemsRe();

    [GeneratedRegex(@"^copy items (from stdin|to stdout)(.*)$")]
    private static partial Regex CopyRe();

    [GeneratedRegex(@"^set (?:session )?(\w+) ?(?:=|to) ?'?([^']*)'?$", RegexOptions.IgnoreCase)]
    private static partial Regex SetRe();

    [GeneratedRegex(@"^insert into items values ?\((.+)\)$", RegexOptions.IgnoreCase)]
    private static partial Regex InsertRe();

    [GeneratedRegex(@"^select (.+)$", RegexOptions.IgnoreCase)]
    private static partial Regex SelectRe();

    [GeneratedRegex(@"^\$(\d+)(?:::(\w+))?$")]
    private static partial Regex ParamRe();
}
