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
