using Kdb.Sql.Syntax;
using Kdb.Sql.Types;

namespace Kdb.Sql.Execution;

/// <summary>ORDER BY: materializes its input and sorts it stably.</summary>
internal sealed class SortOp(Operator input, (BoundExpr Expr, bool Descending, bool NullsFirst)[] keys) : Operator(input.Width)
{
    private List<(Value[] Row, Value[] Key, int Seq)> _rows = [];
    private int _next;

    public override void Open(ExecContext ctx)
    {
        _rows = [];
        input.Open(ctx);
        var seq = 0;
        while (input.Next(ctx))
        {
            ctx.CheckCancellation();
            var row = (Value[])input.Row.Clone();
            var key = new Value[keys.Length];
            for (var i = 0; i < keys.Length; i++)
            {
                key[i] = keys[i].Expr.Eval(row, ctx);
            }

            ctx.ChargeMemory(ExecContext.RowBytes(row) + ExecContext.RowBytes(key));
            _rows.Add((row, key, seq++));
        }

        input.Close(ctx);
        _rows.Sort(Compare);
        _next = 0;
    }

    private int Compare((Value[] Row, Value[] Key, int Seq) a, (Value[] Row, Value[] Key, int Seq) b)
    {
        for (var i = 0; i < keys.Length; i++)
        {
            var c = CompareKey(a.Key[i], b.Key[i], keys[i].Descending, keys[i].NullsFirst);
            if (c != 0)
            {
                return c;
            }
        }

        return a.Seq.CompareTo(b.Seq);
    }

    public static int CompareKey(in Value a, in Value b, bool descending, bool nullsFirst)
    {
        if (a.IsNull || b.IsNull)
        {
            if (a.IsNull && b.IsNull)
            {
                return 0;
            }

            return a.IsNull == nullsFirst ? -1 : 1;
        }

        var c = Value.Compare(a, b);
        return descending ? -c : c;
    }

    public override bool Next(ExecContext ctx)
    {
        if (_next >= _rows.Count)
        {
            return false;
        }

        Row = _rows[_next++].Row;
        return true;
    }

    public override void Close(ExecContext ctx) => _rows = [];

    public override string Label => "Sort";

    public override IEnumerable<string> Details =>
        ["Sort Key: " + string.Join(", ", keys.Select(k => k.Expr.Describe() + (k.Descending ? " DESC" : string.Empty) + (k.NullsFirst != k.Descending ? (k.NullsFirst ? " NULLS FIRST" : " NULLS LAST") : string.Empty)))];

    public override IEnumerable<Operator> Inputs => [input];
}

/// <summary>GROUP BY (or a whole-input aggregate): one output row per group, [group values..., aggregate results...].</summary>
internal sealed class AggregateOp(Operator input, BoundExpr[] groupBy, AggregateSpec[] aggregates) : Operator(groupBy.Length + aggregates.Length)
{
    private List<(Value[] Key, AggState[] States)> _groups = [];
    private int _next;

    public override void Open(ExecContext ctx)
    {
        var index = new Dictionary<Value[], int>(RowComparer.Instance);
        _groups = [];
        input.Open(ctx);
        var probe = new Value[groupBy.Length];
        while (input.Next(ctx))
        {
            ctx.CheckCancellation();
            var row = input.Row;
            for (var i = 0; i < groupBy.Length; i++)
            {
                probe[i] = groupBy[i].Eval(row, ctx);
            }

            // Without GROUP BY every row lands in the one group: no key lookup per row.
            var groupIndex = 0;
            if ((groupBy.Length != 0 || _groups.Count == 0) && !index.TryGetValue(probe, out groupIndex))
            {
                var key = (Value[])probe.Clone();
                var states = new AggState[aggregates.Length];
                for (var i = 0; i < states.Length; i++)
                {
                    states[i] = aggregates[i].NewState();
                }

                groupIndex = _groups.Count;
                _groups.Add((key, states));
                index[key] = groupIndex;
                ctx.ChargeMemory(ExecContext.RowBytes(key) + (aggregates.Length * 96));
            }

            foreach (var state in _groups[groupIndex].States)
            {
                state.Add(row, ctx);
            }
        }

        input.Close(ctx);
        if (groupBy.Length == 0 && _groups.Count == 0)
        {
            var states = new AggState[aggregates.Length];
            for (var i = 0; i < states.Length; i++)
            {
                states[i] = aggregates[i].NewState();
            }

            _groups.Add(([], states));
        }

        _next = 0;
    }

    public override bool Next(ExecContext ctx)
    {
        if (_next >= _groups.Count)
        {
            return false;
        }

        var (key, states) = _groups[_next++];
        Row = new Value[Width];
        Array.Copy(key, Row, key.Length);
        for (var i = 0; i < states.Length; i++)
        {
            Row[key.Length + i] = states[i].Result(ctx);
        }

        return true;
    }

