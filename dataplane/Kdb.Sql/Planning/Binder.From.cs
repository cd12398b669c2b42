using Kdb.Sql.Catalog;
using Kdb.Sql.Execution;
using Kdb.Sql.Syntax;
using Kdb.Sql.Types;

namespace Kdb.Sql.Planning;

/// <summary>One FROM item during planning: a base table whose scan is chosen later, or a ready plan.</summary>
internal sealed class Relation
{
    public Operator? Plan { get; set; }

    public TableInfo? Table { get; init; }

    public string Alias { get; init; } = string.Empty;

    /// <summary>Columns with indices relative to this relation's own row.</summary>
    public required List<ScopeColumn> Columns { get; init; }

    public int Width { get; init; }

    public List<Expr> Pushed { get; } = [];
}

internal sealed partial class Binder
{
    /// <summary>
    /// Plans FROM and WHERE together: single-relation conditions are pushed into their relation (and drive its
    /// index choice), equality conditions between relations become hash joins, and relations are joined in
    /// an order that always follows a join condition when one exists, so many-table joins never explode into
    /// cross products they do not ask for.
    /// </summary>
    private (Operator Plan, Scope Scope, bool OrderSatisfied) BindFrom(IReadOnlyList<TableRef> from, Expr? where, Scope? outer, IReadOnlyList<OrderItem>? preferredOrder)
    {
        if (from.Count == 0)
        {
            var empty = Scope.Empty(outer);
            Operator single = new SingleRowOp();
            if (where is not null)
            {
                single = new FilterOp(single, CoerceBool(BindExpr(where, new ExprScope(empty, "WHERE")), where.Position, "WHERE"));
            }

            return (single, empty, false);
        }

        var relations = new List<Relation>();
        var conjuncts = new List<Expr>();
        foreach (var item in FoldLateral(from))
        {
            Flatten(item, relations, conjuncts, outer);
        }

        if (where is not null)
        {
            SplitConjuncts(where, conjuncts);
        }

        CheckDuplicateAliases(relations);

        // Classify conditions by the relations they reference.
        var offsets = new int[relations.Count];
        var combinedColumns = new List<ScopeColumn>();
        var offset = 0;
        for (var r = 0; r < relations.Count; r++)
        {
            offsets[r] = offset;
            foreach (var column in relations[r].Columns)
            {
                combinedColumns.Add(column with { Index = column.Index + offset });
            }

            offset += relations[r].Width;
        }

        var probeScope = new Scope(combinedColumns, outer);
        var residual = new List<Expr>();
        var edges = new List<(int A, int B, Expr Condition)>();
        foreach (var conjunct in conjuncts)
        {
            if (Walk(conjunct, e => e is Syntax.ExistsExpr or Syntax.ScalarSubqueryExpr or Syntax.InSubqueryExpr or QuantifiedExpr { Query: not null } || (e is FunctionCallExpr f && Functions.IsAggregate(f.SimpleName))))
            {
                residual.Add(conjunct);
                continue;
            }

            var referenced = ReferencedRelations(conjunct, probeScope, offsets, relations);
            if (referenced.Count == 1)
            {
                relations[referenced[0]].Pushed.Add(conjunct);
            }
            else if (referenced.Count == 2 && conjunct is BinaryExpr { Op: BinaryOp.Equal } equal
                && SidesSplit(equal, probeScope, offsets, relations, referenced))
            {
                edges.Add((referenced[0], referenced[1], conjunct));
            }
            else
            {
                residual.Add(conjunct);
            }
        }

        var orderSatisfied = false;
        for (var r = 0; r < relations.Count; r++)
        {
            var relation = relations[r];
            var scope = new Scope(relation.Columns, outer);
            if (relation.Table is not null)
            {
                var prefer = relations.Count == 1 ? preferredOrder : null;
                (relation.Plan, var satisfied) = PlanTableAccess(relation.Table, relation.Alias, relation.Pushed, scope, prefer);
                orderSatisfied |= satisfied;
            }
            else if (relation.Pushed.Count > 0)
            {
                relation.Plan = new FilterOp(relation.Plan!, BindConjunction(relation.Pushed, scope, "WHERE"));
            }
        }

        // Greedy join order: start from the first relation; repeatedly add a relation connected by a condition.
        var joined = new List<int> { 0 };
        var plan = relations[0].Plan!;
        var remaining = Enumerable.Range(1, relations.Count - 1).ToList();
        var placed = new int[relations.Count];
        placed[0] = 0;
        var width = relations[0].Width;
        var usedEdges = new HashSet<int>();
        while (remaining.Count > 0)
        {
            var next = remaining.FirstOrDefault(r => edges.Exists(e => (joined.Contains(e.A) && e.B == r) || (joined.Contains(e.B) && e.A == r)), -1);
            if (next < 0)
            {
                next = remaining[0];
            }

            remaining.Remove(next);
            var leftScope = new Scope(ScopeOf(relations, joined, placed), outer);
            var rightScope = new Scope(relations[next].Columns, outer);
            var leftKeys = new List<BoundExpr>();
            var rightKeys = new List<BoundExpr>();
            for (var e = 0; e < edges.Count; e++)
            {
                var (a, b, condition) = edges[e];
                if (usedEdges.Contains(e) || !((joined.Contains(a) && b == next) || (joined.Contains(b) && a == next)))
                {
                    continue;
                }

                var equal = (BinaryExpr)condition;
                var leftIsJoined = ReferencedRelations(equal.Left, probeScope, offsets, relations).TrueForAll(joined.Contains);
                var leftSyntax = leftIsJoined ? equal.Left : equal.Right;
                var rightSyntax = leftIsJoined ? equal.Right : equal.Left;
                var (lk, rk) = Unify(BindExpr(leftSyntax, new ExprScope(leftScope, "WHERE")), BindExpr(rightSyntax, new ExprScope(rightScope, "WHERE")), equal.Position, "=");
                leftKeys.Add(lk);
                rightKeys.Add(rk);
                usedEdges.Add(e);
            }

            placed[next] = width;
            plan = leftKeys.Count > 0
                ? new HashJoinOp(plan, relations[next].Plan!, JoinKind.Inner, leftKeys.ToArray(), rightKeys.ToArray(), null)
                : new NestedLoopJoinOp(plan, relations[next].Plan!, JoinKind.Cross, null, lateral: false);
            width += relations[next].Width;
            joined.Add(next);
        }

        // Columns in FROM order (for *), indexed by where the join order placed them.
        var finalColumns = new List<ScopeColumn>();
        for (var r = 0; r < relations.Count; r++)
        {
            foreach (var column in relations[r].Columns)
            {
                finalColumns.Add(column with { Index = column.Index + placed[r] });
            }
        }

        var finalScope = new Scope(finalColumns, outer);
        for (var e = 0; e < edges.Count; e++)
        {
            if (!usedEdges.Contains(e))
            {
                residual.Add(edges[e].Condition);
            }
        }

        if (residual.Count > 0)
        {
            plan = new FilterOp(plan, BindConjunction(residual, finalScope, "WHERE"));
        }

        return (plan, finalScope, orderSatisfied && relations.Count == 1);
    }

