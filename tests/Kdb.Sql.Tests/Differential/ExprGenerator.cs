using System.Globalization;

namespace Kdb.Sql.Tests.Differential;

/// <summary>A column visible to an expression: <c>alias.name</c> of a type.</summary>
public sealed record ScopeColumn(string Alias, string Name, DiffType Type)
{
    public string Ref => Alias.Length == 0 ? Name : Alias + "." + Name;
}

/// <summary>
/// Typed random expressions over a scope of columns: every operator the differential test covers (arithmetic,
/// comparisons, three-valued logic, BETWEEN, IN lists, LIKE/ILIKE, CASE, COALESCE, NULLIF, GREATEST/LEAST,
/// string functions, casts, date arithmetic). Expressions are fully parenthesized so precedence is never in
/// question between the two engines; precedence has its own shapes in <see cref="QueryGenerator"/>.
/// </summary>
internal sealed class ExprGenerator(Random random)
{
    private static readonly string[] LikePatterns = ["a%", "%an%", "_a%", "%", "", "A%", "%\\%%", "a\\_b", "%e", "b_n%", "%A%"];

    public Random Random { get; } = random;

    public HashSet<string> Features { get; } = new(StringComparer.Ordinal);

    public static ScopeColumn[] Of(List<ScopeColumn> scope, DiffType type) => scope.Where(c => c.Type == type).ToArray();

    public string Pick(params string[] options) => options[Random.Next(options.Length)];

    public string Expr(DiffType type, List<ScopeColumn> scope, int depth)
    {
        if (depth <= 0 || Random.Next(3) == 0)
        {
            return Leaf(type, scope);
        }

        return type switch
        {
            DiffType.Int => IntExpr(scope, depth - 1),
            DiffType.BigInt => BigIntExpr(scope, depth - 1),
            DiffType.Numeric => NumericExpr(scope, depth - 1),
            DiffType.Text => TextExpr(scope, depth - 1),
            DiffType.Bool => Predicate(scope, depth),
            DiffType.Date => DateExpr(scope, depth - 1),
            _ => TimestampExpr(scope, depth - 1),
        };
    }

    public string Leaf(DiffType type, List<ScopeColumn> scope)
    {
        var columns = Of(scope, type);
        if (columns.Length > 0 && Random.Next(5) != 0)
        {
            return columns[Random.Next(columns.Length)].Ref;
        }

        if (Random.Next(12) == 0)
        {
            Features.Add("typed NULL");
            return $"CAST(NULL AS {DiffSchema.SqlName(type)})";
        }

        return DiffSchema.Literal(Random, type);
    }

    /// <summary>A boolean expression: the WHERE clauses of every shape.</summary>
    public string Predicate(List<ScopeColumn> scope, int depth)
    {
        var choice = Random.Next(depth > 0 ? 16 : 11);
        var type = AnyType(scope);
        switch (choice)
        {
            case 0:
            case 1:
            case 2:
                {
                    Features.Add("comparison");
                    var op = Pick("=", "<>", "<", "<=", ">", ">=", "!=");
                    if (Random.Next(6) == 0 && type is DiffType.Int or DiffType.BigInt or DiffType.Numeric)
                    {
                        // Mixed numeric types compare by value (int = numeric, bigint < int).
                        return $"({Expr(type, scope, 1)} {op} {Expr(Pick("i", "b", "n") switch { "i" => DiffType.Int, "b" => DiffType.BigInt, _ => DiffType.Numeric }, scope, 1)})";
                    }

                    return $"({Expr(type, scope, 1)} {op} {Expr(type, scope, 1)})";
                }

            case 3:
                Features.Add("IS NULL");
                return $"({Expr(type, scope, 1)} IS {Pick("", "NOT ")}NULL)";
            case 4:
                {
                    Features.Add("BETWEEN");
                    var bounded = type == DiffType.Bool ? DiffType.Int : type;
                    return $"({Expr(bounded, scope, 0)} {Pick("", "NOT ")}BETWEEN {Expr(bounded, scope, 0)} AND {Expr(bounded, scope, 0)})";
                }

            case 5:
                {
                    Features.Add("IN list");
                    var count = Random.Next(1, 5);
                    var items = Enumerable.Range(0, count).Select(_ => Random.Next(8) == 0 ? "NULL" : DiffSchema.Literal(Random, type));
                    return $"({Expr(type, scope, 0)} {Pick("", "", "NOT ")}IN ({string.Join(", ", items)}))";
                }

            case 6:
                {
                    Features.Add("LIKE");
                    var op = Pick("LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE", "LIKE");
                    if (op.Contains("ILIKE", StringComparison.Ordinal))
                    {
                        Features.Add("ILIKE");
                    }

                    return $"({Expr(DiffType.Text, scope, 1)} {op} {DiffSchema.Quote(LikePatterns[Random.Next(LikePatterns.Length)])})";
                }

            case 7:
                {
                    var bools = Of(scope, DiffType.Bool);
                    if (bools.Length > 0)
                    {
                        Features.Add("bool column");
                        var column = bools[Random.Next(bools.Length)].Ref;
                        return Pick(column, "NOT " + column, $"({column} IS TRUE)", $"({column} IS NOT FALSE)", $"({column} IS UNKNOWN)");
                    }

                    return $"({Expr(type, scope, 0)} IS NOT NULL)";
                }

            case 8:
                Features.Add("IS DISTINCT FROM");
                return $"({Expr(type, scope, 1)} IS {Pick("", "NOT ")}DISTINCT FROM {Expr(type, scope, 1)})";
            case 9:
                Features.Add("constant");
                return Pick("true", "false", "(1 = 1)", "(NULL::boolean)", "(NULL = 1)");
            case 10:
                return $"({Expr(DiffType.Int, scope, 1)} {Pick("<", ">", "=")} {Expr(DiffType.Int, scope, 1)})";
            case 11:
            case 12:
                Features.Add("AND/OR");
                return $"({Predicate(scope, depth - 1)} {Pick("AND", "OR")} {Predicate(scope, depth - 1)})";
            case 13:
                Features.Add("NOT");
                return $"(NOT {Predicate(scope, depth - 1)})";
            case 14:
                Features.Add("CASE");
                return $"(CASE WHEN {Predicate(scope, depth - 1)} THEN {Predicate(scope, depth - 1)} ELSE {Predicate(scope, 0)} END)";
            default:
                Features.Add("COALESCE");
                return $"COALESCE({Predicate(scope, depth - 1)}, {Pick("true", "false")})";
        }
    }

