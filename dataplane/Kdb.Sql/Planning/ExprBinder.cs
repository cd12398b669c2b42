using Kdb.Sql.Catalog;
using Kdb.Sql.Execution;
using Kdb.Sql.Syntax;
using Kdb.Sql.Types;

namespace Kdb.Sql.Planning;

/// <summary>Aggregation state of a SELECT: the GROUP BY keys and the aggregates found while binding its expressions.</summary>
internal sealed class AggBinding(Scope inputScope)
{
    public Scope InputScope { get; } = inputScope;

    public List<(string Text, BoundExpr Bound)> GroupKeys { get; } = [];

    public List<AggregateSpec> Aggregates { get; } = [];

    /// <summary>Columns of the post-aggregation row that a correlated subquery may reference by name.</summary>
    public Scope PostScope { get; set; } = Scope.Empty(null);
}

/// <summary>Window functions found while binding the select list and ORDER BY.</summary>
internal sealed class WindowBinding
{
    /// <summary>Width of the row the window step receives; known only once every aggregate is bound.</summary>
    public int BaseWidth { get; set; }

    public List<WindowFunc> Functions { get; } = [];

    public Dictionary<string, WindowSpec> Named { get; } = new(StringComparer.Ordinal);

    /// <summary>Set when a window key holds a set-returning function: the keys bind theirs here (a step below the window).</summary>
    public SrfBinding? KeySrf { get; set; }
}

/// <summary>Where an expression is bound: its scope and, in a grouped query, the aggregation state.</summary>
internal sealed record ExprScope(Scope Scope, string Clause, AggBinding? Agg = null, WindowBinding? Window = null)
{
    public bool InsideAggregate { get; init; }

    /// <summary>Where a set-returning function may appear (the select list and ORDER BY), its binding; null elsewhere.</summary>
    public SrfBinding? Srf { get; init; }

    /// <summary>The construct that forbids a set-returning function here (CASE, COALESCE), named in the error.</summary>
    public string? SrfBlockedBy { get; init; }
}

