using Kdb.Sql.Execution;
using Kdb.Sql.Syntax;
using Kdb.Sql.Types;

namespace Kdb.Sql.Planning;

/// <summary>A bound query: its plan and result columns.</summary>
internal sealed record BoundQuery(Operator Plan, IReadOnlyList<ResultColumn> Columns);

internal sealed partial class Binder
{
    private readonly BindContext _ctx;

    // Set for the next query bound when its outputs go straight into typed columns (INSERT ... SELECT).
    private bool _keepUnknownOutput;

    public Binder(BindContext ctx) => _ctx = ctx;

    public BindContext Context => _ctx;

    /// <summary>Binds a subquery under <paramref name="outer"/>, reporting whether it referenced any enclosing row.</summary>
    public (Operator Plan, IReadOnlyList<ResultColumn> Columns, bool Correlated) BindSubquery(SelectStatement query, Scope outer)
    {
        var bound = TrackOuterReferences(outer, () => BindQuery(query, outer), out var correlated);
        return (bound.Plan, bound.Columns, correlated);
    }

    /// <summary>Runs <paramref name="bind"/> and reports whether what it bound referenced a row of <paramref name="outer"/>'s chain.</summary>
    private T TrackOuterReferences<T>(Scope? outer, Func<T> bind, out bool correlated)
    {
        var saved = new List<(Scope, bool)>();
        for (var s = outer; s is not null; s = s.Parent)
        {
            saved.Add((s, s.ReferencedFromInside));
            s.ReferencedFromInside = false;
        }

        var result = bind();
        correlated = false;
        foreach (var (scope, was) in saved)
        {
            correlated |= scope.ReferencedFromInside;
            scope.ReferencedFromInside |= was;
        }

        return result;
    }

    public BoundQuery BindQuery(SelectStatement stmt, Scope? outer)
    {
        var keepUnknown = _keepUnknownOutput;
        _keepUnknownOutput = false;
        _ctx.PushCtes();
        try
        {
            BindWith(stmt.With, stmt.Recursive, stmt.Position, outer);

            BoundQuery body;
            var orderHandled = false;
            if (stmt.Body is SelectCore core)
            {
                body = BindCore(core, stmt.OrderBy, outer, stmt.Limit is not null, keepUnknown);
                orderHandled = true;
            }
            else
            {
                body = BindBody(stmt.Body, outer);
            }

            var plan = body.Plan;
            if (!orderHandled && stmt.OrderBy.Count > 0)
            {
                plan = new SortOp(plan, BindOutputOrder(stmt.OrderBy, body.Columns, outer));
            }

            if (stmt.Limit is not null || stmt.Offset is not null)
            {
                var limitScope = new ExprScope(Scope.Empty(outer), "LIMIT");
                var limit = stmt.Limit is null ? null : TypeResolver.Coerce(BindExpr(stmt.Limit, limitScope), SqlType.Int8, false, stmt.Limit.Position);
                var offset = stmt.Offset is null ? null : TypeResolver.Coerce(BindExpr(stmt.Offset, limitScope with { Clause = "OFFSET" }), SqlType.Int8, false, stmt.Offset.Position);
                plan = new LimitOp(plan, limit, offset);
            }

            return new BoundQuery(plan, body.Columns);
        }
        finally
        {
            _ctx.PopCtes();
        }
    }

    private static List<ResultColumn> RenameColumns(IReadOnlyList<ResultColumn> columns, IReadOnlyList<string>? names, string what, int position)
    {
        var result = new List<ResultColumn>(columns);
        if (names is null)
        {
            return result;
        }

        if (names.Count > columns.Count)
        {
            throw new SqlException(SqlState.InvalidColumnReference, $"\"{what}\" has {columns.Count} columns available but {names.Count} columns specified", position);
        }

        for (var i = 0; i < names.Count; i++)
        {
            result[i] = result[i] with { Name = names[i] };
        }

        return result;
    }

    private (BoundExpr, bool, bool)[] BindOutputOrder(IReadOnlyList<OrderItem> orderBy, IReadOnlyList<ResultColumn> columns, Scope? outer)
    {
        var scopeColumns = columns.Select((c, i) => new ScopeColumn(null, c.Name, c.Type, i)).ToList();
        var scope = new Scope(scopeColumns, outer);
        var keys = new (BoundExpr, bool, bool)[orderBy.Count];
        for (var i = 0; i < keys.Length; i++)
        {
            var item = orderBy[i];
            BoundExpr expr;
            if (item.Expression is LiteralExpr { Kind: LiteralKind.Integer } ordinal)
            {
                var n = int.Parse(ordinal.Text, System.Globalization.CultureInfo.InvariantCulture);
                if (n < 1 || n > columns.Count)
                {
                    throw new SqlException(SqlState.InvalidColumnReference, $"ORDER BY position {n} is not in select list", ordinal.Position);
                }

                expr = new ColumnExpr(n - 1, columns[n - 1].Type, columns[n - 1].Name);
            }
            else
            {
                expr = BindExpr(item.Expression, new ExprScope(scope, "ORDER BY"));
            }

            keys[i] = (expr, item.Descending, item.NullsFirst ?? item.Descending);
        }

        return keys;
    }

