using Kdb.Sql.Syntax;
using Kdb.Sql.Types;

namespace Kdb.Sql.Execution;

/// <summary>A bound, typed expression evaluated against the current row of its operator.</summary>
internal abstract class BoundExpr
{
    protected BoundExpr(SqlType type) => Type = type;

    public SqlType Type { get; set; }

    public abstract Value Eval(Value[] row, ExecContext ctx);

    /// <summary>True when the value cannot change during one execution (no column, no volatile function).</summary>
    public virtual bool IsConstant => false;

    /// <summary>True when the expression reads the current row (columns of the scope it was bound in).</summary>
    public virtual bool ReadsRow => true;

    /// <summary>EXPLAIN text.</summary>
    public abstract string Describe();

    public IEnumerable<BoundExpr> Children => GetChildren();

    protected virtual IEnumerable<BoundExpr> GetChildren() => [];

    /// <summary>Tests a predicate: NULL counts as false.</summary>
    public bool IsTrue(Value[] row, ExecContext ctx)
    {
        var v = Eval(row, ctx);
        return v.Kind == ValueKind.Bool && v.AsBool;
    }
}

internal sealed class ConstExpr(Value value, SqlType type) : BoundExpr(type)
{
    public Value Value { get; } = value;

    public override Value Eval(Value[] row, ExecContext ctx) => Value;

    public override bool IsConstant => true;

    public override bool ReadsRow => false;

    public override string Describe() => Value.IsNull ? "NULL" : Type.IsString || Type.Id is SqlTypeId.Date or SqlTypeId.Timestamp or SqlTypeId.TimestampTz or SqlTypeId.Uuid or SqlTypeId.Jsonb or SqlTypeId.Interval
        ? "'" + ValueText.Format(Value, Type).Replace("'", "''", StringComparison.Ordinal) + "'::" + Type.DisplayName
        : ValueText.Format(Value, Type);
}

internal sealed class ParamExpr(int index, SqlType type) : BoundExpr(type)
{
    public int Index { get; } = index;

    public override Value Eval(Value[] row, ExecContext ctx) => ctx.Parameters[Index];

    public override bool IsConstant => true;

    public override bool ReadsRow => false;

    public override string Describe() => "$" + (Index + 1);
}

internal sealed class ColumnExpr(int index, SqlType type, string name) : BoundExpr(type)
{
    public int Index { get; } = index;

    public string Name { get; } = name;

    public override Value Eval(Value[] row, ExecContext ctx) => row[Index];

    public override string Describe() => Name;
}

/// <summary>A column of an enclosing query's row (correlated subquery, LATERAL).</summary>
internal sealed class OuterColumnExpr(int depth, int index, SqlType type, string name) : BoundExpr(type)
{
    public int Depth { get; } = depth;

    public int Index { get; } = index;

    public override Value Eval(Value[] row, ExecContext ctx) => ctx.OuterRow(Depth)[Index];

    public override bool IsConstant => true;

    public override bool ReadsRow => false;

    public override string Describe() => Name;

    public string Name { get; } = name;
}

internal sealed class CastExpr(BoundExpr operand, SqlType to, bool explicitCast) : BoundExpr(to)
{
    public BoundExpr Operand { get; } = operand;

    public override Value Eval(Value[] row, ExecContext ctx) => Casts.Convert(Operand.Eval(row, ctx), Operand.Type, Type, explicitCast);

    public override bool IsConstant => Operand.IsConstant;

    public override bool ReadsRow => Operand.ReadsRow;

    public override string Describe() => "(" + Operand.Describe() + ")::" + Type.DisplayName;

    protected override IEnumerable<BoundExpr> GetChildren() => [Operand];
}

internal sealed class NotExpr(BoundExpr operand) : BoundExpr(SqlType.Bool)
{
    public BoundExpr Operand { get; } = operand;

    public override Value Eval(Value[] row, ExecContext ctx)
    {
        var v = Operand.Eval(row, ctx);
        return v.IsNull ? Value.Null : Value.FromBool(!v.AsBool);
    }

    public override bool IsConstant => Operand.IsConstant;

    public override bool ReadsRow => Operand.ReadsRow;

    public override string Describe() => "NOT " + Operand.Describe();

    protected override IEnumerable<BoundExpr> GetChildren() => [Operand];
}

internal sealed class AndExpr(BoundExpr left, BoundExpr right) : BoundExpr(SqlType.Bool)
{
    public BoundExpr Left { get; } = left;

    public BoundExpr Right { get; } = right;

    public override Value Eval(Value[] row, ExecContext ctx)
    {
        var l = Left.Eval(row, ctx);
        if (l.Kind == ValueKind.Bool && !l.AsBool)
        {
            return Value.False;
        }

        var r = Right.Eval(row, ctx);
        if (r.Kind == ValueKind.Bool && !r.AsBool)
        {
            return Value.False;
        }

        return l.IsNull || r.IsNull ? Value.Null : Value.True;
    }