/// <summary>Binds expression syntax to typed, executable expressions.</summary>
internal sealed partial class Binder
{
    public BoundExpr BindExpr(Expr expr, ExprScope es)
    {
        if (es.Agg is { } agg && !es.InsideAggregate)
        {
            var grouped = TryGroupKey(expr, es, agg);
            if (grouped is not null)
            {
                return grouped;
            }
        }

        switch (expr)
        {
            case LiteralExpr literal:
                return BindLiteral(literal);
            case ParameterExpr parameter:
                return _ctx.Parameter(parameter.Number, parameter.Position);
            case ColumnRefExpr column:
                return BindColumn(column, es);
            case StarExpr star:
                throw new SqlException(SqlState.SyntaxError, "\"*\" is not allowed here", star.Position);
            case UnaryExpr unary:
                return BindUnary(unary, es);
            case BinaryExpr binary:
                return BindBinary(binary, es);
            case Syntax.IsNullExpr isNull:
                return new Execution.IsNullExpr(BindExpr(isNull.Operand, es), isNull.Negated);
            case Syntax.IsBoolExpr isBool:
                return new Execution.IsBoolExpr(CoerceBool(BindExpr(isBool.Operand, es), isBool.Position, "IS"), isBool.Value, isBool.Negated);
            case IsDistinctFromExpr distinct:
                {
                    var (l, r) = BindComparable(distinct.Left, distinct.Right, es, distinct.Position, "IS DISTINCT FROM");
                    return new IsDistinctExpr(l, r, distinct.Negated);
                }

            case BetweenExpr between:
                return BindBetween(between, es);
            case Syntax.InListExpr inList:
                return BindInList(inList, es);
            case Syntax.InSubqueryExpr inSub:
                return BindInSubquery(BindExpr(inSub.Operand, es), inSub.Query, BinaryOp.Equal, false, inSub.Negated, es, inSub.Position);
            case QuantifiedExpr quantified:
                return BindQuantified(quantified, es);
            case Syntax.ExistsExpr exists:
                {
                    var (plan, _, correlated) = BindSubquery(exists.Query, es.Scope);
                    return new Execution.ExistsExpr(plan, correlated, exists.Negated);
                }

            case Syntax.ScalarSubqueryExpr scalar:
                {
                    var (plan, columns, correlated) = BindSubquery(scalar.Query, es.Scope);
                    if (columns.Count != 1)
                    {
                        throw new SqlException(SqlState.SyntaxError, "subquery must return only one column", scalar.Position);
                    }

                    return new Execution.ScalarSubqueryExpr(plan, correlated, columns[0].Type);
                }

            case Syntax.ArraySubqueryExpr arraySubquery:
                {
                    var (plan, columns, correlated) = BindSubquery(arraySubquery.Query, es.Scope);
                    if (columns.Count != 1)
                    {
                        throw new SqlException(SqlState.SyntaxError, "subquery must return only one column", arraySubquery.Position);
                    }

                    var element = columns[0].Type.Id == SqlTypeId.Unknown ? SqlType.Text : columns[0].Type;
                    var arrayType = element.ArrayType ?? throw new SqlException(SqlState.FeatureNotSupported, $"arrays of {element.DisplayName} are not supported", arraySubquery.Position);
                    return new Execution.ArraySubqueryExpr(plan, correlated, arrayType);
                }

            case Syntax.CaseExpr caseExpr:
                return BindCase(caseExpr, es);
            case Syntax.CastExpr cast:
                return BindCast(cast, es);
            case CollateExpr collate:
                return BindExpr(collate.Operand, es);
            case FunctionCallExpr call:
                return BindCall(call, es);
            case ArrayExpr array:
                {
                    var elements = new BoundExpr[array.Elements.Count];
                    var elementType = SqlType.Unknown;
                    for (var i = 0; i < elements.Length; i++)
                    {
                        elements[i] = BindExpr(array.Elements[i], es);
                        elementType = TypeResolver.CommonType(elementType, elements[i].Type) ?? throw new SqlException(SqlState.DatatypeMismatch, "ARRAY types cannot be matched", array.Position);
                    }

                    if (elementType.Id == SqlTypeId.Unknown)
                    {
                        elementType = SqlType.Text;
                    }

                    var arrayType = elementType.ArrayType ?? throw new SqlException(SqlState.FeatureNotSupported, $"arrays of {elementType.DisplayName} are not supported", array.Position);
                    for (var i = 0; i < elements.Length; i++)
                    {
                        elements[i] = TypeResolver.Coerce(elements[i], arrayType.ElementType!.Value, false, array.Position);
                    }

                    return new ArrayCtorExpr(elements, arrayType);
                }

            case SubscriptExpr subscript:
                {
                    var operand = BindExpr(subscript.Operand, es);
                    var index = TypeResolver.Coerce(BindExpr(subscript.Index, es), SqlType.Int4, false, subscript.Position);
                    var element = operand.Type.ElementType ?? throw new SqlException(SqlState.DatatypeMismatch, $"cannot subscript type {operand.Type.DisplayName} because it is not an array", subscript.Position);
                    var zeroBased = operand.Type.Id is SqlTypeId.Int2Vector or SqlTypeId.OidVector;
                    return new FuncExpr("subscript", [operand, index], element, (a, _) =>
                    {
                        var items = a[0].AsArray;
                        var i = a[1].AsInt - (zeroBased ? 0 : 1);
                        return i >= 0 && i < items.Length ? items[i] : Value.Null;
                    }, strict: true, volatileFunction: false);
                }

            case RowExpr row:
                throw new SqlException(SqlState.FeatureNotSupported, "row constructors are not supported here", row.Position);
            case DefaultExpr def:
                throw new SqlException(SqlState.SyntaxError, "DEFAULT is not allowed in this context", def.Position);
            default:
                throw new SqlException(SqlState.FeatureNotSupported, $"expression {expr.GetType().Name} is not supported", expr.Position);
        }
    }

    private BoundExpr? TryGroupKey(Expr expr, ExprScope es, AggBinding agg)
    {
        if (expr is LiteralExpr or ParameterExpr)
        {
            return null;
        }

        if (expr is ColumnRefExpr column)
        {
            var resolved = ResolveColumn(column, agg.InputScope, out var depth);
            if (resolved is not null && depth == 0)
            {
                for (var i = 0; i < agg.GroupKeys.Count; i++)
                {
                    if (agg.GroupKeys[i].Bound is ColumnExpr key && key.Index == resolved.Index)
                    {
                        return new ColumnExpr(i, key.Type, resolved.Name);
                    }
                }

                throw new SqlException(SqlState.GroupingError, $"column \"{FormatColumn(column)}\" must appear in the GROUP BY clause or be used in an aggregate function", column.Position);
            }

            return null;
        }

        var text = SqlFormatter.Format(expr);
        for (var i = 0; i < agg.GroupKeys.Count; i++)
        {
            if (agg.GroupKeys[i].Text == text)
            {
                return new ColumnExpr(i, agg.GroupKeys[i].Bound.Type, text);
            }
        }

        return null;
    }

    private static string FormatColumn(ColumnRefExpr column) => string.Join('.', column.Parts);

