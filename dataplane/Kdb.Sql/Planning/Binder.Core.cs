using Kdb.Sql.Execution;
using Kdb.Sql.Syntax;
using Kdb.Sql.Types;

namespace Kdb.Sql.Planning;

internal sealed partial class Binder
{
    // keepUnknown: for an operand of a set operation an unknown-typed output (NULL, a string literal) takes the
    // operation's common type, as in PostgreSQL, instead of text.
    private BoundQuery BindCore(SelectCore core, IReadOnlyList<OrderItem> orderBy, Scope? outer, bool hasLimit, bool keepUnknown = false)
    {
        var hasAgg = core.GroupBy.Count > 0 || core.Having is not null
            || core.Items.Any(i => ContainsAggregate(i.Expression))
            || orderBy.Any(o => ContainsAggregate(o.Expression))
            || core.Windows.Any(w => WalkWindow(w.Spec, e => e is FunctionCallExpr { Over: null } call && Functions.IsAggregate(call.SimpleName)));
        var hasWindow = core.Items.Any(i => ContainsWindow(i.Expression)) || orderBy.Any(o => ContainsWindow(o.Expression));

        // A request for the primary-key order of a lone table lets the scan deliver it (no sort).
        var preferred = !hasAgg && !hasWindow && !core.Distinct && orderBy.Count > 0 ? orderBy : null;
        var (input, inputScope, orderSatisfied) = BindFrom(core.From, core.Where, outer, preferred);

        var windowBinding = hasWindow ? new WindowBinding() : null;
        AggBinding? agg = null;
        ExprScope selectScope;
        if (hasAgg)
        {
            agg = new AggBinding(inputScope);
            // A set-returning function in GROUP BY runs below the grouping, as in PostgreSQL: each input row expands
            // first, and the select list then matches the function by its text as any other key.
            var keySrf = new SrfBinding();
            var keyScope = new ExprScope(inputScope, "GROUP BY") { Srf = keySrf };
            foreach (var groupExpr in core.GroupBy)
            {
                var target = ResolveGroupTarget(groupExpr, core, inputScope);
                var bound = BindExpr(target, keyScope);
                agg.GroupKeys.Add((SqlFormatter.Format(target), bound));
            }

            input = keySrf.Plan(input);

            var post = new List<ScopeColumn>();
            for (var i = 0; i < agg.GroupKeys.Count; i++)
            {
                if (agg.GroupKeys[i].Bound is ColumnExpr column)
                {
                    var source = inputScope.Columns.First(c => c.Index == column.Index);
                    post.Add(source with { Index = i });
                }
            }

            agg.PostScope = new Scope(post, outer);
            selectScope = new ExprScope(agg.PostScope, "SELECT", agg, windowBinding);
        }
        else
        {
            selectScope = new ExprScope(inputScope, "SELECT", null, windowBinding);
        }

        var srfBinding = new SrfBinding();
        selectScope = selectScope with { Srf = srfBinding };
        if (windowBinding is not null && WindowKeySrfCalls(core, orderBy) is { Count: > 0 } keyCalls)
        {
            // A set-returning function in a window's PARTITION BY / ORDER BY expands the rows below the window, as in
            // PostgreSQL. Bound first, so that the same function in the select list reads those rows instead of
            // expanding again above the window (PostgreSQL computes one expression once).
            windowBinding.KeySrf = new SrfBinding();
            var keyScope = selectScope with { Window = null, Srf = windowBinding.KeySrf, Clause = "window definitions" };
            foreach (var call in keyCalls)
            {
                _ = BindExpr(call, keyScope);
            }
        }

        if (windowBinding is not null)
        {
            foreach (var window in core.Windows)
            {
                windowBinding.Named[window.Name] = window.Spec;
            }
        }

        // The select list, with * expanded.
        var exprs = new List<BoundExpr>();
        var columns = new List<ResultColumn>();
        var itemTexts = new List<string>();
        foreach (var item in core.Items)
        {
            if (item.Expression is StarExpr star)
            {
                if (hasAgg)
                {
                    ExpandStar(star, inputScope, agg, exprs, columns, itemTexts);
                }
                else
                {
                    ExpandStar(star, inputScope, null, exprs, columns, itemTexts);
                }

                continue;
            }

            var bound = BindExpr(item.Expression, selectScope);
            if (bound.Type.Id == SqlTypeId.Unknown && !keepUnknown)
            {
                // PostgreSQL 10+ resolves an unknown-typed output column (a bare string literal) as text.
                bound = TypeResolver.Coerce(bound, SqlType.Text, false, item.Expression.Position);
            }

            exprs.Add(bound);
            columns.Add(new ResultColumn(item.Alias ?? ColumnName(item.Expression), bound.Type, SourceOid(item.Expression, bound, inputScope, hasAgg).Oid, SourceOid(item.Expression, bound, inputScope, hasAgg).AttNum));
            itemTexts.Add(SqlFormatter.Format(item.Expression));
        }

        BoundExpr? having = null;
        if (core.Having is not null)
        {
            having = CoerceBool(BindExpr(core.Having, selectScope with { Clause = "HAVING", Window = null, Srf = null }), core.Having.Position, "HAVING");
        }

        // ORDER BY: output ordinals and aliases first, then any expression (as a hidden column).
        var visible = exprs.Count;
        var sortKeys = new List<(BoundExpr, bool, bool)>();
        foreach (var item in orderBy)
        {
            var index = ResolveOutputReference(item.Expression, columns, itemTexts, inputScope);
            if (index < 0)
            {
                if (core.Distinct && core.DistinctOn is null)
                {
                    throw new SqlException(SqlState.InvalidColumnReference, "for SELECT DISTINCT, ORDER BY expressions must appear in select list", item.Expression.Position);
                }

                exprs.Add(BindExpr(item.Expression, selectScope with { Clause = "ORDER BY" }));
                index = exprs.Count - 1;
            }

            sortKeys.Add((new ColumnExpr(index, exprs[index].Type, "col" + index), item.Descending, item.NullsFirst ?? item.Descending));
        }

        var distinctOn = new List<BoundExpr>();
        if (core.DistinctOn is not null)
        {
            foreach (var on in core.DistinctOn)
            {
                var index = ResolveOutputReference(on, columns, itemTexts, inputScope);
                if (index < 0)
                {
                    exprs.Add(BindExpr(on, selectScope with { Clause = "DISTINCT ON" }));
                    index = exprs.Count - 1;
                }

                distinctOn.Add(new ColumnExpr(index, exprs[index].Type, "col" + index));
            }
        }

        // Assemble: input → aggregate → HAVING → window → project → DISTINCT → sort → trim.
        var plan = input;
        if (agg is not null)
        {
            plan = new AggregateOp(plan, agg.GroupKeys.Select(k => k.Bound).ToArray(), agg.Aggregates.ToArray());
            if (having is not null)
            {
                plan = new FilterOp(plan, having);
            }
        }

        if (windowBinding is not null)
        {
            plan = windowBinding.KeySrf?.Plan(plan) ?? plan;
            windowBinding.BaseWidth = plan.Width;
            plan = new WindowOp(plan, windowBinding.Functions.ToArray());
        }

        plan = srfBinding.Plan(plan);

        plan = new ProjectOp(plan, exprs.ToArray());
        if (distinctOn.Count > 0)
        {
            var keys = distinctOn.Select(d => (d, false, false)).ToList();
            for (var i = 0; i < sortKeys.Count; i++)
            {
                if (i < keys.Count)
                {
                    keys[i] = (keys[i].d, sortKeys[i].Item2, sortKeys[i].Item3);
                }
                else
                {
                    keys.Add(((ColumnExpr)sortKeys[i].Item1, sortKeys[i].Item2, sortKeys[i].Item3));
                }
            }

            plan = new DistinctOnOp(new SortOp(plan, keys.Select(k => ((BoundExpr)k.d, k.Item2, k.Item3)).ToArray()), distinctOn.ToArray());
        }
        else
        {
            if (core.Distinct)
            {
                plan = new DistinctOp(plan, visible);
            }

            if (sortKeys.Count > 0 && !orderSatisfied)
            {
                plan = new SortOp(plan, sortKeys.ToArray());
            }
        }

        if (exprs.Count > visible)
        {
            var trim = new BoundExpr[visible];
            for (var i = 0; i < visible; i++)
            {
                trim[i] = new ColumnExpr(i, exprs[i].Type, columns[i].Name);
            }

            plan = new ProjectOp(plan, trim);
        }

        _ = hasLimit;
        return new BoundQuery(plan, columns);
    }