    private static List<ScopeColumn> ScopeOf(List<Relation> relations, List<int> joined, int[] placed)
    {
        var columns = new List<ScopeColumn>();
        foreach (var r in joined)
        {
            foreach (var column in relations[r].Columns)
            {
                columns.Add(column with { Index = column.Index + placed[r] });
            }
        }

        return columns;
    }

    private static void CheckDuplicateAliases(List<Relation> relations)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var relation in relations)
        {
            if (relation.Alias.Length > 0 && !seen.Add(relation.Alias))
            {
                throw new SqlException(SqlState.DuplicateAlias, $"table name \"{relation.Alias}\" specified more than once");
            }
        }
    }

    public BoundExpr BindConjunction(List<Expr> conjuncts, Scope scope, string clause)
    {
        BoundExpr? result = null;
        foreach (var conjunct in conjuncts)
        {
            var bound = CoerceBool(BindExpr(conjunct, new ExprScope(scope, clause)), conjunct.Position, clause);
            result = result is null ? bound : new AndExpr(result, bound);
        }

        return result!;
    }

    private static void SplitConjuncts(Expr expr, List<Expr> into)
    {
        if (expr is BinaryExpr { Op: BinaryOp.And } and)
        {
            SplitConjuncts(and.Left, into);
            SplitConjuncts(and.Right, into);
        }
        else
        {
            into.Add(expr);
        }
    }

    private List<int> ReferencedRelations(Expr expr, Scope probeScope, int[] offsets, List<Relation> relations)
    {
        var result = new List<int>();
        Walk(expr, e =>
        {
            if (e is ColumnRefExpr column)
            {
                var found = ResolveColumn(column, probeScope, out var depth);
                if (found is not null && depth == 0)
                {
                    var r = Array.FindLastIndex(offsets, o => o <= found.Index);
                    while (r > 0 && relations[r].Width == 0)
                    {
                        r--;
                    }

                    if (!result.Contains(r))
                    {
                        result.Add(r);
                    }
                }
            }

            return false;
        });
        return result;
    }

    private bool SidesSplit(BinaryExpr equal, Scope probeScope, int[] offsets, List<Relation> relations, List<int> referenced)
    {
        var left = ReferencedRelations(equal.Left, probeScope, offsets, relations);
        var right = ReferencedRelations(equal.Right, probeScope, offsets, relations);
        return left.Count == 1 && right.Count == 1 && left[0] != right[0] && referenced.Contains(left[0]) && referenced.Contains(right[0]);
    }

    /// <summary>
    /// LATERAL items, and functions whose arguments name columns (implicitly LATERAL in PostgreSQL), may read the
    /// FROM items before them: those are joined first, so the lateral item is bound over their columns.
    /// </summary>
    private static IEnumerable<TableRef> FoldLateral(IReadOnlyList<TableRef> from)
    {
        var result = new List<TableRef>(from.Count);
        foreach (var item in from)
        {
            if (result.Count > 0 && IsLateral(item))
            {
                var left = result[0];
                for (var i = 1; i < result.Count; i++)
                {
                    left = new JoinTableRef(result[i].Position, JoinKind.Cross, left, result[i], null, null, false);
                }

                result.Clear();
                result.Add(new JoinTableRef(item.Position, JoinKind.Cross, left, item, null, null, false));
                continue;
            }

            result.Add(item);
        }

        return result;
    }

    private static bool IsLateral(TableRef item) => item switch
    {
        SubqueryTableRef sub => sub.Lateral,
        FunctionTableRef function => function.Lateral || function.Function.Arguments.Any(a => Walk(a, e => e is ColumnRefExpr)),
        _ => false,
    };

    /// <summary>Turns a FROM item into relations; inner and cross joins are flattened into the list with their ON conditions.</summary>
    private void Flatten(TableRef item, List<Relation> relations, List<Expr> conjuncts, Scope? outer)
    {
        if (item is JoinTableRef { Kind: JoinKind.Inner or JoinKind.Cross, Natural: false, Using: null } join && !IsLateral(join.Right))
        {
            Flatten(join.Left, relations, conjuncts, outer);
            Flatten(join.Right, relations, conjuncts, outer);
            if (join.On is not null)
            {
                SplitConjuncts(join.On, conjuncts);
            }

            return;
        }

        if (item is JoinTableRef lateralJoin && IsLateral(lateralJoin.Right))
        {
            relations.Add(BindExplicitJoin(lateralJoin, outer));
            return;
        }

        relations.Add(BindRelation(item, outer, null));
    }

    /// <summary>
    /// Binds a view's query with the search_path it was created under. What it reads is the view's own dependency,
    /// not the outer statement's (a view over a view depends on that view only).
    /// </summary>
    private BoundQuery BindView(ViewDef view, SelectStatement query)
    {
        var dependencies = _ctx.Dependencies;
        var searchPath = _ctx.Session.ViewSearchPath;
        _ctx.Dependencies = null;
        _ctx.Session.ViewSearchPath = view.SearchPath ?? searchPath;
        try
        {
            return BindQuery(query, null);
        }
        finally
        {
            _ctx.Dependencies = dependencies;
            _ctx.Session.ViewSearchPath = searchPath;
        }
    }

    private Relation BindRelation(TableRef item, Scope? outer, Scope? lateralLeft)
    {
        switch (item)
        {
            case NamedTableRef named:
                return BindNamed(named, outer);
            case SubqueryTableRef sub:
                {
                    var parent = sub.Lateral && lateralLeft is not null ? lateralLeft : outer;
                    var bound = sub.Lateral && lateralLeft is not null ? BindQuery(sub.Query, parent) : BindQuery(sub.Query, outer);
                    var alias = sub.Alias ?? throw new SqlException(SqlState.SyntaxError, "subquery in FROM must have an alias", sub.Position, hint: "For example, FROM (SELECT ...) [AS] foo.");
                    var columns = RenameColumns(bound.Columns, sub.ColumnAliases, alias, sub.Position);
                    return new Relation
                    {
                        Plan = bound.Plan,
                        Alias = alias,
                        Width = bound.Plan.Width,
                        Columns = columns.Select((c, i) => new ScopeColumn(alias, c.Name, c.Type, i, c.TableOid, c.AttNum)).ToList(),
                    };
                }

            case FunctionTableRef function:
                return BindTableFunction(function, IsLateral(function) && lateralLeft is not null ? lateralLeft : outer);
            case JoinTableRef join:
                return BindExplicitJoin(join, outer);
            default:
                throw new SqlException(SqlState.FeatureNotSupported, "unsupported FROM item", item.Position);
        }
    }

    private Relation BindNamed(NamedTableRef named, Scope? outer)
    {
        var alias = named.Alias ?? named.Name.Name;
        if (named.Name.Schema is null && _ctx.FindCte(named.Name.Name) is { } cte)
        {
            var columns = RenameColumns(cte.Columns, named.ColumnAliases, alias, named.Position);
            return new Relation
            {
                Plan = cte.WorkTable is { } work ? new WorkTableScanOp(work, cte.Name, columns.Count) : new CteScanOp(cte.Plan, cte.Name),
                Alias = alias,
                Width = columns.Count,
                Columns = columns.Select((c, i) => new ScopeColumn(alias, c.Name, c.Type, i)).ToList(),
            };
        }

        _ctx.TouchesData = true;
        if (SystemCatalog.TryBind(named.Name, _ctx) is { } virtualTable)
        {
            var columns = RenameColumns(virtualTable.Columns, named.ColumnAliases, alias, named.Position);
            return new Relation
            {
                Plan = virtualTable.Plan,
                Alias = alias,
                Width = columns.Count,
                Columns = columns.Select((c, i) => new ScopeColumn(alias, c.Name, c.Type, i, c.TableOid, c.AttNum)).ToList(),
            };
        }

        var table = _ctx.FindTable(named.Name);
        if (table is null)
        {
            var view = _ctx.FindView(named.Name);
            if (view is null)
            {
                throw new SqlException(SqlState.UndefinedTable, $"relation \"{named.Name}\" does not exist", named.Position);
            }

            var query = SqlParser.Parse(view.Sql) as SelectStatement
                ?? throw new SqlException("XX001", $"view \"{view.Name}\" has a damaged definition");
            if (_ctx.ReadColumns is { } read)
            {
                var viewColumns = ColumnUsage.Collect(query);
                if (viewColumns is null)
                {
                    _ctx.ReadColumns = null;
                }
                else
                {
                    read.UnionWith(viewColumns);
                }
            }

            _ctx.Dependencies?.Add(view.Id);
            var bound = BindView(view, query);
            IReadOnlyList<ResultColumn> viewOutput = bound.Columns;
            if (view.ColumnNames.Count > 0 && view.ColumnNames.Count < viewOutput.Count)
            {
                // A "*" now expands to columns added since the view was created: it keeps only its own (the row is wider, unseen).
                viewOutput = viewOutput.Take(view.ColumnNames.Count).ToList();
            }

            var columns = RenameColumns(viewOutput, view.ColumnNames.Count > 0 ? view.ColumnNames : null, view.Name, named.Position);
            columns = RenameColumns(columns, named.ColumnAliases, alias, named.Position);
            return new Relation
            {
                Plan = bound.Plan,
                Alias = alias,
                Width = bound.Plan.Width,
                Columns = columns.Select((c, i) => new ScopeColumn(alias, c.Name, c.Type, i, view.Id, (short)(i + 1))).ToList(),
            };
        }

        _ctx.Dependencies?.Add(table.Id);
        var info = _ctx.TableInfo(table);
        var scopeColumns = new List<ScopeColumn>();
        var aliasIndex = 0;
        foreach (var column in table.Columns)
        {
            if (column.Dropped)
            {
                continue;
            }

            var name = named.ColumnAliases is not null && aliasIndex < named.ColumnAliases.Count ? named.ColumnAliases[aliasIndex] : column.Name;
            aliasIndex++;
            scopeColumns.Add(new ScopeColumn(alias, name, column.Type, column.Slot, table.Id, (short)(column.Slot + 1)));
        }

        return new Relation { Table = info, Alias = alias, Width = info.RowWidth, Columns = scopeColumns };
    }

    private Relation BindTableFunction(FunctionTableRef function, Scope? outer)
    {
        var call = function.Function;
        var name = call.SimpleName;
        var es = new ExprScope(Scope.Empty(outer), "FROM");
        var args = call.Arguments.Select(a => BindExpr(a, es)).ToArray();
        var alias = function.Alias ?? name;
        Func<ExecContext, IEnumerable<Value[]>> generate;
        SqlType type;
        if (SetReturning.IsSetReturning(name))
        {
            var srf = SetReturning.Bind(name, args, call.Position);
            type = srf.Type;
            generate = ctx => SingleColumn(srf.Generate([], ctx));
        }
        else
        {
            // A scalar function in FROM yields one row with its value.
            var scalar = Functions.Bind(name, args, call.Position, _ctx.ResolveSequence);
            type = scalar.Type;
            generate = ctx => [[scalar.Eval([], ctx)]];
        }

        var columnName = function.ColumnAliases is { Count: > 0 } ? function.ColumnAliases[0] : function.Alias ?? name;
        var columns = new List<ScopeColumn> { new(alias, columnName, type, 0) };
        var width = 1;
        var plan = new GeneratorOp($"Function Scan on {name} {alias}", 1, generate);
        Operator result = plan;
        if (function.WithOrdinality)
        {
            var ordinalName = function.ColumnAliases is { Count: > 1 } ? function.ColumnAliases[1] : "ordinality";
            columns.Add(new ScopeColumn(alias, ordinalName, SqlType.Int8, 1));
            width = 2;
            result = new GeneratorOp($"Function Scan on {name} {alias}", 2, ctx => WithOrdinal(generate(ctx)));
        }

        return new Relation { Plan = result, Alias = alias, Width = width, Columns = columns };
    }

    private static IEnumerable<Value[]> WithOrdinal(IEnumerable<Value[]> rows)
    {
        long n = 0;
        foreach (var row in rows)
        {
            yield return [row[0], Value.FromInt(++n)];
        }
    }

    private static IEnumerable<Value[]> SingleColumn(IEnumerable<Value> values)
    {
        var row = new Value[1];
        foreach (var value in values)
        {
            row[0] = value;
            yield return row;
        }
    }

    private Relation BindExplicitJoin(JoinTableRef join, Scope? outer)
    {
        var left = BindRelation(join.Left, outer, null);
        var lateral = IsLateral(join.Right);
        var leftPlanned = Materialize(left, outer);
        var leftScopeForLateral = new Scope(left.Columns, outer);
        var right = BindRelation(join.Right, outer, lateral ? leftScopeForLateral : null);
        var rightPlanned = Materialize(right, outer);
        if (lateral && join.Kind is JoinKind.Right or JoinKind.Full)
        {
            throw new SqlException(SqlState.FeatureNotSupported, "RIGHT and FULL joins with LATERAL are not supported", join.Position);
        }

        var columns = new List<ScopeColumn>(left.Columns);
        var hiddenRight = new HashSet<string>(StringComparer.Ordinal);
        var usingNames = join.Using?.ToList();
        if (join.Natural)
        {
            usingNames = left.Columns.Select(c => c.Name).Intersect(right.Columns.Select(c => c.Name)).ToList();
        }

        if (usingNames is not null)
        {
            foreach (var name in usingNames)
            {
                hiddenRight.Add(name);
            }
        }

        foreach (var column in right.Columns)
        {
            columns.Add(column with { Index = column.Index + left.Width, HiddenFromStar = hiddenRight.Contains(column.Name) });
        }

        var scope = new Scope(columns, outer);
        var combinedScope = new Scope(columns.Select(c => c with { HiddenFromStar = false }).ToList(), outer);
        var leftScope = new Scope(left.Columns, outer);
        var rightScope = new Scope(right.Columns, outer);
        var leftKeys = new List<BoundExpr>();
        var rightKeys = new List<BoundExpr>();
        var residual = new List<BoundExpr>();
        if (usingNames is not null)
        {
            foreach (var name in usingNames)
            {
                var l = leftScope.Find(null, name, join.Position) ?? throw new SqlException(SqlState.UndefinedColumn, $"column \"{name}\" specified in USING clause does not exist in left table", join.Position);
                var r = rightScope.Find(null, name, join.Position) ?? throw new SqlException(SqlState.UndefinedColumn, $"column \"{name}\" specified in USING clause does not exist in right table", join.Position);
                var (lk, rk) = Unify(new ColumnExpr(l.Index, l.Type, l.Name), new ColumnExpr(r.Index, r.Type, r.Name), join.Position, "=");
                leftKeys.Add(lk);
                rightKeys.Add(rk);
            }
        }
        else if (join.On is not null && !lateral)
        {
            var parts = new List<Expr>();
            SplitConjuncts(join.On, parts);
            foreach (var part in parts)
            {
                if (part is BinaryExpr { Op: BinaryOp.Equal } equal && TryBindSides(equal, leftScope, rightScope, out var lk, out var rk))
                {
                    leftKeys.Add(lk);
                    rightKeys.Add(rk);
                }
                else
                {
                    residual.Add(CoerceBool(BindExpr(part, new ExprScope(combinedScope, "JOIN/ON")), part.Position, "JOIN/ON"));
                }
            }
        }
        else if (join.On is not null)
        {
            residual.Add(CoerceBool(BindExpr(join.On, new ExprScope(combinedScope, "JOIN/ON")), join.On.Position, "JOIN/ON"));
        }

        var residualExpr = residual.Count == 0 ? null : residual.Aggregate((a, b) => new AndExpr(a, b));
        var kind = join.Kind == JoinKind.Cross ? JoinKind.Inner : join.Kind;
        Operator plan = leftKeys.Count > 0 && !lateral
            ? new HashJoinOp(leftPlanned, rightPlanned, kind, leftKeys.ToArray(), rightKeys.ToArray(), residualExpr)
            : new NestedLoopJoinOp(leftPlanned, rightPlanned, kind, residualExpr ?? (leftKeys.Count > 0 ? KeysEqual(leftKeys, rightKeys, left.Width) : null), lateral);
        return new Relation { Plan = plan, Alias = string.Empty, Width = left.Width + right.Width, Columns = scope.Columns.ToList() };
    }

    private static BoundExpr KeysEqual(List<BoundExpr> leftKeys, List<BoundExpr> rightKeys, int leftWidth)
    {
        BoundExpr? result = null;
        for (var i = 0; i < leftKeys.Count; i++)
        {
            var right = rightKeys[i] is ColumnExpr c ? new ColumnExpr(c.Index + leftWidth, c.Type, c.Name) : rightKeys[i];
            var equal = new CompareExpr(BinaryOp.Equal, leftKeys[i], right);
            result = result is null ? equal : new AndExpr(result, equal);
        }

        return result!;
    }

    private bool TryBindSides(BinaryExpr equal, Scope leftScope, Scope rightScope, out BoundExpr leftKey, out BoundExpr rightKey)
    {
        leftKey = rightKey = null!;
        if (Walk(equal, e => e is Syntax.ExistsExpr or Syntax.ScalarSubqueryExpr or Syntax.InSubqueryExpr))
        {
            return false;
        }

        foreach (var (l, r) in new[] { (equal.Left, equal.Right), (equal.Right, equal.Left) })
        {
            if (OnlyIn(l, leftScope) && OnlyIn(r, rightScope))
            {
                (leftKey, rightKey) = Unify(BindExpr(l, new ExprScope(leftScope, "JOIN/ON")), BindExpr(r, new ExprScope(rightScope, "JOIN/ON")), equal.Position, "=");
                return true;
            }
        }

        return false;
    }

    private bool OnlyIn(Expr expr, Scope scope)
    {
        var any = false;
        var outside = Walk(expr, e =>
        {
            if (e is ColumnRefExpr column)
            {
                any = true;
                var found = ResolveColumnQuietly(column, scope);
                return found is null;
            }

            return false;
        });
        return any && !outside;
    }

    private ScopeColumn? ResolveColumnQuietly(ColumnRefExpr column, Scope scope)
    {
        try
        {
            var found = ResolveColumn(column, new Scope(scope.Columns, null), out _);
            return found;
        }
        catch (SqlException)
        {
            return null;
        }
    }

    private Operator Materialize(Relation relation, Scope? outer)
    {
        if (relation.Plan is null && relation.Table is not null)
        {
            (relation.Plan, _) = PlanTableAccess(relation.Table, relation.Alias, relation.Pushed, new Scope(relation.Columns, outer), null);
        }

        return relation.Plan!;
    }
}