    public DiffType AnyType(List<ScopeColumn> scope) =>
        scope.Count > 0 && Random.Next(5) != 0 ? scope[Random.Next(scope.Count)].Type : (DiffType)Random.Next(7);

    private string IntExpr(List<ScopeColumn> scope, int depth)
    {
        string E() => Expr(DiffType.Int, scope, depth);
        switch (Random.Next(16))
        {
            case 0:
            case 1:
                Features.Add("arithmetic");
                return $"({E()} {Pick("+", "-", "*")} {E()})";
            case 2:
                Features.Add("division");
                return $"({E()} / NULLIF({E()}, 0))";
            case 3:
                Features.Add("modulo");
                return $"({E()} % NULLIF({E()}, 0))";
            case 4:
                // No raw "/ 0": whether it raises depends on which rows each planner evaluates it for.
                Features.Add("unary minus");
                return $"(- {E()})";
            case 5:
                Features.Add("abs");
                return $"abs({E()})";
            case 6:
                Features.Add("length");
                return $"{Pick("length", "char_length")}({Expr(DiffType.Text, scope, depth)})";
            case 7:
                Features.Add("CASE");
                return $"(CASE WHEN {Predicate(scope, 0)} THEN {E()} WHEN {Predicate(scope, 0)} THEN {E()} {Pick("", "ELSE " + E() + " ")}END)";
            case 8:
                Features.Add("COALESCE");
                return $"COALESCE({E()}, {E()})";
            case 9:
                Features.Add("NULLIF");
                return $"NULLIF({E()}, {E()})";
            case 10:
                Features.Add("GREATEST/LEAST");
                return $"{Pick("GREATEST", "LEAST")}({E()}, {E()}, {E()})";
            case 11:
                Features.Add("date minus date");
                return $"({Expr(DiffType.Date, scope, 0)} - {Expr(DiffType.Date, scope, 0)})";
            case 12:
                Features.Add("cast numeric to int");
                return $"CAST({Expr(DiffType.Numeric, scope, depth)} AS integer)";
            case 13:
                Features.Add("cast text to int");
                return $"CAST({Pick("'12'", "' 7 '", "'-3'")} AS integer)";
            case 14:
                Features.Add("position");
                return $"position({DiffSchema.Quote(Pick("a", "an", "%", ""))} in {Expr(DiffType.Text, scope, depth)})";
            default:
                Features.Add("precedence");
                return $"({E()} + {E()} * {E()} - {E()})";
        }
    }

    private string BigIntExpr(List<ScopeColumn> scope, int depth) => Random.Next(4) switch
    {
        0 => $"CAST({Expr(DiffType.Int, scope, depth)} AS bigint)",
        1 => $"({Expr(DiffType.BigInt, scope, depth)} {Pick("+", "-", "*")} {Expr(DiffType.Int, scope, depth)})",
        2 => $"({Expr(DiffType.BigInt, scope, depth)} / NULLIF({Expr(DiffType.BigInt, scope, depth)}, 0))",
        _ => $"COALESCE({Expr(DiffType.BigInt, scope, depth)}, {Expr(DiffType.Int, scope, depth)})",
    };

