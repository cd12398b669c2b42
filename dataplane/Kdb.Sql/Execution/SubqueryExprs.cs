using Kdb.Sql.Syntax;
using Kdb.Sql.Types;

namespace Kdb.Sql.Execution;

/// <summary>
/// Base of expressions that run a subquery. A correlated one runs per outer row with that row pushed as the
/// outer row; an uncorrelated one runs once per execution and its result is reused.
/// </summary>
internal abstract class SubqueryExprBase(Operator plan, bool correlated, SqlType type) : BoundExpr(type)
{
    private long _cachedFor;
    private Value _cached;

    protected Operator Plan { get; } = plan;

    public bool Correlated { get; } = correlated;

    public override bool ReadsRow => Correlated;

    public override Value Eval(Value[] row, ExecContext ctx)
    {
        if (!Correlated && _cachedFor == ctx.Execution && CacheResult)
        {
            return _cached;
        }

        ctx.PushOuter(row);
        try
        {
            Plan.Open(ctx);
            try
            {
                var result = Run(row, ctx);
                if (!Correlated && CacheResult)
                {
                    _cached = result;
                    _cachedFor = ctx.Execution;
                }

                return result;
            }
            finally
            {
                Plan.Close(ctx);
            }
        }
        finally
        {
            ctx.PopOuter();
        }
    }

    /// <summary>True when the result does not depend on the current row (IN depends on its operand).</summary>
    protected virtual bool CacheResult => true;

    protected abstract Value Run(Value[] row, ExecContext ctx);

    public override string Describe() => (Correlated ? "(SubPlan)" : "(InitPlan)");
}

internal sealed class ScalarSubqueryExpr(Operator plan, bool correlated, SqlType type) : SubqueryExprBase(plan, correlated, type)
{
    protected override Value Run(Value[] row, ExecContext ctx)
    {
        if (!Plan.Next(ctx))
        {
            return Value.Null;
        }

        var value = Plan.Row[0];
        if (Plan.Next(ctx))
        {
            throw new SqlException(SqlState.CardinalityViolation, "more than one row returned by a subquery used as an expression");
        }

        return value;
    }
}

/// <summary>ARRAY(SELECT ...): the subquery's single column as an array (empty when no rows).</summary>
internal sealed class ArraySubqueryExpr(Operator plan, bool correlated, SqlType type) : SubqueryExprBase(plan, correlated, type)
{
    protected override Value Run(Value[] row, ExecContext ctx)
    {
        var items = new List<Value>();
        while (Plan.Next(ctx))
        {
            items.Add(Plan.Row[0]);
        }

        return Value.FromArray([.. items]);
    }
}

internal sealed class ExistsExpr(Operator plan, bool correlated, bool negated) : SubqueryExprBase(plan, correlated, SqlType.Bool)
{
    protected override Value Run(Value[] row, ExecContext ctx) => Value.FromBool(Plan.Next(ctx) != negated);
}

/// <summary>x [NOT] IN (SELECT ...) and x op ANY/ALL (SELECT ...), with SQL's NULL rules.</summary>
internal sealed class InSubqueryExpr(BoundExpr operand, Operator plan, bool correlated, BinaryOp op, bool all, bool negated) : SubqueryExprBase(plan, correlated, SqlType.Bool)
{
    private long _setFor;
    private HashSet<Value>? _set;
    private bool _setHasNull;

    public override bool ReadsRow => true;

    protected override bool CacheResult => false;

    public override Value Eval(Value[] row, ExecContext ctx)
    {
        var v = operand.Eval(row, ctx);
        if (!Correlated && op == BinaryOp.Equal && !all)
        {
            // Uncorrelated IN: hash the subquery's rows once per execution.
            if (_setFor != ctx.Execution)
            {
                BuildSet(row, ctx);
            }

            if (v.IsNull)
            {
                return _set!.Count == 0 && !_setHasNull ? Value.FromBool(negated) : Value.Null;
            }

            if (_set!.Contains(v))
            {
                return Value.FromBool(!negated);
            }

            return _setHasNull ? Value.Null : Value.FromBool(negated);
        }

        return base.Eval(row, ctx);
    }

    private void BuildSet(Value[] row, ExecContext ctx)
    {
        _set = new HashSet<Value>(ValueComparer.Instance);
        _setHasNull = false;
        ctx.PushOuter(row);
        try
        {
            Plan.Open(ctx);
            while (Plan.Next(ctx))
            {
                var item = Plan.Row[0];
                if (item.IsNull)
                {
                    _setHasNull = true;
                }
                else if (_set.Add(item))
                {
                    ctx.ChargeMemory(48);
                }
            }

            Plan.Close(ctx);
        }
        finally
        {
            ctx.PopOuter();
        }

        _setFor = ctx.Execution;
    }

    protected override Value Run(Value[] row, ExecContext ctx)
    {
        var v = operand.Eval(row, ctx);
        var sawNull = v.IsNull;
        var any = false;
        var rows = 0;
        while (Plan.Next(ctx))
        {
            rows++;
            var item = Plan.Row[0];
            if (v.IsNull || item.IsNull)
            {
                sawNull = true;
                continue;
            }

            var matches = CompareExpr.Test(op, Value.Compare(v, item));
            if (all && !matches)
            {
                return Value.FromBool(negated);
            }

            if (!all && matches)
            {
                any = true;
                break;
            }
        }

        bool? result = all
            ? (rows == 0 ? true : sawNull ? null : true)
            : (any ? true : sawNull && rows > 0 ? null : false);
        return result is null ? Value.Null : Value.FromBool(result.Value != negated);
    }
}

/// <summary>Hashes single values consistently with <see cref="Value.Compare"/>.</summary>
internal sealed class ValueComparer : IEqualityComparer<Value>
{
    public static readonly ValueComparer Instance = new();

    public bool Equals(Value x, Value y) => Value.Compare(x, y) == 0;

    public int GetHashCode(Value obj) => obj.GetStableHash();
}