    public override bool IsConstant => Left.IsConstant && Right.IsConstant;

    public override bool ReadsRow => Left.ReadsRow || Right.ReadsRow;

    public override string Describe() => "(" + Left.Describe() + " AND " + Right.Describe() + ")";

    protected override IEnumerable<BoundExpr> GetChildren() => [Left, Right];
}

internal sealed class OrExpr(BoundExpr left, BoundExpr right) : BoundExpr(SqlType.Bool)
{
    public BoundExpr Left { get; } = left;

    public BoundExpr Right { get; } = right;

    public override Value Eval(Value[] row, ExecContext ctx)
    {
        var l = Left.Eval(row, ctx);
        if (l.Kind == ValueKind.Bool && l.AsBool)
        {
            return Value.True;
        }

        var r = Right.Eval(row, ctx);
        if (r.Kind == ValueKind.Bool && r.AsBool)
        {
            return Value.True;
        }

        return l.IsNull || r.IsNull ? Value.Null : Value.False;
    }

    public override bool IsConstant => Left.IsConstant && Right.IsConstant;

    public override bool ReadsRow => Left.ReadsRow || Right.ReadsRow;

    public override string Describe() => "(" + Left.Describe() + " OR " + Right.Describe() + ")";

    protected override IEnumerable<BoundExpr> GetChildren() => [Left, Right];
}

/// <summary>=, &lt;&gt;, &lt;, &lt;=, &gt;, &gt;= on operands the binder brought to one type.</summary>
internal sealed class CompareExpr(BinaryOp op, BoundExpr left, BoundExpr right) : BoundExpr(SqlType.Bool)
{
    public BinaryOp Op { get; } = op;

    public BoundExpr Left { get; } = left;

    public BoundExpr Right { get; } = right;

    public override Value Eval(Value[] row, ExecContext ctx)
    {
        var l = Left.Eval(row, ctx);
        if (l.IsNull)
        {
            return Value.Null;
        }

        var r = Right.Eval(row, ctx);
        if (r.IsNull)
        {
            return Value.Null;
        }

        return Value.FromBool(Test(Op, Value.Compare(l, r)));
    }

    public static bool Test(BinaryOp op, int c) => op switch
    {
        BinaryOp.Equal => c == 0,
        BinaryOp.NotEqual => c != 0,
        BinaryOp.Less => c < 0,
        BinaryOp.LessOrEqual => c <= 0,
        BinaryOp.Greater => c > 0,
        _ => c >= 0,
    };

    public static string Symbol(BinaryOp op) => op switch
    {
        BinaryOp.Equal => "=",
        BinaryOp.NotEqual => "<>",
        BinaryOp.Less => "<",
        BinaryOp.LessOrEqual => "<=",
        BinaryOp.Greater => ">",
        _ => ">=",
    };

    public override bool IsConstant => Left.IsConstant && Right.IsConstant;

    public override bool ReadsRow => Left.ReadsRow || Right.ReadsRow;

    public override string Describe() => "(" + Left.Describe() + " " + Symbol(Op) + " " + Right.Describe() + ")";

    protected override IEnumerable<BoundExpr> GetChildren() => [Left, Right];
}

internal sealed class IsNullExpr(BoundExpr operand, bool negated) : BoundExpr(SqlType.Bool)
{
    public BoundExpr Operand { get; } = operand;

    public override Value Eval(Value[] row, ExecContext ctx) => Value.FromBool(Operand.Eval(row, ctx).IsNull != negated);

    public override bool IsConstant => Operand.IsConstant;

    public override bool ReadsRow => Operand.ReadsRow;

    public override string Describe() => Operand.Describe() + (negated ? " IS NOT NULL" : " IS NULL");

    protected override IEnumerable<BoundExpr> GetChildren() => [Operand];
}

internal sealed class IsBoolExpr(BoundExpr operand, bool? expected, bool negated) : BoundExpr(SqlType.Bool)
{
    public override Value Eval(Value[] row, ExecContext ctx)
    {
        var v = operand.Eval(row, ctx);
        var matches = expected is null ? v.IsNull : !v.IsNull && v.AsBool == expected.Value;
        return Value.FromBool(matches != negated);
    }

    public override bool ReadsRow => operand.ReadsRow;

    public override string Describe() => operand.Describe() + " IS " + (negated ? "NOT " : string.Empty) + (expected is null ? "UNKNOWN" : expected.Value ? "TRUE" : "FALSE");

    protected override IEnumerable<BoundExpr> GetChildren() => [operand];
}

internal sealed class IsDistinctExpr(BoundExpr left, BoundExpr right, bool negated) : BoundExpr(SqlType.Bool)
{
    public override Value Eval(Value[] row, ExecContext ctx)
    {
        var l = left.Eval(row, ctx);
        var r = right.Eval(row, ctx);
        bool distinct = l.IsNull || r.IsNull ? l.IsNull != r.IsNull : Value.Compare(l, r) != 0;
        return Value.FromBool(distinct != negated);
    }