    private string NumericExpr(List<ScopeColumn> scope, int depth)
    {
        string E() => Expr(DiffType.Numeric, scope, depth);
        switch (Random.Next(10))
        {
            case 0:
            case 1:
                Features.Add("arithmetic");
                return $"({E()} {Pick("+", "-", "*")} {Pick(E(), Expr(DiffType.Int, scope, depth))})";
            case 2:
                Features.Add("numeric division");
                return $"({E()} / NULLIF({Expr(Random.Next(2) == 0 ? DiffType.Int : DiffType.Numeric, scope, depth)}, 0))";
            case 3:
                Features.Add("round");
                return Random.Next(2) == 0 ? $"round({E()}, {Random.Next(0, 3)})" : $"round({E()})";
            case 4:
                Features.Add("abs");
                return $"abs({E()})";
            case 5:
                Features.Add("cast int to numeric");
                return $"CAST({Expr(DiffType.Int, scope, depth)} AS numeric)";
            case 6:
                Features.Add("extract");
                return $"EXTRACT({Pick("YEAR", "MONTH", "DAY")} FROM {Expr(Random.Next(2) == 0 ? DiffType.Date : DiffType.Timestamp, scope, depth)})";
            case 7:
                Features.Add("COALESCE");
                return $"COALESCE({E()}, {E()})";
            case 8:
                Features.Add("int times numeric literal");
                return $"({Expr(DiffType.Int, scope, depth)} * 1.5)";
            default:
                Features.Add("GREATEST/LEAST");
                return $"{Pick("GREATEST", "LEAST")}({E()}, {Expr(DiffType.Int, scope, depth)})";
        }
    }

    private string TextExpr(List<ScopeColumn> scope, int depth)
    {
        string E() => Expr(DiffType.Text, scope, depth);
        switch (Random.Next(13))
        {
            case 0:
                Features.Add("upper/lower");
                return $"{Pick("upper", "lower")}({E()})";
            case 1:
                Features.Add("substring");
                return Random.Next(2) == 0 ? $"substring({E()} FROM {Random.Next(0, 4)} FOR {Random.Next(0, 4)})" : $"substr({E()}, {Random.Next(1, 4)})";
            case 2:
                Features.Add("trim");
                return Pick($"trim({E()})", $"ltrim({E()})", $"rtrim({E()})", $"trim(both 'a' from {E()})");
            case 3:
                Features.Add("concat operator");
                return $"({E()} || {E()})";
            case 4:
                Features.Add("concat");
                return $"concat({E()}, {Expr(DiffType.Int, scope, depth)}, {E()})";
            case 5:
                Features.Add("replace");
                return $"replace({E()}, 'a', 'XY')";
            case 6:
                Features.Add("cast to text");
                return $"CAST({Expr(Pick("i", "n", "d", "f") switch { "i" => DiffType.Int, "n" => DiffType.Numeric, "d" => DiffType.Date, _ => DiffType.Bool }, scope, depth)} AS text)";
            case 7:
                Features.Add("COALESCE");
                return $"COALESCE({E()}, 'none')";
            case 8:
                Features.Add("CASE");
                return $"(CASE {Expr(DiffType.Int, scope, 0)} WHEN 1 THEN {E()} WHEN 2 THEN 'two' ELSE {E()} END)";
            case 9:
                Features.Add("concat operator with int");
                return $"({E()} || {Expr(DiffType.Int, scope, depth)})";
            case 10:
                Features.Add("left/right");
                return $"{Pick("left", "right")}({E()}, {Random.Next(-1, 4)})";
            case 11:
                Features.Add("NULLIF");
                return $"NULLIF({E()}, {E()})";
            default:
                Features.Add("initcap/reverse");
                return $"{Pick("reverse", "upper")}({E()})";
        }
    }

    private string DateExpr(List<ScopeColumn> scope, int depth)
    {
        switch (Random.Next(5))
        {
            case 0:
                Features.Add("date plus int");
                return $"({Expr(DiffType.Date, scope, depth)} {Pick("+", "-")} {Random.Next(0, 400).ToString(CultureInfo.InvariantCulture)})";
            case 1:
                Features.Add("cast timestamp to date");
                return $"CAST({Expr(DiffType.Timestamp, scope, depth)} AS date)";
            case 2:
                Features.Add("COALESCE");
                return $"COALESCE({Expr(DiffType.Date, scope, depth)}, DATE '2000-01-01')";
            case 3:
                Features.Add("cast text to date");
                return $"CAST({Pick("'2021-02-03'", "'2020-02-29'")} AS date)";
            default:
                Features.Add("GREATEST/LEAST");
                return $"{Pick("GREATEST", "LEAST")}({Expr(DiffType.Date, scope, depth)}, {Expr(DiffType.Date, scope, depth)})";
        }
    }

    private string TimestampExpr(List<ScopeColumn> scope, int depth)
    {
        switch (Random.Next(4))
        {
            case 0:
                Features.Add("date_trunc");
                return $"date_trunc({Pick("'month'", "'day'", "'year'", "'hour'")}, {Expr(DiffType.Timestamp, scope, depth)})";
            case 1:
                Features.Add("cast date to timestamp");
                return $"CAST({Expr(DiffType.Date, scope, depth)} AS timestamp)";
            case 2:
                Features.Add("timestamp plus interval");
                return $"({Expr(DiffType.Timestamp, scope, depth)} {Pick("+", "-")} INTERVAL {Pick("'1 day'", "'2 hours'", "'1 month'", "'90 minutes'")})";
            default:
                Features.Add("date plus interval");
                return $"({Expr(DiffType.Date, scope, depth)} + INTERVAL '1 day')";
        }
    }
}