    private BoundQuery BindBody(QueryBody body, Scope? outer)
    {
        switch (body)
        {
            case SelectCore core:
                return BindCore(core, [], outer, false);
            case NestedQueryBody nested:
                return BindQuery(nested.Query, outer);
            case ValuesBody values:
                return BindValues(values, outer, null);
            case SetOperationBody setOp:
                {
                    var left = BindOperand(setOp.Left, outer);
                    var right = BindOperand(setOp.Right, outer);
                    if (left.Columns.Count != right.Columns.Count)
                    {
                        throw new SqlException(SqlState.SyntaxError, $"each {setOp.Operator.ToString().ToUpperInvariant()} query must have the same number of columns", setOp.Position);
                    }

                    var types = new SqlType[left.Columns.Count];
                    var leftExprs = new BoundExpr[types.Length];
                    var rightExprs = new BoundExpr[types.Length];
                    var needsCast = false;
                    for (var i = 0; i < types.Length; i++)
                    {
                        var lt = left.Columns[i].Type;
                        var rt = right.Columns[i].Type;
                        var common = TypeResolver.CommonType(lt, rt)
                            ?? throw new SqlException(SqlState.DatatypeMismatch, $"{setOp.Operator.ToString().ToUpperInvariant()} types {lt.DisplayName} and {rt.DisplayName} cannot be matched", setOp.Position);
                        if (common.Id == SqlTypeId.Unknown)
                        {
                            common = SqlType.Text;
                        }

                        types[i] = common;
                        leftExprs[i] = TypeResolver.Coerce(new ColumnExpr(i, lt, left.Columns[i].Name), common, false, setOp.Position);
                        rightExprs[i] = TypeResolver.Coerce(new ColumnExpr(i, rt, right.Columns[i].Name), common, false, setOp.Position);
                        needsCast |= lt.Id != common.Id || rt.Id != common.Id;
                    }

                    var leftPlan = needsCast ? new ProjectOp(left.Plan, leftExprs) : left.Plan;
                    var rightPlan = needsCast ? new ProjectOp(right.Plan, rightExprs) : right.Plan;
                    var columns = left.Columns.Select((c, i) => c with { Type = types[i] }).ToList();
                    return new BoundQuery(new SetOp(leftPlan, rightPlan, setOp.Operator, setOp.All), columns);
                }

            default:
                throw new SqlException(SqlState.FeatureNotSupported, "unsupported query form", body.Position);
        }
    }

    /// <summary>An operand of a set operation (its unknown-typed columns stay unknown until the operation resolves them).</summary>
    private BoundQuery BindOperand(QueryBody body, Scope? outer) => body is SelectCore core ? BindCore(core, [], outer, false, keepUnknown: true) : BindBody(body, outer);

    /// <summary>VALUES lists: columns named column1..n, typed by all rows together (or by <paramref name="targetTypes"/> for INSERT).</summary>
    public BoundQuery BindValues(ValuesBody values, Scope? outer, IReadOnlyList<SqlType>? targetTypes)
    {
        var width = values.Rows[0].Count;
        var es = new ExprScope(Scope.Empty(outer), "VALUES");
        var rows = new BoundExpr[values.Rows.Count][];
        for (var r = 0; r < rows.Length; r++)
        {
            if (values.Rows[r].Count != width)
            {
                throw new SqlException(SqlState.SyntaxError, "VALUES lists must all be the same length", values.Position);
            }

            rows[r] = new BoundExpr[width];
            for (var c = 0; c < width; c++)
            {
                rows[r][c] = values.Rows[r][c] is DefaultExpr && targetTypes is not null
                    ? new DefaultMarkerExpr(targetTypes[c])
                    : BindExpr(values.Rows[r][c], es);
            }
        }

        var types = new SqlType[width];
        for (var c = 0; c < width; c++)
        {
            if (targetTypes is not null)
            {
                types[c] = targetTypes[c];
                continue;
            }

            var t = SqlType.Unknown;
            for (var r = 0; r < rows.Length; r++)
            {
                t = TypeResolver.CommonType(t, rows[r][c].Type)
                    ?? throw new SqlException(SqlState.DatatypeMismatch, $"VALUES types {t.DisplayName} and {rows[r][c].Type.DisplayName} cannot be matched", values.Position);
            }

            types[c] = t.Id == SqlTypeId.Unknown ? SqlType.Text : t;
        }

        for (var r = 0; r < rows.Length; r++)
        {
            for (var c = 0; c < width; c++)
            {
                if (rows[r][c] is not DefaultMarkerExpr)
                {
                    rows[r][c] = TypeResolver.Coerce(rows[r][c], types[c], false, values.Rows[r][c].Position);
                }
            }
        }

        var columns = types.Select((t, i) => new ResultColumn("column" + (i + 1), t)).ToList();
        return new BoundQuery(new ValuesOp(rows, width), columns);
    }
}

/// <summary>DEFAULT in an INSERT's VALUES list: the insert replaces it with the column's default.</summary>
internal sealed class DefaultMarkerExpr(SqlType type) : BoundExpr(type)
{
    public override Value Eval(Value[] row, ExecContext ctx) => Value.Null;

    public override bool ReadsRow => false;

    public override string Describe() => "DEFAULT";
}