    private static BoundExpr BindLiteral(LiteralExpr literal)
    {
        switch (literal.Kind)
        {
            case LiteralKind.Null:
                return new ConstExpr(Value.Null, SqlType.Unknown);
            case LiteralKind.Boolean:
                return new ConstExpr(Value.FromBool(literal.Text == "true"), SqlType.Bool);
            case LiteralKind.Integer:
                if (long.TryParse(literal.Text, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var n))
                {
                    return n is >= int.MinValue and <= int.MaxValue
                        ? new ConstExpr(Value.FromInt(n), SqlType.Int4)
                        : new ConstExpr(Value.FromInt(n), SqlType.Int8);
                }

                return new ConstExpr(ParseNumericLiteral(literal), SqlType.Numeric);
            case LiteralKind.Decimal:
                return new ConstExpr(ParseNumericLiteral(literal), SqlType.Numeric);
            default:
                return new ConstExpr(Value.FromText(literal.Text), SqlType.Unknown);
        }
    }

    private static Value ParseNumericLiteral(LiteralExpr literal)
    {
        try
        {
            return NumericMath.Parse(literal.Text);
        }
        catch (SqlException e)
        {
            throw new SqlException(e.SqlState, e.Message, literal.Position);
        }
    }

    private ScopeColumn? ResolveColumn(ColumnRefExpr column, Scope scope, out int depth)
    {
        string? qualifier;
        string name;
        switch (column.Parts.Count)
        {
            case 1:
                qualifier = null;
                name = column.Parts[0];
                break;
            case 2:
                qualifier = column.Parts[0];
                name = column.Parts[1];
                break;
            default:
                qualifier = column.Parts[^2];
                name = column.Parts[^1];
                break;
        }

        depth = 0;
        for (var s = scope; s is not null; s = s.Parent, depth++)
        {
            var found = s.Find(qualifier, name, column.Position);
            if (found is not null)
            {
                if (depth > 0)
                {
                    s.ReferencedFromInside = true;
                }

                return found;
            }
        }

        return null;
    }

    private BoundExpr BindColumn(ColumnRefExpr column, ExprScope es)
    {
        var found = ResolveColumn(column, es.Scope, out var depth);
        if (found is null)
        {
            if (column.Parts.Count >= 2 && !AnyScopeHasQualifier(es.Scope, column.Parts[^2]))
            {
                throw new SqlException(SqlState.UndefinedTable, $"missing FROM-clause entry for table \"{column.Parts[^2]}\"", column.Position);
            }

            throw new SqlException(SqlState.UndefinedColumn, $"column \"{FormatColumn(column)}\" does not exist", column.Position);
        }

        return depth == 0
            ? new ColumnExpr(found.Index, found.Type, found.Name)
            : new OuterColumnExpr(depth, found.Index, found.Type, (found.Qualifier is null ? string.Empty : found.Qualifier + ".") + found.Name);
    }

    private static bool AnyScopeHasQualifier(Scope scope, string qualifier)
    {
        for (var s = scope; s is not null; s = s.Parent)
        {
            if (s.HasQualifier(qualifier))
            {
                return true;
            }
        }

        return false;
    }

    private BoundExpr BindUnary(UnaryExpr unary, ExprScope es)
    {
        var operand = BindExpr(unary.Operand, es);
        switch (unary.Op)
        {
            case UnaryOp.Not:
                return new NotExpr(CoerceBool(operand, unary.Position, "NOT"));
            case UnaryOp.Plus:
                return operand;
            case UnaryOp.Negate:
                if (operand is ConstExpr { Type.Id: SqlTypeId.Unknown } || operand.Type.Id == SqlTypeId.Unknown)
                {
                    operand = TypeResolver.Coerce(operand, SqlType.Numeric, false, unary.Position);
                }

                if (!operand.Type.IsNumeric && operand.Type.Id != SqlTypeId.Interval)
                {
                    throw new SqlException(SqlState.UndefinedFunction, $"operator does not exist: - {operand.Type.DisplayName}", unary.Position);
                }

                if (operand is ConstExpr constant)
                {
                    return new ConstExpr(new NegateExpr(constant).Eval([], null!), operand.Type);
                }

                return new NegateExpr(operand);
            default:
                var bits = TypeResolver.Coerce(operand, operand.Type.Kind == ValueKind.Int ? operand.Type : SqlType.Int8, false, unary.Position);
                return new FuncExpr("~", [bits], bits.Type, (a, _) => Value.FromInt(~a[0].AsInt), true, false);
        }
    }

    public BoundExpr CoerceBool(BoundExpr expr, int position, string clause)
    {
        if (expr.Type.Id == SqlTypeId.Bool)
        {
            return expr;
        }

        if (expr.Type.Id == SqlTypeId.Unknown)
        {
            return TypeResolver.Coerce(expr, SqlType.Bool, false, position);
        }

        throw new SqlException(SqlState.DatatypeMismatch, $"argument of {clause} must be type boolean, not type {expr.Type.DisplayName}", position);
    }

