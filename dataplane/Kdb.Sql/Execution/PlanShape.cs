namespace Kdb.Sql.Execution;

/// <summary>
/// Tells plans whose work is bounded by one primary-key lookup: a host may run those on a thread it must not hold
/// for long (a socket's completion thread), and hands everything else to the thread pool first.
/// </summary>
internal static class PlanShape
{
    /// <summary>
    /// True for a point get under projections, filters and limits whose expressions are operators on columns, parameters
    /// and constants only: no function call (pg_sleep, repeat, set-returning), no subquery, no pattern match.
    /// </summary>
    public static bool IsPointRead(Operator plan)
    {
        while (true)
        {
            switch (plan)
            {
                case PointGetOp get:
                    return AllCheap(get.KeyValues);
                case ProjectOp project:
                    if (!AllCheap(project.Exprs))
                    {
                        return false;
                    }

                    break;
                case FilterOp filter:
                    if (!IsCheap(filter.Predicate))
                    {
                        return false;
                    }

                    break;
                case LimitOp limit:
                    if ((limit.Limit is { } l && !IsCheap(l)) || (limit.Offset is { } o && !IsCheap(o)))
                    {
                        return false;
                    }

                    break;
                default:
                    return false;
            }

            using var inputs = plan.Inputs.GetEnumerator();
            if (!inputs.MoveNext())
            {
                return false;
            }

            plan = inputs.Current;
            if (inputs.MoveNext())
            {
                return false;
            }
        }
    }

    /// <summary>
    /// True for an INSERT of one VALUES row (no ON CONFLICT), or an UPDATE or DELETE of what one primary-key lookup
    /// finds, with cheap expressions throughout (values, SET, RETURNING, the defaults an INSERT fills in, CHECK
    /// constraints, index expressions). An UPDATE or DELETE also needs a table no foreign key references: keeping
    /// referencing rows right can scan. Unique and foreign-key checks of the row are index lookups, bounded too. The caller
    /// rules out sequences (nextval waits for a commit).
    /// </summary>
    public static bool IsPointWrite(Operator plan) => plan switch
    {
        InsertOp insert => insert.SingleValuesRow is { } row && AllCheapOrDefault(row) && AllCheapOrNull(insert.Writer.Defaults)
            && CheapConstraints(insert.Writer) && AllCheapOrNull(insert.ReturningExprs),
        UpdateOp update => IsPointRead(update.Source) && AllCheapOrNull(update.Set) && update.Writer.Inbound.Count == 0
            && CheapConstraints(update.Writer) && AllCheapOrNull(update.ReturningExprs),
        DeleteOp delete => IsPointRead(delete.Source) && delete.Writer.Inbound.Count == 0 && AllCheapOrNull(delete.ReturningExprs),
        _ => false,
    };

    private static bool CheapConstraints(TableWriter writer)
    {
        foreach (var (_, check) in writer.Checks)
        {
            if (!IsCheap(check))
            {
                return false;
            }
        }

        foreach (var expressions in writer.IndexExpressions.Values)
        {
            if (!AllCheapOrNull(expressions))
            {
                return false;
            }
        }

        return true;
    }

    private static bool AllCheapOrNull(BoundExpr?[]? exprs)
    {
        foreach (var e in exprs ?? [])
        {
            if (e is not null && !IsCheap(e))
            {
                return false;
            }
        }

        return true;
    }

    private static bool AllCheapOrDefault(BoundExpr[] exprs)
    {
        foreach (var e in exprs)
        {
            if (e is not Planning.DefaultMarkerExpr && !IsCheap(e))
            {
                return false;
            }
        }

        return true;
    }

    private static bool AllCheap(BoundExpr[] exprs)
    {
        foreach (var e in exprs)
        {
            if (!IsCheap(e))
            {
                return false;
            }
        }

        return true;
    }

    // An allow-list: a new expression type is treated as expensive until it is added here.
    private static bool IsCheap(BoundExpr expr)
    {
        if (expr is not (ConstExpr or ParamExpr or ColumnExpr or CastExpr or NotExpr or AndExpr or OrExpr or CompareExpr
            or IsNullExpr or IsBoolExpr or IsDistinctExpr or ArithExpr or NegateExpr or CoalesceExpr))
        {
            return false;
        }

        foreach (var child in expr.Children)
        {
            if (!IsCheap(child))
            {
                return false;
            }
        }

        return true;
    }
}