    public override bool ReadsRow => left.ReadsRow || right.ReadsRow;

    public override string Describe() => left.Describe() + (negated ? " IS NOT DISTINCT FROM " : " IS DISTINCT FROM ") + right.Describe();

    protected override IEnumerable<BoundExpr> GetChildren() => [left, right];
}

internal sealed class InListExpr(BoundExpr operand, BoundExpr[] items, bool negated) : BoundExpr(SqlType.Bool)
{
    public BoundExpr Operand { get; } = operand;

    public BoundExpr[] Items { get; } = items;

    public bool Negated { get; } = negated;

    public override Value Eval(Value[] row, ExecContext ctx)
    {
        var v = Operand.Eval(row, ctx);
        if (v.IsNull)
        {
            return Value.Null;
        }

        var sawNull = false;
        foreach (var item in Items)
        {
            var candidate = item.Eval(row, ctx);
            if (candidate.IsNull)
            {
                sawNull = true;
            }
            else if (Value.Compare(v, candidate) == 0)
            {
                return Value.FromBool(!Negated);
            }
        }

        return sawNull ? Value.Null : Value.FromBool(Negated);
    }

    public override bool ReadsRow => Operand.ReadsRow || Array.Exists(Items, i => i.ReadsRow);

    public override string Describe() => Operand.Describe() + (Negated ? " NOT IN (" : " IN (") + string.Join(", ", Array.ConvertAll(Items, i => i.Describe())) + ")";

    protected override IEnumerable<BoundExpr> GetChildren() => [Operand, .. Items];
}

internal sealed class CaseExpr(BoundExpr? operand, (BoundExpr When, BoundExpr Then)[] arms, BoundExpr? otherwise, SqlType type) : BoundExpr(type)
{
    public override Value Eval(Value[] row, ExecContext ctx)
    {
        if (operand is null)
        {
            foreach (var (when, then) in arms)
            {
                if (when.IsTrue(row, ctx))
                {
                    return then.Eval(row, ctx);
                }
            }
        }
        else
        {
            var v = operand.Eval(row, ctx);
            if (!v.IsNull)
            {
                foreach (var (when, then) in arms)
                {
                    var w = when.Eval(row, ctx);
                    if (!w.IsNull && Value.Compare(v, w) == 0)
                    {
                        return then.Eval(row, ctx);
                    }
                }
            }
        }

        return otherwise?.Eval(row, ctx) ?? Value.Null;
    }

    public override bool ReadsRow => true;

    public override string Describe() => "CASE ... END";

    protected override IEnumerable<BoundExpr> GetChildren()
    {
        if (operand is not null)
        {
            yield return operand;
        }

        foreach (var (when, then) in arms)
        {
            yield return when;
            yield return then;
        }

        if (otherwise is not null)
        {
            yield return otherwise;
        }
    }
}

/// <summary>A scalar function call; <see cref="Impl"/> gets the evaluated arguments in a reused buffer.</summary>
internal sealed class FuncExpr : BoundExpr
{
    private readonly Value[] _args;

    public FuncExpr(string name, BoundExpr[] arguments, SqlType type, Func<Value[], ExecContext, Value> impl, bool strict, bool volatileFunction)
        : base(type)
    {
        Name = name;
        Arguments = arguments;
        Impl = impl;
        Strict = strict;
        Volatile = volatileFunction;
        _args = new Value[arguments.Length];
    }

    public string Name { get; }

    public BoundExpr[] Arguments { get; }

    public Func<Value[], ExecContext, Value> Impl { get; }

    /// <summary>Strict functions return NULL on any NULL argument without being called.</summary>
    public bool Strict { get; }

    public bool Volatile { get; }

    public override Value Eval(Value[] row, ExecContext ctx)
    {
        // A fresh array per call: a function may be re-entered through a correlated subquery of its own argument.
        var args = _args.Length == 0 ? _args : new Value[_args.Length];
        for (var i = 0; i < Arguments.Length; i++)
        {
            args[i] = Arguments[i].Eval(row, ctx);
            if (Strict && args[i].IsNull)
            {
                return Value.Null;
            }
        }

        return Impl(args, ctx);
    }

    public override bool IsConstant => !Volatile && Array.TrueForAll(Arguments, a => a.IsConstant);

    public override bool ReadsRow => Array.Exists(Arguments, a => a.ReadsRow);

    public override string Describe() => Name + "(" + string.Join(", ", Array.ConvertAll(Arguments, a => a.Describe())) + ")";

    protected override IEnumerable<BoundExpr> GetChildren() => Arguments;
}

/// <summary>A window function's value, placed after the row the window step receives.</summary>
internal sealed class WindowRefExpr(Planning.WindowBinding window, int index, SqlType type, string name) : BoundExpr(type)
{
    public override Value Eval(Value[] row, ExecContext ctx) => row[window.BaseWidth + index];

    public override string Describe() => name + "(...) OVER (...)";
}