    private (BoundExpr Left, BoundExpr Right) BindComparable(Expr leftSyntax, Expr rightSyntax, ExprScope es, int position, string op)
    {
        var left = BindExpr(leftSyntax, es);
        var right = BindExpr(rightSyntax, es);
        return Unify(left, right, position, op);
    }

    public static (BoundExpr Left, BoundExpr Right) Unify(BoundExpr left, BoundExpr right, int position, string op)
    {
        var common = TypeResolver.CommonType(left.Type, right.Type)
            ?? throw new SqlException(SqlState.UndefinedFunction, $"operator does not exist: {left.Type.DisplayName} {op} {right.Type.DisplayName}", position, hint: "No operator matches the given name and argument types. You might need to add explicit type casts.");
        if (common.Id == SqlTypeId.Unknown)
        {
            common = SqlType.Text;
        }

        // bpchar compares without trailing blanks, which is how it is stored: comparing as text is exact.
        if (common.Id is SqlTypeId.Bpchar or SqlTypeId.Varchar)
        {
            common = common with { Modifier = -1 };
        }

        return (TypeResolver.Coerce(left, common, false, position), TypeResolver.Coerce(right, common, false, position));
    }

    private BoundExpr BindBinary(BinaryExpr binary, ExprScope es)
    {
        switch (binary.Op)
        {
            case BinaryOp.And:
                return new AndExpr(CoerceBool(BindExpr(binary.Left, es), binary.Position, "AND"), CoerceBool(BindExpr(binary.Right, es), binary.Position, "AND"));
            case BinaryOp.Or:
                return new OrExpr(CoerceBool(BindExpr(binary.Left, es), binary.Position, "OR"), CoerceBool(BindExpr(binary.Right, es), binary.Position, "OR"));
            case BinaryOp.Equal or BinaryOp.NotEqual or BinaryOp.Less or BinaryOp.LessOrEqual or BinaryOp.Greater or BinaryOp.GreaterOrEqual:
                {
                    var (l, r) = BindComparable(binary.Left, binary.Right, es, binary.Position, CompareExpr.Symbol(binary.Op));
                    return new CompareExpr(binary.Op, l, r);
                }

            case BinaryOp.Like or BinaryOp.NotLike or BinaryOp.ILike or BinaryOp.NotILike:
                {
                    var text = TextOperand(BindExpr(binary.Left, es), binary.Position);
                    var pattern = TextOperand(BindExpr(binary.Right, es), binary.Position);
                    var escape = binary.Escape is null ? null : TextOperand(BindExpr(binary.Escape, es), binary.Position);
                    return new LikeExpr(text, pattern, escape, binary.Op is BinaryOp.ILike or BinaryOp.NotILike, binary.Op is BinaryOp.NotLike or BinaryOp.NotILike);
                }

            case BinaryOp.RegexMatch or BinaryOp.NotRegexMatch or BinaryOp.RegexMatchInsensitive or BinaryOp.NotRegexMatchInsensitive:
                return new RegexExpr(
                    TextOperand(BindExpr(binary.Left, es), binary.Position),
                    TextOperand(BindExpr(binary.Right, es), binary.Position),
                    binary.Op is BinaryOp.RegexMatchInsensitive or BinaryOp.NotRegexMatchInsensitive,
                    binary.Op is BinaryOp.NotRegexMatch or BinaryOp.NotRegexMatchInsensitive);
            case BinaryOp.Concat:
                {
                    var l = BindExpr(binary.Left, es);
                    var r = BindExpr(binary.Right, es);
                    if (l.Type.Id == SqlTypeId.Jsonb && r.Type.Id is SqlTypeId.Jsonb or SqlTypeId.Unknown)
                    {
                        throw new SqlException(SqlState.FeatureNotSupported, "jsonb || jsonb is not supported", binary.Position);
                    }

                    if (!l.Type.IsString && !r.Type.IsString && l.Type.Id != SqlTypeId.Unknown && r.Type.Id != SqlTypeId.Unknown)
                    {
                        throw new SqlException(SqlState.UndefinedFunction, $"operator does not exist: {l.Type.DisplayName} || {r.Type.DisplayName}", binary.Position);
                    }

                    return new FuncExpr("||", [ToText(l), ToText(r)], SqlType.Text, (a, _) => Value.FromText(string.Concat(a[0].AsText, a[1].AsText)), true, false);
                }

            case BinaryOp.JsonGet or BinaryOp.JsonGetText:
                {
                    var json = BindExpr(binary.Left, es);
                    if (json.Type.Id == SqlTypeId.Unknown)
                    {
                        json = TypeResolver.Coerce(json, SqlType.Jsonb, false, binary.Position);
                    }

                    if (json.Type.Id is not (SqlTypeId.Jsonb or SqlTypeId.Json))
                    {
                        throw new SqlException(SqlState.UndefinedFunction, $"operator does not exist: {json.Type.DisplayName} -> unknown", binary.Position);
                    }

                    var selector = BindExpr(binary.Right, es);
                    selector = selector.Type.Kind == ValueKind.Int ? selector : TypeResolver.Coerce(selector, SqlType.Text, false, binary.Position);
                    var asText = binary.Op == BinaryOp.JsonGetText;
                    return new FuncExpr(asText ? "->>" : "->", [json, selector], asText ? SqlType.Text : json.Type, (a, _) =>
                    {
                        var result = Jsonb.Get(a[0].AsText, a[1], asText);
                        return Value.FromText(result);
                    }, true, false);
                }

            case BinaryOp.JsonContains:
                {
                    var l = TypeResolver.Coerce(BindExpr(binary.Left, es), SqlType.Jsonb, false, binary.Position);
                    var r = TypeResolver.Coerce(BindExpr(binary.Right, es), SqlType.Jsonb, false, binary.Position);
                    return new FuncExpr("@>", [l, r], SqlType.Bool, (a, _) => Value.FromBool(Jsonb.Contains(a[0].AsText, a[1].AsText)), true, false);
                }

            case BinaryOp.JsonHasKey:
                {
                    var l = TypeResolver.Coerce(BindExpr(binary.Left, es), SqlType.Jsonb, false, binary.Position);
                    var r = TypeResolver.Coerce(BindExpr(binary.Right, es), SqlType.Text, false, binary.Position);
                    return new FuncExpr("?", [l, r], SqlType.Bool, (a, _) => Value.FromBool(Jsonb.HasKey(a[0].AsText, a[1].AsText)), true, false);
                }

            default:
                return BindArithmetic(binary, es);
        }
    }

