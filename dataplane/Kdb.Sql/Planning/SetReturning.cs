using Kdb.Sql.Execution;
using Kdb.Sql.Syntax;
using Kdb.Sql.Types;

namespace Kdb.Sql.Planning;

/// <summary>A set-returning function bound once: its kind, its (coerced) arguments and its element type.</summary>
internal sealed record SrfCall(string Name, BoundExpr[] Args, SqlType Type)
{
    /// <summary>The rows the function yields for arguments evaluated over <paramref name="row"/>.</summary>
    public IEnumerable<Value> Generate(Value[] row, ExecContext ctx)
    {
        var values = new Value[Args.Length];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = Args[i].Eval(row, ctx);
        }

        return Name == "unnest" ? SetReturning.Unnest(values[0]) : SetReturning.Series(values, Type);
    }

    public string Describe() => Name + "(" + string.Join(", ", Array.ConvertAll(Args, a => a.Describe())) + ")";
}

/// <summary>
/// Set-returning functions of a select list, evaluated by ProjectSet steps after aggregation and windows. As in
/// PostgreSQL, a function runs at the lowest level where its arguments are known: level 0 when they hold no
/// set-returning function, else one above the highest level among them.
/// </summary>
internal sealed class SrfBinding
{
    private readonly List<List<SrfCall>> _levels = [];
    private readonly Dictionary<string, (int Level, int Index, SqlType Type)> _byText = new(StringComparer.Ordinal);
    private int[] _baseWidths = [];

    /// <summary>While arguments are bound: the highest level of any set-returning function met in them, -1 for none.</summary>
    private int _argLevel = -1;

    /// <summary>A call already bound here under the same SQL text (it yields the same rows, so it is computed once).</summary>
    public bool TryFind(string text, out (int Level, int Index, SqlType Type) found) => _byText.TryGetValue(text, out found);

    public (int Level, int Index) Add(string text, Func<SrfCall> bindWithArgs)
    {
        if (_byText.TryGetValue(text, out var existing))
        {
            _argLevel = Math.Max(_argLevel, existing.Level);
            return (existing.Level, existing.Index);
        }

        var (level, index) = Add(bindWithArgs);
        _byText[text] = (level, index, _levels[level][index].Type);
        return (level, index);
    }

    private (int Level, int Index) Add(Func<SrfCall> bindWithArgs)
    {
        var saved = _argLevel;
        _argLevel = -1;
        var call = bindWithArgs();
        var level = _argLevel + 1;
        _argLevel = Math.Max(saved, level);
        while (_levels.Count <= level)
        {
            _levels.Add([]);
        }

        _levels[level].Add(call);
        return (level, _levels[level].Count - 1);
    }

    /// <summary>Where a level's columns start in the row; known only once the plan below is built.</summary>
    public int BaseWidth(int level) => _baseWidths[level];

    /// <summary>Adds the ProjectSet steps, lowest level first.</summary>
    public Operator Plan(Operator input)
    {
        _baseWidths = new int[_levels.Count];
        for (var level = 0; level < _levels.Count; level++)
        {
            _baseWidths[level] = input.Width;
            input = new ProjectSetOp(input, _levels[level].ToArray());
        }

        return input;
    }
}

/// <summary>generate_series and unnest: argument typing and the values they yield, shared by FROM and the select list.</summary>
internal static class SetReturning
{
    public static bool IsSetReturning(string name) => name is "generate_series" or "unnest";

    /// <summary>Resolves the overload as PostgreSQL does (int4, int8, numeric, timestamp, timestamptz) and coerces the arguments.</summary>
    public static SrfCall Bind(string name, BoundExpr[] args, int position)
    {
        if (name == "unnest")
        {
            if (args.Length != 1 || args[0].Type.ElementType is null)
            {
                throw Functions.NoSuchFunction(name, args, position);
            }

            return new SrfCall(name, args, args[0].Type.ElementType!.Value);
        }

        if (args.Length is < 2 or > 3)
        {
            throw Functions.NoSuchFunction(name, args, position);
        }

        var type = args.Any(a => a.Type.Category == 'D') ? SqlType.TimestampTz
            : args.Any(a => a.Type.Id == SqlTypeId.Numeric) ? SqlType.Numeric
            : args.Any(a => a.Type.Id == SqlTypeId.Int8) ? SqlType.Int8 : SqlType.Int4;
        if (type.Id == SqlTypeId.TimestampTz)
        {
            type = args[0].Type.Id == SqlTypeId.Timestamp ? SqlType.Timestamp : SqlType.TimestampTz;
            if (args.Length < 3)
            {
                throw Functions.NoSuchFunction(name, args, position);
            }

            args[0] = TypeResolver.Coerce(args[0], type, false, position);
            args[1] = TypeResolver.Coerce(args[1], type, false, position);
            args[2] = TypeResolver.Coerce(args[2], SqlType.Interval, false, position);
        }
        else
        {
            for (var i = 0; i < args.Length; i++)
            {
                args[i] = TypeResolver.Coerce(args[i], type, false, position);
            }
        }

        return new SrfCall(name, args, type);
    }

    public static IEnumerable<Value> Unnest(Value array)
    {
        if (array.IsNull)
        {
            yield break;
        }

        foreach (var item in array.AsArray)
        {
            yield return item;
        }
    }

    public static IEnumerable<Value> Series(Value[] args, SqlType type)
    {
        var start = args[0];
        var stop = args[1];
        var step = args.Length > 2 ? args[2] : Value.FromInt(1);
        if (start.IsNull || stop.IsNull || step.IsNull)
        {
            yield break;
        }

        switch (type.Kind)
        {
            case ValueKind.Int:
                var s = step.AsInt;
                if (s == 0)
                {
                    throw new SqlException(SqlState.InvalidParameterValue, "step size cannot equal zero");
                }

                for (var v = start.AsInt; s > 0 ? v <= stop.AsInt : v >= stop.AsInt; v += s)
                {
                    yield return Value.FromInt(v);
                    if ((s > 0 && v > long.MaxValue - s) || (s < 0 && v < long.MinValue - s))
                    {
                        yield break;
                    }
                }

                break;
            case ValueKind.Numeric:
                var ns = step.ToDecimal();
                if (ns == 0)
                {
                    throw new SqlException(SqlState.InvalidParameterValue, "step size cannot equal zero");
                }

                for (var v = start.ToDecimal(); ns > 0 ? v <= stop.ToDecimal() : v >= stop.ToDecimal(); v += ns)
                {
                    yield return Value.FromNumeric(v);
                }

                break;
            default:
                var interval = step.AsInterval;
                if (interval.TotalMicroseconds == 0)
                {
                    throw new SqlException(SqlState.InvalidParameterValue, "step size cannot equal zero");
                }

                var forward = interval.TotalMicroseconds > 0;
                for (var v = start; forward ? v.AsTimestamp <= stop.AsTimestamp : v.AsTimestamp >= stop.AsTimestamp;
                     v = ArithExpr.Compute(BinaryOp.Add, ArithKind.TimestampPlusInterval, v, step, type))
                {
                    yield return v;
                }

                break;
        }
    }
}