    private (uint Oid, short AttNum) SourceOid(Expr expr, BoundExpr bound, Scope inputScope, bool hasAgg)
    {
        if (expr is ColumnRefExpr column && !hasAgg && bound is ColumnExpr)
        {
            var found = ResolveColumn(column, inputScope, out var depth);
            if (found is not null && depth == 0)
            {
                return (found.TableOid, found.AttNum);
            }
        }

        return (0, 0);
    }

    private static Expr ResolveGroupTarget(Expr groupExpr, SelectCore core, Scope inputScope)
    {
        if (groupExpr is LiteralExpr { Kind: LiteralKind.Integer } ordinal)
        {
            var n = int.Parse(ordinal.Text, System.Globalization.CultureInfo.InvariantCulture);
            if (n < 1 || n > core.Items.Count || core.Items[n - 1].Expression is StarExpr)
            {
                throw new SqlException(SqlState.InvalidColumnReference, $"GROUP BY position {n} is not in select list", ordinal.Position);
            }

            return core.Items[n - 1].Expression;
        }

        // A bare name that is an output alias and not an input column groups by that select item.
        if (groupExpr is ColumnRefExpr { Parts.Count: 1 } name && inputScope.Find(null, name.Column, name.Position) is null)
        {
            foreach (var item in core.Items)
            {
                if (item.Alias == name.Column)
                {
                    return item.Expression;
                }
            }
        }

        return groupExpr;
    }

