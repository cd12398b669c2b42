using Kdb.Sql.Syntax;
using Kdb.Sql.Types;

namespace Kdb.Sql.Execution;

/// <summary>How an arithmetic node computes, chosen once by the binder from the operand types.</summary>
internal enum ArithKind : byte
{
    Int,
    Float,
    Numeric,
    DatePlusInt,
    DateMinusInt,
    DateMinusDate,
    TimestampPlusInterval,
    TimestampMinusInterval,
    TimestampMinusTimestamp,
    IntervalPlusInterval,
    IntervalMinusInterval,
    IntervalTimesNumber,
    IntervalDivNumber,
    DatePlusInterval,
    DateMinusInterval,
}

/// <summary>+ - * / % ^ with PostgreSQL's overflow (22003) and division-by-zero (22012) errors.</summary>
internal sealed class ArithExpr(BinaryOp op, ArithKind kind, BoundExpr left, BoundExpr right, SqlType type) : BoundExpr(type)
{
    public override Value Eval(Value[] row, ExecContext ctx)
    {
        var l = left.Eval(row, ctx);
        if (l.IsNull)
        {
            return Value.Null;
        }

        var r = right.Eval(row, ctx);
        if (r.IsNull)
        {
            return Value.Null;
        }

        return Compute(op, kind, l, r, Type);
    }

    public override bool IsConstant => left.IsConstant && right.IsConstant;

    public override bool ReadsRow => left.ReadsRow || right.ReadsRow;

    public override string Describe() => "(" + left.Describe() + " " + Symbol(op) + " " + right.Describe() + ")";

    protected override IEnumerable<BoundExpr> GetChildren() => [left, right];

    private static string Symbol(BinaryOp op) => op switch
    {
        BinaryOp.Add => "+",
        BinaryOp.Subtract => "-",
        BinaryOp.Multiply => "*",
        BinaryOp.Divide => "/",
        BinaryOp.Modulo => "%",
        _ => "^",
    };

    public static Value Compute(BinaryOp op, ArithKind kind, in Value l, in Value r, SqlType type)
    {
        switch (kind)
        {
            case ArithKind.Int:
                return Value.FromInt(IntOp(op, l.AsInt, r.AsInt, type));
            case ArithKind.Float:
                return Value.FromFloat(FloatOp(op, l.ToDouble(), r.ToDouble(), type.Id == SqlTypeId.Float4));
            case ArithKind.Numeric:
                return NumericOp(op, l, r);
            case ArithKind.DatePlusInt:
                return Value.FromDate(checked(l.AsDate + (int)r.AsInt));
            case ArithKind.DateMinusInt:
                return Value.FromDate(checked(l.AsDate - (int)r.AsInt));
            case ArithKind.DateMinusDate:
                return Value.FromInt(l.AsDate - r.AsDate);
            case ArithKind.DatePlusInterval:
                return Value.FromTimestamp(AddInterval(l.AsDate * 86_400_000_000L, r.AsInterval, 1));
            case ArithKind.DateMinusInterval:
                return Value.FromTimestamp(AddInterval(l.AsDate * 86_400_000_000L, r.AsInterval, -1));
            case ArithKind.TimestampPlusInterval:
                return Value.FromTimestamp(AddInterval(l.AsTimestamp, r.AsInterval, 1));
            case ArithKind.TimestampMinusInterval:
                return Value.FromTimestamp(AddInterval(l.AsTimestamp, r.AsInterval, -1));
            case ArithKind.TimestampMinusTimestamp:
                var diff = l.AsTimestamp - r.AsTimestamp;
                return Value.FromInterval(new Interval(0, (int)(diff / 86_400_000_000L), diff % 86_400_000_000L));
            case ArithKind.IntervalPlusInterval:
                var a = l.AsInterval;
                var b = r.AsInterval;
                return Value.FromInterval(new Interval(a.Months + b.Months, a.Days + b.Days, a.Microseconds + b.Microseconds));
            case ArithKind.IntervalMinusInterval:
                var c = l.AsInterval;
                var d = r.AsInterval;
                return Value.FromInterval(new Interval(c.Months - d.Months, c.Days - d.Days, c.Microseconds - d.Microseconds));
            case ArithKind.IntervalTimesNumber:
                return Value.FromInterval(Scale(l.Kind == ValueKind.Interval ? l.AsInterval : r.AsInterval, l.Kind == ValueKind.Interval ? r.ToDouble() : l.ToDouble()));
            case ArithKind.IntervalDivNumber:
                var divisor = r.ToDouble();
                if (divisor == 0)
                {
                    throw DivisionByZero();
                }

                return Value.FromInterval(Scale(l.AsInterval, 1 / divisor));
            default:
                throw new SqlException(SqlState.InternalError, "unknown arithmetic kind");
        }
    }

    private static Interval Scale(Interval value, double factor)
    {
        // PostgreSQL cascades fractional months into days and fractional days into time.
        var months = value.Months * factor;
        var wholeMonths = Math.Truncate(months);
        var days = (value.Days * factor) + ((months - wholeMonths) * 30);
        var wholeDays = Math.Truncate(days);
        var micros = (value.Microseconds * factor) + ((days - wholeDays) * 86_400_000_000d);
        return new Interval((int)wholeMonths, (int)wholeDays, (long)Math.Round(micros));
    }

