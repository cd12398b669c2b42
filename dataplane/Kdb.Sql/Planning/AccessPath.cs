using Kdb.Sql.Catalog;
using Kdb.Sql.Execution;
using Kdb.Sql.Syntax;
using Kdb.Sql.Types;

namespace Kdb.Sql.Planning;

internal sealed partial class Binder
{
    /// <summary>
    /// True when the query's conditions imply a partial index's WHERE: each of its conjuncts is one of the query's
    /// (compared as bound expressions over the same table). Anything subtler leaves the index unused, never wrong.
    /// </summary>
    private bool Implies(List<BoundExpr> conditions, string predicateSql, Scope scope)
    {
        var parts = new List<Expr>();
        SplitConjuncts(SqlParser.ParseExpression(predicateSql), parts);
        foreach (var part in parts)
        {
            string text;
            try
            {
                text = BindExpr(part, new ExprScope(scope, "WHERE")).Describe();
            }
            catch (SqlException)
            {
                return false;
            }

            if (!conditions.Exists(c => c.Describe() == text))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>A condition usable as an index bound: column slot, comparison, and a value fixed for the execution.</summary>
    private readonly record struct KeyCondition(int Slot, BinaryOp Op, BoundExpr Value);

    /// <summary>
    /// Chooses how to read one table: a point read when the whole primary key is fixed by equalities, else the
    /// index (primary or secondary) whose leading columns the conditions fix best, else a full scan. Every
    /// condition is also applied as a filter, so the choice affects only speed, never results.
    /// </summary>
    private (Operator Plan, bool OrderSatisfied) PlanTableAccess(TableInfo table, string alias, List<Expr> conjuncts, Scope scope, IReadOnlyList<OrderItem>? preferredOrder)
    {
        var bound = new List<BoundExpr>();
        foreach (var conjunct in conjuncts)
        {
            bound.Add(CoerceBool(BindExpr(conjunct, new ExprScope(scope, "WHERE")), conjunct.Position, "WHERE"));
        }

        var conditions = new List<KeyCondition>();
        foreach (var expr in bound)
        {
            CollectConditions(expr, table, conditions);
        }

        var definition = table.Table;
        Operator plan;
        var orderSatisfied = false;
        var primary = Match(definition.PrimaryIndex, conditions);
        if (definition.HasPrimaryKey && primary.Equal.Length == definition.PrimaryIndex.Columns.Length)
        {
            plan = new PointGetOp(table, alias, primary.Equal);
            orderSatisfied = preferredOrder is not null;

            // The point read already applied the key equalities: only the other conditions remain to filter.
            bound.RemoveAll(b => b is CompareExpr { Op: BinaryOp.Equal } compare && Array.Exists(primary.Equal, e => ReferenceEquals(e, compare.Right) || ReferenceEquals(e, compare.Left)));
        }
        else
        {
            var best = definition.HasPrimaryKey ? primary : new KeyBounds();
            IndexDef? bestIndex = null;
            var bestScore = Score(best, definition.PrimaryIndex);
            foreach (var index in definition.Indexes)
            {
                if (index.Predicate is not null && !Implies(bound, index.Predicate, scope))
                {
                    continue;
                }

                var candidate = index.Expressions is null ? Match(index, conditions) : Match(index, conditions, ExpressionSlots(index, bound, scope, conditions));
                var score = Score(candidate, index);
                if (score > bestScore)
                {
                    best = candidate;
                    bestIndex = index;
                    bestScore = score;
                }
            }

            if (bestIndex is null)
            {
                var reverse = false;
                if (preferredOrder is not null && definition.HasPrimaryKey && OrderMatchesPrimary(preferredOrder, scope, definition, best.Equal.Length, out reverse))
                {
                    orderSatisfied = true;
                }

                plan = new TableScanOp(table, alias, best, reverse);
            }
            else
            {
                plan = new IndexScanOp(table, alias, bestIndex, best, false);
            }
        }

        if (_ctx.ReadColumns is { } read)
        {
            var needed = new bool[table.SlotCount];
            foreach (var column in definition.Columns)
            {
                needed[column.Slot] = !column.Dropped && read.Contains(column.Name);
            }

            switch (plan)
            {
                case PointGetOp point:
                    point.Needed = needed;
                    break;
                case TableScanOp scan:
                    scan.Needed = needed;
                    break;
                case IndexScanOp indexScan:
                    indexScan.Needed = needed;
                    break;
            }
        }

        if (bound.Count > 0)
        {
            plan = new FilterOp(plan, bound.Aggregate((a, b) => new AndExpr(a, b)));
        }

        return (plan, orderSatisfied);
    }

    private static int Score(KeyBounds bounds, IndexDef index)
    {
        if (bounds.IsEmpty)
        {
            return 0;
        }

        var score = (bounds.Equal.Length * 10) + (bounds.Lower is not null ? 4 : 0) + (bounds.Upper is not null ? 4 : 0);
        if (index.Unique && bounds.Equal.Length == index.Columns.Length)
        {
            score += 100;
        }

        // Prefer the primary index on ties: it needs no second read per row.
        return (score * 2) + (index.Primary ? 1 : 0);
    }

    private bool OrderMatchesPrimary(IReadOnlyList<OrderItem> order, Scope scope, TableDef table, int equalPrefix, out bool reverse)
    {
        reverse = false;
        var key = table.PrimaryIndex.Columns;
        if (order.Count > key.Length - equalPrefix)
        {
            return false;
        }

        bool? descending = null;
        for (var i = 0; i < order.Count; i++)
        {
            var item = order[i];
            if (item.Expression is not ColumnRefExpr column)
            {
                return false;
            }

            ScopeColumn? found;
            try
            {
                found = ResolveColumn(column, new Scope(scope.Columns, null), out _);
            }
            catch (SqlException)
            {
                return false;
            }

            if (found is null || found.Index != key[equalPrefix + i] || table.PrimaryIndex.Descending[equalPrefix + i])
            {
                return false;
            }

            // Default NULL placement only (keys put NULLs last ascending, first descending).
            if ((item.NullsFirst ?? item.Descending) != item.Descending || (descending is not null && descending != item.Descending))
            {
                return false;
            }

            descending = item.Descending;
        }

        reverse = descending == true;
        return true;
    }

    /// <summary>
    /// The key slots of an expression index, an expression element given a slot of its own (below any column's)
    /// and the query's comparisons of that same expression with a fixed value added as conditions on it.
    /// </summary>
    private int[] ExpressionSlots(IndexDef index, List<BoundExpr> bound, Scope scope, List<KeyCondition> conditions)
    {
        var slots = (int[])index.Columns.Clone();
        for (var i = 0; i < slots.Length; i++)
        {
            if (slots[i] >= 0)
            {
                continue;
            }

            slots[i] = -1000 - ((int)index.Id * 64) - i;
            BoundExpr key;
            try
            {
                key = BindExpr(SqlParser.ParseExpression(index.Expressions![i]!), new ExprScope(scope, "WHERE"));
            }
            catch (SqlException)
            {
                continue;
            }

            var text = key.Describe();
            foreach (var expr in bound)
            {
                CollectExpressionConditions(expr, text, key.Type, slots[i], conditions);
            }
        }

        return slots;
    }

    private static void CollectExpressionConditions(BoundExpr expr, string keyText, SqlType keyType, int slot, List<KeyCondition> into)
    {
        if (expr is AndExpr and)
        {
            CollectExpressionConditions(and.Left, keyText, keyType, slot, into);
            CollectExpressionConditions(and.Right, keyText, keyType, slot, into);
            return;
        }

        if (expr is not CompareExpr compare || compare.Op == BinaryOp.NotEqual)
        {
            return;
        }

        if (IsFixed(compare.Right, keyType) && compare.Left.Describe() == keyText)
        {
            into.Add(new KeyCondition(slot, compare.Op, compare.Right));
        }
        else if (IsFixed(compare.Left, keyType) && compare.Right.Describe() == keyText)
        {
            into.Add(new KeyCondition(slot, Flip(compare.Op), compare.Left));
        }
    }

    private static bool IsFixed(BoundExpr value, SqlType keyType) => !value.ReadsRow && value.IsConstant && value.Type.Kind == keyType.Kind;

    private static KeyBounds Match(IndexDef index, List<KeyCondition> conditions, int[]? keySlots = null)
    {
        var equal = new List<BoundExpr>();
        var equalDescending = new List<bool>();
        BoundExpr? lower = null, upper = null;
        bool lowerInclusive = false, upperInclusive = false;
        for (var i = 0; i < index.Columns.Length; i++)
        {
            var slot = (keySlots ?? index.Columns)[i];
            var eq = conditions.Find(c => c.Slot == slot && c.Op == BinaryOp.Equal);
            if (eq.Value is not null)
            {
                equal.Add(eq.Value);
                equalDescending.Add(index.Descending[i]);
                continue;
            }

            if (!index.Descending[i])
            {
                foreach (var c in conditions)
                {
                    if (c.Slot != slot)
                    {
                        continue;
                    }

                    switch (c.Op)
                    {
                        case BinaryOp.Greater or BinaryOp.GreaterOrEqual when lower is null:
                            lower = c.Value;
                            lowerInclusive = c.Op == BinaryOp.GreaterOrEqual;
                            break;
                        case BinaryOp.Less or BinaryOp.LessOrEqual when upper is null:
                            upper = c.Value;
                            upperInclusive = c.Op == BinaryOp.LessOrEqual;
                            break;
                    }
                }
            }

            break;
        }

        return new KeyBounds
        {
            Equal = equal.ToArray(),
            EqualDescending = equalDescending.ToArray(),
            Lower = lower,
            LowerInclusive = lowerInclusive,
            Upper = upper,
            UpperInclusive = upperInclusive,
        };
    }

    private static void CollectConditions(BoundExpr expr, TableInfo table, List<KeyCondition> into)
    {
        if (expr is AndExpr and)
        {
            CollectConditions(and.Left, table, into);
            CollectConditions(and.Right, table, into);
            return;
        }

        if (expr is not CompareExpr compare || compare.Op == BinaryOp.NotEqual)
        {
            return;
        }

        if (TryKey(compare.Left, compare.Right, table, out var slot))
        {
            into.Add(new KeyCondition(slot, compare.Op, compare.Right));
        }
        else if (TryKey(compare.Right, compare.Left, table, out slot))
        {
            into.Add(new KeyCondition(slot, Flip(compare.Op), compare.Left));
        }
    }

    private static bool TryKey(BoundExpr column, BoundExpr value, TableInfo table, out int slot)
    {
        slot = -1;
        if (column is not ColumnExpr c || c.Index >= table.SlotCount || value.ReadsRow || !value.IsConstant)
        {
            return false;
        }

        // Keys encode by value kind: a condition helps only when its value has the column's kind.
        var columnType = table.Types[c.Index];
        if (columnType.Kind != value.Type.Kind || columnType.Id == SqlTypeId.Bpchar != (value.Type.Id == SqlTypeId.Bpchar) && columnType.Id == SqlTypeId.Bpchar)
        {
            return false;
        }

        slot = c.Index;
        return true;
    }

    private static BinaryOp Flip(BinaryOp op) => op switch
    {
        BinaryOp.Less => BinaryOp.Greater,
        BinaryOp.LessOrEqual => BinaryOp.GreaterOrEqual,
        BinaryOp.Greater => BinaryOp.Less,
        BinaryOp.GreaterOrEqual => BinaryOp.LessOrEqual,
        _ => op,
    };
}