    private int ResolveOutputReference(Expr expr, List<ResultColumn> columns, List<string> itemTexts, Scope inputScope)
    {
        if (expr is LiteralExpr { Kind: LiteralKind.Integer } ordinal)
        {
            var n = int.Parse(ordinal.Text, System.Globalization.CultureInfo.InvariantCulture);
            if (n < 1 || n > columns.Count)
            {
                throw new SqlException(SqlState.InvalidColumnReference, $"ORDER BY position {n} is not in select list", ordinal.Position);
            }

            return n - 1;
        }

        if (expr is ColumnRefExpr { Parts.Count: 1 } name)
        {
            var matches = columns.FindAll(c => c.Name == name.Column);
            if (matches.Count > 1 && itemTexts.Count(t => t == SqlFormatter.Format(expr)) != matches.Count)
            {
                throw new SqlException(SqlState.AmbiguousColumn, $"ORDER BY \"{name.Column}\" is ambiguous", name.Position);
            }

            var index = columns.FindIndex(c => c.Name == name.Column);
            if (index >= 0 && index < itemTexts.Count)
            {
                return index;
            }
        }

        var text = SqlFormatter.Format(expr);
        return itemTexts.IndexOf(text);
    }

    private void ExpandStar(StarExpr star, Scope scope, AggBinding? agg, List<BoundExpr> exprs, List<ResultColumn> columns, List<string> texts)
    {
        var any = false;
        foreach (var column in scope.Columns)
        {
            if (column.System || (star.Qualifier is null && column.HiddenFromStar) || (star.Qualifier is not null && column.Qualifier != star.Qualifier))
            {
                continue;
            }

            any = true;
            BoundExpr bound = new ColumnExpr(column.Index, column.Type, column.Name);
            if (agg is not null)
            {
                var key = agg.GroupKeys.FindIndex(k => k.Bound is ColumnExpr c && c.Index == column.Index);
                if (key < 0)
                {
                    throw new SqlException(SqlState.GroupingError, $"column \"{column.Qualifier}.{column.Name}\" must appear in the GROUP BY clause or be used in an aggregate function", star.Position);
                }

                bound = new ColumnExpr(key, column.Type, column.Name);
            }

            exprs.Add(bound);
            columns.Add(new ResultColumn(column.Name, column.Type, column.TableOid, column.AttNum));
            texts.Add(column.Qualifier is null ? SqlFormatter.QuoteIdentifier(column.Name) : SqlFormatter.QuoteIdentifier(column.Qualifier) + "." + SqlFormatter.QuoteIdentifier(column.Name));
        }

        if (!any && star.Qualifier is not null)
        {
            throw new SqlException(SqlState.UndefinedTable, $"missing FROM-clause entry for table \"{star.Qualifier}\"", star.Position);
        }

        if (!any && star.Qualifier is null && scope.Columns.Count == 0)
        {
            throw new SqlException(SqlState.SyntaxError, "SELECT * with no tables specified is not valid", star.Position);
        }
    }

