using System.Text.RegularExpressions;
using Kdb.Sql.Types;

namespace Kdb.Sql.Execution;

/// <summary>LIKE / ILIKE with % and _ and an escape character (default backslash), matched without regex.</summary>
internal sealed class LikeExpr(BoundExpr text, BoundExpr pattern, BoundExpr? escape, bool caseInsensitive, bool negated) : BoundExpr(SqlType.Bool)
{
    public override Value Eval(Value[] row, ExecContext ctx)
    {
        var t = text.Eval(row, ctx);
        var p = pattern.Eval(row, ctx);
        if (t.IsNull || p.IsNull)
        {
            return Value.Null;
        }

        var escapeChar = '\\';
        if (escape is not null)
        {
            var e = escape.Eval(row, ctx);
            if (e.IsNull)
            {
                return Value.Null;
            }

            var es = e.AsText;
            if (es.Length > 1)
            {
                throw new SqlException(SqlState.InvalidEscapeSequence, "invalid escape string", hint: "Escape string must be empty or one character.");
            }

            escapeChar = es.Length == 0 ? '\0' : es[0];
        }

        var subject = t.AsText;
        var pat = p.AsText;
        if (caseInsensitive)
        {
            subject = subject.ToLowerInvariant();
            pat = pat.ToLowerInvariant();
        }

        return Value.FromBool(Match(subject, 0, pat, 0, escapeChar) != negated);
    }

    public static bool Match(string s, int si, string p, int pi, char escape)
    {
        while (pi < p.Length)
        {
            var c = p[pi];
            if (c == '%')
            {
                while (pi < p.Length && p[pi] == '%')
                {
                    pi++;
                }

                if (pi == p.Length)
                {
                    return true;
                }

                for (var k = si; k <= s.Length; k++)
                {
                    if (Match(s, k, p, pi, escape))
                    {
                        return true;
                    }
                }

                return false;
            }

            if (si >= s.Length)
            {
                return false;
            }

            if (c == '_')
            {
                si++;
                pi++;
                continue;
            }

            if (c == escape && escape != '\0')
            {
                pi++;
                if (pi >= p.Length)
                {
                    throw new SqlException(SqlState.InvalidEscapeSequence, "LIKE pattern must not end with escape character");
                }

                c = p[pi];
            }

            if (s[si] != c)
            {
                return false;
            }

            si++;
            pi++;
        }

        return si == s.Length;
    }

    public override bool ReadsRow => text.ReadsRow || pattern.ReadsRow;

    public override string Describe() => text.Describe() + (negated ? " !~~" : " ~~") + (caseInsensitive ? "* " : " ") + pattern.Describe();

    protected override IEnumerable<BoundExpr> GetChildren() => escape is null ? [text, pattern] : [text, pattern, escape];
}

/// <summary>POSIX regular expressions (~, ~*, !~, !~*) through .NET's engine with a match timeout.</summary>
internal sealed class RegexExpr(BoundExpr text, BoundExpr pattern, bool caseInsensitive, bool negated) : BoundExpr(SqlType.Bool)
{
    private string? _lastPattern;
    private Regex? _lastRegex;

    public override Value Eval(Value[] row, ExecContext ctx)
    {
        var t = text.Eval(row, ctx);
        var p = pattern.Eval(row, ctx);
        if (t.IsNull || p.IsNull)
        {
            return Value.Null;
        }

        if (_lastPattern != p.AsText)
        {
            try
            {
                _lastRegex = new Regex(p.AsText, (caseInsensitive ? RegexOptions.IgnoreCase : RegexOptions.None) | RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
            }
            catch (ArgumentException e)
            {
                throw new SqlException("2201B", "invalid regular expression: " + e.Message);
            }

            _lastPattern = p.AsText;
        }

        try
        {
            return Value.FromBool(_lastRegex!.IsMatch(t.AsText) != negated);
        }
        catch (RegexMatchTimeoutException)
        {
            throw new SqlException(SqlState.QueryCanceled, "regular expression took too long");
        }
    }

    public override bool ReadsRow => text.ReadsRow || pattern.ReadsRow;

    public override string Describe() => text.Describe() + (negated ? " !~ " : " ~ ") + pattern.Describe();

    protected override IEnumerable<BoundExpr> GetChildren() => [text, pattern];
}

/// <summary>COALESCE: evaluates arguments only until one is not NULL.</summary>
internal sealed class CoalesceExpr(BoundExpr[] arguments, SqlType type) : BoundExpr(type)
{
    public override Value Eval(Value[] row, ExecContext ctx)
    {
        foreach (var argument in arguments)
        {
            var v = argument.Eval(row, ctx);
            if (!v.IsNull)
            {
                return v;
            }
        }

        return Value.Null;
    }

    public override bool IsConstant => Array.TrueForAll(arguments, a => a.IsConstant);

    public override bool ReadsRow => Array.Exists(arguments, a => a.ReadsRow);

    public override string Describe() => "COALESCE(" + string.Join(", ", Array.ConvertAll(arguments, a => a.Describe())) + ")";

    protected override IEnumerable<BoundExpr> GetChildren() => arguments;
}

/// <summary>ARRAY[...] constructor.</summary>
internal sealed class ArrayCtorExpr(BoundExpr[] elements, SqlType type) : BoundExpr(type)
{
    public override Value Eval(Value[] row, ExecContext ctx)
    {
        var values = new Value[elements.Length];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = elements[i].Eval(row, ctx);
        }

        return Value.FromArray(values);
    }

    public override bool IsConstant => Array.TrueForAll(elements, a => a.IsConstant);

    public override bool ReadsRow => Array.Exists(elements, a => a.ReadsRow);

    public override string Describe() => "ARRAY[" + string.Join(", ", Array.ConvertAll(elements, a => a.Describe())) + "]";

    protected override IEnumerable<BoundExpr> GetChildren() => elements;
}
