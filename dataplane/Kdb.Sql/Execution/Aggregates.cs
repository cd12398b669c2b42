using System.Text;
using Kdb.Sql.Types;

namespace Kdb.Sql.Execution;

internal enum AggKind : byte
{
    Count,
    CountStar,
    Sum,
    Avg,
    Min,
    Max,
    StringAgg,
    BoolAnd,
    BoolOr,
    ArrayAgg,
}

/// <summary>One aggregate call of a query: what it computes over which argument expressions.</summary>
internal sealed class AggregateSpec
{
    public required AggKind Kind { get; init; }

    public required BoundExpr[] Arguments { get; init; }

    public required SqlType ResultType { get; init; }

    public bool Distinct { get; init; }

    public BoundExpr? Filter { get; init; }

    public (BoundExpr Expr, bool Descending, bool NullsFirst)[] OrderWithin { get; init; } = [];

    /// <summary>Canonical text of the call, so that the same aggregate written twice is computed once.</summary>
    public required string Key { get; init; }

    public AggState NewState() => new(this);

    public string Describe() => Key;
}

/// <summary>The running state of one aggregate for one group.</summary>
internal sealed class AggState
{
    private readonly AggregateSpec _spec;
    private long _count;
    private long _intSum;
    private decimal _decimalSum;
    private Value _spilledSum; // NULL until the sum leaves decimal's exact range
    private double _floatSum;
    private bool _overflowToDecimal;
    private Value _best;
    private bool _bool;
    private bool _seen;
    private HashSet<Value[]>? _distinct;
    private List<(Value[] SortKey, Value Value, Value Delimiter)>? _ordered;
    private StringBuilder? _text;
    private List<Value>? _items;

    /// <summary>Adds exactly: decimal while the sum fits it exactly, then arbitrary precision.</summary>
    private void AddNumeric(in Value value)
    {
        if (_spilledSum.IsNull && !value.IsBigNumeric)
        {
            var d = value.ToDecimal();
            try
            {
                var sum = _decimalSum + d;
                if (sum.Scale == Math.Max(_decimalSum.Scale, d.Scale))
                {
                    _decimalSum = sum;
                    return;
                }
            }
            catch (OverflowException)
            {
            }
        }

        _spilledSum = NumericMath.Add(_spilledSum.IsNull ? Value.FromNumeric(_decimalSum) : _spilledSum, value);
    }

    private Value NumericTotal()
    {
        var sum = _spilledSum.IsNull ? Value.FromNumeric(_decimalSum) : _spilledSum;
        return _overflowToDecimal ? sum : NumericMath.Add(sum, Value.FromInt(_intSum));
    }
    public AggState(AggregateSpec spec)
    {
        _spec = spec;
        _bool = spec.Kind == AggKind.BoolAnd;
        if (spec.Distinct)
        {
            _distinct = new HashSet<Value[]>(RowComparer.Instance);
        }
    }

    public void Add(Value[] row, ExecContext ctx)
    {
        if (_spec.Filter is not null && !_spec.Filter.IsTrue(row, ctx))
        {
            return;
        }

        if (_spec.Kind == AggKind.CountStar)
        {
            _count++;
            return;
        }

        var value = _spec.Arguments[0].Eval(row, ctx);
        if (value.IsNull && _spec.Kind != AggKind.ArrayAgg)
        {
            return;
        }

        if (_distinct is not null)
        {
            var key = _spec.Kind == AggKind.StringAgg ? new[] { value, _spec.Arguments[1].Eval(row, ctx) } : new[] { value };
            if (!_distinct.Add(key))
            {
                return;
            }

            ctx.ChargeMemory(ExecContext.RowBytes(key));
        }

        if (_spec.OrderWithin.Length > 0 && _spec.Kind is AggKind.StringAgg or AggKind.ArrayAgg)
        {
            _ordered ??= [];
            var sortKey = new Value[_spec.OrderWithin.Length];
            for (var i = 0; i < sortKey.Length; i++)
            {
                sortKey[i] = _spec.OrderWithin[i].Expr.Eval(row, ctx);
            }

            var delimiter = _spec.Kind == AggKind.StringAgg ? _spec.Arguments[1].Eval(row, ctx) : Value.Null;
            _ordered.Add((sortKey, value, delimiter));
            ctx.ChargeMemory(ExecContext.RowBytes(sortKey) + 48);
            return;
        }

        Accumulate(value, _spec.Kind == AggKind.StringAgg ? _spec.Arguments[1].Eval(row, ctx) : Value.Null, ctx);
    }