    /// <summary>The column name PostgreSQL gives an unaliased select item.</summary>
    public static string ColumnName(Expr expr) => NameWithStrength(expr).Name;

    /// <summary>PostgreSQL's FigureColname: a cast keeps its operand's name only when that name is strong (a column or function).</summary>
    private static (string Name, int Strength) NameWithStrength(Expr expr)
    {
        switch (expr)
        {
            case Syntax.CastExpr cast:
                var inner = NameWithStrength(cast.Operand);
                return inner.Strength > 1 ? inner : (CastName(cast.Type), 1);
            case ColumnRefExpr or FunctionCallExpr:
                return (ColumnNameCore(expr), 2);
            case SubscriptExpr subscript:
                // PostgreSQL names a subscripted column after the column (ints[1] is "ints").
                var operand = NameWithStrength(subscript.Operand);
                return operand.Strength > 1 ? operand : ("?column?", 0);
            case Syntax.CaseExpr caseExpr:
                // A CASE is named after its ELSE result when that has a strong name, else "case".
                var elseName = caseExpr.Else is null ? ("?column?", 0) : NameWithStrength(caseExpr.Else);
                return elseName.Item2 > 1 ? elseName : ("case", 1);
            case Syntax.ExistsExpr or ArrayExpr or Syntax.ArraySubqueryExpr:
                return (ColumnNameCore(expr), 2);
            case Syntax.ScalarSubqueryExpr or CollateExpr:
                var name = ColumnNameCore(expr);
                return (name, name == "?column?" ? 0 : 2);
            default:
                return ("?column?", 0);
        }
    }

    private static string ColumnNameCore(Expr expr) => expr switch
    {
        ColumnRefExpr column => column.Column,
        FunctionCallExpr call => call.SimpleName,
        Syntax.CaseExpr => "case",
        Syntax.ExistsExpr => "exists",
        ArrayExpr or Syntax.ArraySubqueryExpr => "array",
        Syntax.ScalarSubqueryExpr sub when sub.Query.Body is SelectCore { Items.Count: 1 } inner => inner.Items[0].Alias ?? ColumnName(inner.Items[0].Expression),
        CollateExpr collate => ColumnName(collate.Operand),
        _ => "?column?",
    };

    private static string CastName(TypeName type)
    {
        try
        {
            return TypeResolver.FromTypeName(type).InternalName;
        }
        catch (SqlException)
        {
            return type.Name;
        }
    }