    private static BoundExpr ToText(BoundExpr expr) =>
        expr.Type.Id == SqlTypeId.Text ? expr
        : expr.Type.Id == SqlTypeId.Unknown ? TypeResolver.Coerce(expr, SqlType.Text, false, 0)
        : new Execution.CastExpr(expr, SqlType.Text, true);

    private static BoundExpr TextOperand(BoundExpr expr, int position) =>
        expr.Type.IsString || expr.Type.Id == SqlTypeId.Unknown
            ? TypeResolver.Coerce(expr, SqlType.Text, false, position)
            : throw new SqlException(SqlState.UndefinedFunction, $"operator does not exist: {expr.Type.DisplayName} ~~ unknown", position, hint: "You might need to add explicit type casts.");

    private BoundExpr BindArithmetic(BinaryExpr binary, ExprScope es)
    {
        var l = BindExpr(binary.Left, es);
        var r = BindExpr(binary.Right, es);
        var op = binary.Op;
        var lt = l.Type;
        var rt = r.Type;

        // Date and time arithmetic first: an unknown operand takes the type the other side implies.
        if (lt.Category is 'D' or 'T' || rt.Category is 'D' or 'T')
        {
            return BindTemporal(binary, l, r);
        }

        if (lt.Id == SqlTypeId.Unknown && rt.Id == SqlTypeId.Unknown)
        {
            l = TypeResolver.Coerce(l, SqlType.Numeric, false, binary.Position);
            r = TypeResolver.Coerce(r, SqlType.Numeric, false, binary.Position);
        }

        var common = TypeResolver.CommonType(l.Type, r.Type);
        if (common is null || !common.Value.IsNumeric)
        {
            throw new SqlException(SqlState.UndefinedFunction, $"operator does not exist: {l.Type.DisplayName} {OpText(op)} {r.Type.DisplayName}", binary.Position, hint: "No operator matches the given name and argument types. You might need to add explicit type casts.");
        }

        var type = common.Value with { Modifier = -1 };
        if (type.Id is SqlTypeId.Oid or SqlTypeId.Regclass or SqlTypeId.Regtype)
        {
            type = SqlType.Int8;
        }

        if (op == BinaryOp.Power)
        {
            type = type.Id == SqlTypeId.Numeric ? SqlType.Numeric : SqlType.Float8;
        }

        l = TypeResolver.Coerce(l, type, false, binary.Position);
        r = TypeResolver.Coerce(r, type, false, binary.Position);
        var kind = type.Kind switch
        {
            ValueKind.Int => ArithKind.Int,
            ValueKind.Float => ArithKind.Float,
            _ => ArithKind.Numeric,
        };
        if (op is BinaryOp.BitAnd or BinaryOp.BitOr or BinaryOp.ShiftLeft or BinaryOp.ShiftRight && kind != ArithKind.Int)
        {
            throw new SqlException(SqlState.UndefinedFunction, $"operator does not exist: {type.DisplayName} {OpText(op)} {type.DisplayName}", binary.Position);
        }

        var expr = new ArithExpr(op, kind, l, r, type);
        return l is ConstExpr && r is ConstExpr ? new ConstExpr(expr.Eval([], null!), type) : expr;
    }