    public override void Close(ExecContext ctx) => _groups = [];

    public override string Label => groupBy.Length == 0 ? "Aggregate" : "HashAggregate";

    public override IEnumerable<string> Details => groupBy.Length == 0 ? [] : ["Group Key: " + Join(groupBy)];

    public override IEnumerable<Operator> Inputs => [input];
}

/// <summary>DISTINCT over the first <paramref name="columns"/> columns (hidden sort columns are not compared).</summary>
internal sealed class DistinctOp(Operator input, int columns) : Operator(input.Width)
{
    private HashSet<Value[]> _seen = new(RowComparer.Instance);

    public override void Open(ExecContext ctx)
    {
        _seen = new HashSet<Value[]>(RowComparer.Instance);
        input.Open(ctx);
    }

    public override bool Next(ExecContext ctx)
    {
        while (input.Next(ctx))
        {
            var key = input.Row.AsSpan(0, columns).ToArray();
            if (_seen.Add(key))
            {
                ctx.ChargeMemory(ExecContext.RowBytes(key));
                Row = input.Row;
                return true;
            }
        }

        return false;
    }

    public override void Close(ExecContext ctx)
    {
        input.Close(ctx);
        _seen = new HashSet<Value[]>(RowComparer.Instance);
    }

    public override string Label => "HashAggregate (distinct)";

    public override IEnumerable<Operator> Inputs => [input];
}

/// <summary>DISTINCT ON: input sorted by the ON expressions first; keeps the first row of each run.</summary>
internal sealed class DistinctOnOp(Operator input, BoundExpr[] on) : Operator(input.Width)
{
    private Value[]? _last;

    public override void Open(ExecContext ctx)
    {
        _last = null;
        input.Open(ctx);
    }

    public override bool Next(ExecContext ctx)
    {
        while (input.Next(ctx))
        {
            var key = new Value[on.Length];
            for (var i = 0; i < on.Length; i++)
            {
                key[i] = on[i].Eval(input.Row, ctx);
            }

            if (_last is null || !RowComparer.Instance.Equals(_last, key))
            {
                _last = key;
                Row = input.Row;
                return true;
            }
        }

        return false;
    }

    public override void Close(ExecContext ctx) => input.Close(ctx);

    public override string Label => "Unique";

    public override IEnumerable<Operator> Inputs => [input];
}

/// <summary>UNION / INTERSECT / EXCEPT [ALL] with PostgreSQL's multiset semantics.</summary>
internal sealed class SetOp(Operator left, Operator right, SetOperator kind, bool all) : Operator(left.Width)
{
    private List<Value[]> _output = [];
    private int _next;

    public override void Open(ExecContext ctx)
    {
        _output = [];
        _next = 0;
        var leftRows = JoinRows.Drain(left, ctx);
        var rightRows = JoinRows.Drain(right, ctx);
        switch (kind)
        {
            case SetOperator.Union:
                if (all)
                {
                    _output.AddRange(leftRows);
                    _output.AddRange(rightRows);
                }
                else
                {
                    var seen = new HashSet<Value[]>(RowComparer.Instance);
                    foreach (var row in leftRows.Concat(rightRows))
                    {
                        if (seen.Add(row))
                        {
                            _output.Add(row);
                        }
                    }
                }

                break;
            default:
                var counts = new Dictionary<Value[], int>(RowComparer.Instance);
                foreach (var row in rightRows)
                {
                    counts[row] = counts.GetValueOrDefault(row) + 1;
                }

                var emitted = new HashSet<Value[]>(RowComparer.Instance);
                foreach (var row in leftRows)
                {
                    var inRight = counts.GetValueOrDefault(row);
                    if (kind == SetOperator.Intersect)
                    {
                        if (inRight > 0 && (all ? true : emitted.Add(row)))
                        {
                            _output.Add(row);
                            if (all)
                            {
                                counts[row] = inRight - 1;
                            }
                        }
                    }
                    else if (all)
                    {
                        if (inRight > 0)
                        {
                            counts[row] = inRight - 1;
                        }
                        else
                        {
                            _output.Add(row);
                        }
                    }
                    else if (inRight == 0 && emitted.Add(row))
                    {
                        _output.Add(row);
                    }
                }

                break;
        }
    }

    public override bool Next(ExecContext ctx)
    {
        if (_next >= _output.Count)
        {
            return false;
        }

        Row = _output[_next++];
        return true;
    }

    public override string Label => kind switch { SetOperator.Union => all ? "Append" : "HashSetOp Union", SetOperator.Intersect => "HashSetOp Intersect" + (all ? " All" : string.Empty), _ => "HashSetOp Except" + (all ? " All" : string.Empty) };

    public override IEnumerable<Operator> Inputs => [left, right];
}