    private static bool ContainsAggregate(Expr expr) => Walk(expr, e => e is FunctionCallExpr { Over: null } call && Functions.IsAggregate(call.SimpleName));

    private static bool ContainsWindow(Expr expr) => Walk(expr, e => e is FunctionCallExpr { Over: not null });

    private static bool IsSetReturningCall(Expr expr) => expr is FunctionCallExpr { Over: null } call && SetReturning.IsSetReturning(call.SimpleName);

    /// <summary>The outermost set-returning calls in the PARTITION BY and ORDER BY of the query's windows.</summary>
    private static List<Expr> WindowKeySrfCalls(SelectCore core, IReadOnlyList<OrderItem> orderBy)
    {
        var calls = new List<Expr>();
        void Keys(WindowSpec spec)
        {
            foreach (var key in spec.PartitionBy.Concat(spec.OrderBy.Select(o => o.Expression)))
            {
                _ = Walk(key, e =>
                {
                    if (IsSetReturningCall(e))
                    {
                        calls.Add(e);
                        return true;
                    }

                    return false;
                });
            }
        }

        foreach (var window in core.Windows)
        {
            Keys(window.Spec);
        }

        foreach (var output in core.Items.Select(i => i.Expression).Concat(orderBy.Select(o => o.Expression)))
        {
            _ = Walk(output, e =>
            {
                if (e is FunctionCallExpr { Over: { } over })
                {
                    Keys(over);
                }

                return false;
            });
        }

        return calls;
    }

    /// <summary>True when <paramref name="predicate"/> holds for any node, not descending into subqueries.</summary>
    /// <summary>A window's keys belong to the query level too: an aggregate in them makes the query grouped.</summary>
    private static bool WalkWindow(WindowSpec? spec, Func<Expr, bool> predicate) =>
        spec is not null && (spec.PartitionBy.Any(e => Walk(e, predicate)) || spec.OrderBy.Any(o => Walk(o.Expression, predicate)));

    public static bool Walk(Expr? expr, Func<Expr, bool> predicate)
    {
        if (expr is null)
        {
            return false;
        }

        if (predicate(expr))
        {
            return true;
        }

        return expr switch
        {
            UnaryExpr u => Walk(u.Operand, predicate),
            BinaryExpr b => Walk(b.Left, predicate) || Walk(b.Right, predicate) || Walk(b.Escape, predicate),
            Syntax.IsNullExpr n => Walk(n.Operand, predicate),
            Syntax.IsBoolExpr ib => Walk(ib.Operand, predicate),
            IsDistinctFromExpr d => Walk(d.Left, predicate) || Walk(d.Right, predicate),
            BetweenExpr bt => Walk(bt.Operand, predicate) || Walk(bt.Low, predicate) || Walk(bt.High, predicate),
            Syntax.InListExpr il => Walk(il.Operand, predicate) || il.Items.Any(i => Walk(i, predicate)),
            Syntax.InSubqueryExpr isq => Walk(isq.Operand, predicate),
            QuantifiedExpr q => Walk(q.Operand, predicate) || Walk(q.Array, predicate),
            Syntax.CaseExpr c => Walk(c.Operand, predicate) || c.Whens.Any(w => Walk(w.Condition, predicate) || Walk(w.Result, predicate)) || Walk(c.Else, predicate),
            Syntax.CastExpr cast => Walk(cast.Operand, predicate),
            CollateExpr col => Walk(col.Operand, predicate),
            FunctionCallExpr f => (f.Over is null && Functions.IsAggregate(f.SimpleName) ? false : f.Arguments.Any(a => Walk(a, predicate))) || Walk(f.Filter, predicate) || WalkWindow(f.Over, predicate),
            ArrayExpr a => a.Elements.Any(e => Walk(e, predicate)),
            RowExpr r => r.Elements.Any(e => Walk(e, predicate)),
            SubscriptExpr s => Walk(s.Operand, predicate) || Walk(s.Index, predicate),
            _ => false,
        };
    }
}