    private static string OpText(BinaryOp op) => op switch
    {
        BinaryOp.Add => "+",
        BinaryOp.Subtract => "-",
        BinaryOp.Multiply => "*",
        BinaryOp.Divide => "/",
        BinaryOp.Modulo => "%",
        BinaryOp.Power => "^",
        BinaryOp.BitAnd => "&",
        BinaryOp.BitOr => "|",
        BinaryOp.ShiftLeft => "<<",
        _ => ">>",
    };

    private static BoundExpr BindTemporal(BinaryExpr binary, BoundExpr l, BoundExpr r)
    {
        var op = binary.Op;
        var p = binary.Position;

        // Resolve unknown literals by the other operand, as PostgreSQL's operator lookup does.
        if (l.Type.Id == SqlTypeId.Unknown)
        {
            l = TypeResolver.Coerce(l, r.Type.Category == 'T' && op is BinaryOp.Add ? SqlType.Timestamp : r.Type.Id == SqlTypeId.Date && op == BinaryOp.Subtract ? SqlType.Date : r.Type, false, p);
        }

        if (r.Type.Id == SqlTypeId.Unknown)
        {
            var target = l.Type.Id switch
            {
                SqlTypeId.Date when op == BinaryOp.Subtract => SqlType.Date,
                SqlTypeId.Date => SqlType.Interval,
                SqlTypeId.Interval when op is BinaryOp.Multiply or BinaryOp.Divide => SqlType.Float8,
                _ when op == BinaryOp.Subtract && l.Type.Category == 'D' => l.Type,
                _ => SqlType.Interval,
            };
            r = TypeResolver.Coerce(r, target, false, p);
        }

        var lt = l.Type.Id;
        var rt = r.Type.Id;
        (ArithKind Kind, SqlType Type)? resolved = (op, lt, rt) switch
        {
            (BinaryOp.Add, SqlTypeId.Date, SqlTypeId.Int4 or SqlTypeId.Int2 or SqlTypeId.Int8) => (ArithKind.DatePlusInt, SqlType.Date),
            (BinaryOp.Add, SqlTypeId.Int4 or SqlTypeId.Int2 or SqlTypeId.Int8, SqlTypeId.Date) => null,
            (BinaryOp.Subtract, SqlTypeId.Date, SqlTypeId.Int4 or SqlTypeId.Int2 or SqlTypeId.Int8) => (ArithKind.DateMinusInt, SqlType.Date),
            (BinaryOp.Subtract, SqlTypeId.Date, SqlTypeId.Date) => (ArithKind.DateMinusDate, SqlType.Int4),
            (BinaryOp.Add, SqlTypeId.Date, SqlTypeId.Interval) => (ArithKind.DatePlusInterval, SqlType.Timestamp),
            (BinaryOp.Subtract, SqlTypeId.Date, SqlTypeId.Interval) => (ArithKind.DateMinusInterval, SqlType.Timestamp),
            (BinaryOp.Add, SqlTypeId.Timestamp or SqlTypeId.TimestampTz, SqlTypeId.Interval) => (ArithKind.TimestampPlusInterval, l.Type),
            (BinaryOp.Subtract, SqlTypeId.Timestamp or SqlTypeId.TimestampTz, SqlTypeId.Interval) => (ArithKind.TimestampMinusInterval, l.Type),
            (BinaryOp.Subtract, SqlTypeId.Timestamp or SqlTypeId.TimestampTz or SqlTypeId.Date, SqlTypeId.Timestamp or SqlTypeId.TimestampTz or SqlTypeId.Date) => (ArithKind.TimestampMinusTimestamp, SqlType.Interval),
            (BinaryOp.Add, SqlTypeId.Interval, SqlTypeId.Interval) => (ArithKind.IntervalPlusInterval, SqlType.Interval),
            (BinaryOp.Subtract, SqlTypeId.Interval, SqlTypeId.Interval) => (ArithKind.IntervalMinusInterval, SqlType.Interval),
            (BinaryOp.Multiply, SqlTypeId.Interval, _) when r.Type.IsNumeric => (ArithKind.IntervalTimesNumber, SqlType.Interval),
            (BinaryOp.Multiply, _, SqlTypeId.Interval) when l.Type.IsNumeric => (ArithKind.IntervalTimesNumber, SqlType.Interval),
            (BinaryOp.Divide, SqlTypeId.Interval, _) when r.Type.IsNumeric => (ArithKind.IntervalDivNumber, SqlType.Interval),
            _ => null,
        };

        if (resolved is null && op == BinaryOp.Add && rt == SqlTypeId.Date && l.Type.IsNumeric)
        {
            return new ArithExpr(op, ArithKind.DatePlusInt, r, l, SqlType.Date);
        }

        if (resolved is null && op == BinaryOp.Add && lt == SqlTypeId.Interval && r.Type.Category == 'D')
        {
            return BindTemporal(binary with { Left = binary.Right, Right = binary.Left }, r, l);
        }

        if (resolved is null)
        {
            throw new SqlException(SqlState.UndefinedFunction, $"operator does not exist: {l.Type.DisplayName} {OpText(op)} {r.Type.DisplayName}", p, hint: "No operator matches the given name and argument types. You might need to add explicit type casts.");
        }

        if (resolved.Value.Kind == ArithKind.TimestampMinusTimestamp)
        {
            var common = lt == SqlTypeId.TimestampTz || rt == SqlTypeId.TimestampTz ? SqlType.TimestampTz : SqlType.Timestamp;
            l = TypeResolver.Coerce(l, common, false, p);
            r = TypeResolver.Coerce(r, common, false, p);
        }

        return new ArithExpr(op, resolved.Value.Kind, l, r, resolved.Value.Type);
    }