    private static long AddInterval(long micros, Interval interval, int sign)
    {
        var dt = DateTimeText.ToDateTime(micros);
        dt = dt.AddMonths(sign * interval.Months).AddDays(sign * interval.Days);
        return DateTimeText.FromDateTime(dt) + (sign * interval.Microseconds);
    }

    private static long IntOp(BinaryOp op, long a, long b, SqlType type)
    {
        long result;
        try
        {
            result = op switch
            {
                BinaryOp.Add => checked(a + b),
                BinaryOp.Subtract => checked(a - b),
                BinaryOp.Multiply => checked(a * b),
                BinaryOp.Divide => b == 0 ? throw DivisionByZero() : (a == long.MinValue && b == -1 ? throw OutOfRange(type) : a / b),
                BinaryOp.Modulo => b == 0 ? throw DivisionByZero() : (b == -1 ? 0 : a % b),
                BinaryOp.BitAnd => a & b,
                BinaryOp.BitOr => a | b,
                BinaryOp.ShiftLeft => a << (int)b,
                BinaryOp.ShiftRight => a >> (int)b,
                _ => throw new SqlException(SqlState.UndefinedFunction, "operator does not exist for integers"),
            };
        }
        catch (OverflowException)
        {
            throw OutOfRange(type);
        }

        var (min, max) = type.Id switch
        {
            SqlTypeId.Int2 => ((long)short.MinValue, (long)short.MaxValue),
            SqlTypeId.Int4 => (int.MinValue, int.MaxValue),
            _ => (long.MinValue, long.MaxValue),
        };
        return result < min || result > max ? throw OutOfRange(type) : result;
    }

    private static double FloatOp(BinaryOp op, double a, double b, bool single)
    {
        var result = op switch
        {
            BinaryOp.Add => a + b,
            BinaryOp.Subtract => a - b,
            BinaryOp.Multiply => a * b,
            BinaryOp.Divide => b == 0 ? throw DivisionByZero() : a / b,
            BinaryOp.Modulo => b == 0 ? throw DivisionByZero() : Math.IEEERemainder(a, b),
            BinaryOp.Power => Math.Pow(a, b),
            _ => throw new SqlException(SqlState.UndefinedFunction, "operator does not exist for floats"),
        };
        if (double.IsInfinity(result) && !double.IsInfinity(a) && !double.IsInfinity(b))
        {
            throw new SqlException(SqlState.NumericValueOutOfRange, "value out of range: overflow");
        }

        return single ? (float)result : result;
    }

    public static Value NumericOp(BinaryOp op, in Value a, in Value b) => op switch
    {
        BinaryOp.Add => NumericMath.Add(a, b),
        BinaryOp.Subtract => NumericMath.Subtract(a, b),
        BinaryOp.Multiply => NumericMath.Multiply(a, b),
        BinaryOp.Divide => NumericMath.Divide(a, b),
        BinaryOp.Modulo => NumericMath.Modulo(a, b),
        BinaryOp.Power => Value.FromNumeric(NumericPower(a.ToDecimal(), b.ToDecimal())),
        _ => throw new SqlException(SqlState.UndefinedFunction, "operator does not exist for numeric"),
    };

    public static decimal NumericPower(decimal a, decimal b)
    {
        try
        {
            return (decimal)Math.Pow((double)a, (double)b);
        }
        catch (OverflowException)
        {
            throw NumericMath.Overflow();
        }
    }

    public static SqlException DivisionByZero() => new(SqlState.DivisionByZero, "division by zero");

    private static SqlException OutOfRange(SqlType type) => new(SqlState.NumericValueOutOfRange, $"{type.DisplayName} out of range");
}

/// <summary>- x.</summary>
internal sealed class NegateExpr(BoundExpr operand) : BoundExpr(operand.Type)
{
    public override Value Eval(Value[] row, ExecContext ctx)
    {
        var v = operand.Eval(row, ctx);
        switch (v.Kind)
        {
            case ValueKind.Null:
                return v;
            case ValueKind.Int:
                var min = Type.Id switch { SqlTypeId.Int2 => short.MinValue, SqlTypeId.Int4 => int.MinValue, _ => long.MinValue };
                return v.AsInt == min ? throw new SqlException(SqlState.NumericValueOutOfRange, $"{Type.DisplayName} out of range") : Value.FromInt(-v.AsInt);
            case ValueKind.Float:
                return Value.FromFloat(-v.AsFloat);
            case ValueKind.Numeric:
                return NumericMath.Negate(v);
            case ValueKind.Interval:
                var i = v.AsInterval;
                return Value.FromInterval(new Interval(-i.Months, -i.Days, -i.Microseconds));
            default:
                throw new SqlException(SqlState.UndefinedFunction, $"operator does not exist: - {Type.DisplayName}");
        }
    }

    public override bool IsConstant => operand.IsConstant;

    public override bool ReadsRow => operand.ReadsRow;

    public override string Describe() => "(- " + operand.Describe() + ")";

    protected override IEnumerable<BoundExpr> GetChildren() => [operand];
}