    private void Accumulate(in Value value, in Value delimiter, ExecContext ctx)
    {
        _count++;
        switch (_spec.Kind)
        {
            case AggKind.Count:
                break;
            case AggKind.Sum or AggKind.Avg:
                switch (value.Kind)
                {
                    case ValueKind.Int when !_overflowToDecimal:
                        try
                        {
                            _intSum = checked(_intSum + value.AsInt);
                        }
                        catch (OverflowException)
                        {
                            _overflowToDecimal = true;
                            AddNumeric(Value.FromInt(_intSum));
                            AddNumeric(value);
                        }

                        break;
                    case ValueKind.Int:
                        AddNumeric(value);
                        break;
                    case ValueKind.Numeric:
                        AddNumeric(value);
                        break;
                    case ValueKind.Float:
                        _floatSum += value.AsFloat;
                        break;
                    case ValueKind.Interval:
                        var current = _seen ? _best.AsInterval : default;
                        var add = value.AsInterval;
                        _best = Value.FromInterval(new Interval(current.Months + add.Months, current.Days + add.Days, current.Microseconds + add.Microseconds));
                        _seen = true;
                        break;
                }

                break;
            case AggKind.Min:
                if (!_seen || Value.Compare(value, _best) < 0)
                {
                    _best = value;
                    _seen = true;
                }

                break;
            case AggKind.Max:
                if (!_seen || Value.Compare(value, _best) > 0)
                {
                    _best = value;
                    _seen = true;
                }

                break;
            case AggKind.BoolAnd:
                _bool &= value.AsBool;
                break;
            case AggKind.BoolOr:
                _bool |= value.AsBool;
                break;
            case AggKind.StringAgg:
                if (_text is null)
                {
                    _text = new StringBuilder();
                }
                else if (!delimiter.IsNull)
                {
                    _text.Append(delimiter.Kind == ValueKind.Text ? delimiter.AsText : ValueText.Format(delimiter, default));
                }

                var piece = value.Kind == ValueKind.Text ? value.AsText : ValueText.Format(value, _spec.Arguments[0].Type);
                _text.Append(piece);
                ctx.ChargeMemory(piece.Length * 2);
                break;
            case AggKind.ArrayAgg:
                _items ??= [];
                _items.Add(value);
                break;
        }
    }

    public Value Result(ExecContext ctx)
    {
        if (_ordered is not null)
        {
            var keys = _spec.OrderWithin;
            _ordered.Sort((a, b) =>
            {
                for (var i = 0; i < keys.Length; i++)
                {
                    var c = SortOp.CompareKey(a.SortKey[i], b.SortKey[i], keys[i].Descending, keys[i].NullsFirst);
                    if (c != 0)
                    {
                        return c;
                    }
                }

                return 0;
            });
            foreach (var (_, value, delimiter) in _ordered)
            {
                Accumulate(value, delimiter, ctx);
            }

            _ordered = null;
        }

        switch (_spec.Kind)
        {
            case AggKind.Count or AggKind.CountStar:
                return Value.FromInt(_count);
            case AggKind.Sum:
                if (_count == 0)
                {
                    return Value.Null;
                }

                return _spec.ResultType.Id switch
                {
                    SqlTypeId.Int8 => _overflowToDecimal ? throw new SqlException(SqlState.NumericValueOutOfRange, "bigint out of range") : Value.FromInt(_intSum),
                    SqlTypeId.Numeric => NumericTotal(),
                    SqlTypeId.Float4 => Value.FromFloat((float)_floatSum),
                    SqlTypeId.Float8 => Value.FromFloat(_floatSum),
                    _ => _best,
                };
            case AggKind.Avg:
                if (_count == 0)
                {
                    return Value.Null;
                }

                if (_spec.ResultType.Id == SqlTypeId.Float8)
                {
                    return Value.FromFloat(_floatSum / _count);
                }

                if (_spec.ResultType.Id == SqlTypeId.Interval)
                {
                    return ArithExpr.Compute(Syntax.BinaryOp.Divide, ArithKind.IntervalDivNumber, _best, Value.FromInt(_count), SqlType.Interval);
                }

                return NumericMath.Divide(NumericTotal(), Value.FromInt(_count));
            case AggKind.Min or AggKind.Max:
                return _seen ? _best : Value.Null;
            case AggKind.BoolAnd or AggKind.BoolOr:
                return _count == 0 ? Value.Null : Value.FromBool(_bool);
            case AggKind.StringAgg:
                return _text is null ? Value.Null : Value.FromText(_text.ToString());
            case AggKind.ArrayAgg:
                return _items is null ? Value.Null : Value.FromArray([.. _items]);
            default:
                return Value.Null;
        }
    }
}