    private BoundExpr BindBetween(BetweenExpr between, ExprScope es)
    {
        var operand = BindExpr(between.Operand, es);
        var low = BindExpr(between.Low, es);
        var high = BindExpr(between.High, es);
        var (o1, l) = Unify(operand, low, between.Position, ">=");
        var (o2, h) = Unify(operand, high, between.Position, "<=");
        BoundExpr result = new AndExpr(new CompareExpr(BinaryOp.GreaterOrEqual, o1, l), new CompareExpr(BinaryOp.LessOrEqual, o2, h));
        if (between.Symmetric)
        {
            result = new OrExpr(result, new AndExpr(new CompareExpr(BinaryOp.GreaterOrEqual, o1, h), new CompareExpr(BinaryOp.LessOrEqual, o2, l)));
        }

        return between.Negated ? new NotExpr(result) : result;
    }

    private BoundExpr BindInList(Syntax.InListExpr inList, ExprScope es)
    {
        var operand = BindExpr(inList.Operand, es);
        var items = new BoundExpr[inList.Items.Count];
        var common = operand.Type;
        for (var i = 0; i < items.Length; i++)
        {
            items[i] = BindExpr(inList.Items[i], es);
            common = TypeResolver.CommonType(common, items[i].Type)
                ?? throw new SqlException(SqlState.UndefinedFunction, $"operator does not exist: {operand.Type.DisplayName} = {items[i].Type.DisplayName}", inList.Position);
        }

        if (common.Id == SqlTypeId.Unknown)
        {
            common = SqlType.Text;
        }

        common = common with { Modifier = -1 };
        for (var i = 0; i < items.Length; i++)
        {
            items[i] = TypeResolver.Coerce(items[i], common, false, inList.Position);
        }

        return new Execution.InListExpr(TypeResolver.Coerce(operand, common, false, inList.Position), items, inList.Negated);
    }

    private BoundExpr BindInSubquery(BoundExpr operand, SelectStatement query, BinaryOp op, bool all, bool negated, ExprScope es, int position)
    {
        var (plan, columns, correlated) = BindSubquery(query, es.Scope);
        if (columns.Count != 1)
        {
            throw new SqlException(SqlState.SyntaxError, "subquery has too many columns", position);
        }

        var common = TypeResolver.CommonType(operand.Type, columns[0].Type)
            ?? throw new SqlException(SqlState.UndefinedFunction, $"operator does not exist: {operand.Type.DisplayName} = {columns[0].Type.DisplayName}", position);
        if (common.Id == SqlTypeId.Unknown)
        {
            common = SqlType.Text;
        }

        if (columns[0].Type.Id != common.Id)
        {
            plan = new ProjectOp(plan, [TypeResolver.Coerce(new ColumnExpr(0, columns[0].Type, columns[0].Name), common, false, position)]);
        }

        return new Execution.InSubqueryExpr(TypeResolver.Coerce(operand, common, false, position), plan, correlated, op, all, negated);
    }

    private BoundExpr BindQuantified(QuantifiedExpr quantified, ExprScope es)
    {
        var operand = BindExpr(quantified.Operand, es);
        if (quantified.Query is not null)
        {
            return BindInSubquery(operand, quantified.Query, quantified.Op, quantified.All, false, es, quantified.Position);
        }

        var array = BindExpr(quantified.Array!, es);
        var element = array.Type.ElementType ?? (array.Type.Id == SqlTypeId.Unknown ? (operand.Type.ArrayType is { } at ? at.ElementType : null) : null)
            ?? throw new SqlException(SqlState.UndefinedFunction, $"op ANY/ALL (array) requires array on right side", quantified.Position);
        if (array.Type.Id == SqlTypeId.Unknown)
        {
            array = TypeResolver.Coerce(array, element.ArrayType!.Value, false, quantified.Position);
        }

        var (o, _) = Unify(operand, new ConstExpr(Value.Null, element), quantified.Position, CompareExpr.Symbol(quantified.Op));
        var op = quantified.Op;
        var all = quantified.All;
        return new FuncExpr(all ? "ALL" : "ANY", [o, array], SqlType.Bool, (a, _) =>
        {
            if (a[0].IsNull || a[1].IsNull)
            {
                return Value.Null;
            }

            var sawNull = false;
            foreach (var item in a[1].AsArray)
            {
                if (item.IsNull)
                {
                    sawNull = true;
                    continue;
                }

                var matches = CompareExpr.Test(op, Value.Compare(a[0], item));
                if (all && !matches)
                {
                    return Value.False;
                }

                if (!all && matches)
                {
                    return Value.True;
                }
            }

            return sawNull ? Value.Null : Value.FromBool(all);
        }, strict: false, volatileFunction: false);
    }

    private BoundExpr BindCase(Syntax.CaseExpr caseExpr, ExprScope es)
    {
        es = es.Srf is null ? es : es with { Srf = null, SrfBlockedBy = "CASE" };
        var operand = caseExpr.Operand is null ? null : BindExpr(caseExpr.Operand, es);
        var whens = new List<BoundExpr>();
        var thens = new List<BoundExpr>();
        foreach (var arm in caseExpr.Whens)
        {
            whens.Add(BindExpr(arm.Condition, es));
            thens.Add(BindExpr(arm.Result, es));
        }

        var otherwise = caseExpr.Else is null ? null : BindExpr(caseExpr.Else, es);
        var resultType = SqlType.Unknown;
        foreach (var then in thens.Append(otherwise).OfType<BoundExpr>())
        {
            resultType = TypeResolver.CommonType(resultType, then.Type)
                ?? throw new SqlException(SqlState.DatatypeMismatch, $"CASE types {resultType.DisplayName} and {then.Type.DisplayName} cannot be matched", caseExpr.Position);
        }

        if (resultType.Id == SqlTypeId.Unknown)
        {
            resultType = SqlType.Text;
        }

        var arms = new (BoundExpr, BoundExpr)[whens.Count];
        for (var i = 0; i < arms.Length; i++)
        {
            BoundExpr when;
            if (operand is null)
            {
                when = CoerceBool(whens[i], caseExpr.Position, "CASE/WHEN");
            }
            else
            {
                (operand, when) = Unify(operand, whens[i], caseExpr.Position, "=");
            }

            arms[i] = (when, TypeResolver.Coerce(thens[i], resultType, false, caseExpr.Position));
        }

        return new Execution.CaseExpr(operand, arms, otherwise is null ? null : TypeResolver.Coerce(otherwise, resultType, false, caseExpr.Position), resultType);
    }

    private BoundExpr BindCast(Syntax.CastExpr cast, ExprScope es)
    {
        var target = TypeResolver.FromTypeName(cast.Type);
        var operand = BindExpr(cast.Operand, es);
        if (target.Id == SqlTypeId.Regclass && operand is ConstExpr { Value.Kind: ValueKind.Text } name)
        {
            var oid = SystemCatalog.ResolveRelation(_ctx.Catalog, _ctx.Session, name.Value.AsText)
                ?? throw new SqlException(SqlState.UndefinedTable, $"relation \"{name.Value.AsText}\" does not exist", cast.Position);
            return new ConstExpr(Value.FromInt(oid), target);
        }

        if (target.Id == SqlTypeId.Regtype && operand is ConstExpr { Value.Kind: ValueKind.Text } typeText)
        {
            var type = TypeResolver.FromTypeName(SqlParser.ParseTypeName(typeText.Value.AsText));
            return new ConstExpr(Value.FromInt((long)type.Id), target);
        }

        if (target.Id is SqlTypeId.Text or SqlTypeId.Varchar or SqlTypeId.Name && operand.Type.Id is SqlTypeId.Regclass or SqlTypeId.Regtype or SqlTypeId.Regnamespace)
        {
            var kind = operand.Type.Id;
            // The name comes from the catalog the statement runs on.
            return new FuncExpr("regname", [operand], target, (a, ctx) => Value.FromText(RegValues.Name(ctx.Catalog, ctx.Session, a[0], kind)), true, false);
        }

        return TypeResolver.Coerce(operand, target, explicitCast: true, cast.Position);
    }
}
