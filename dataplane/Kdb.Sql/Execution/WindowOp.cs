using Kdb.Sql.Types;

namespace Kdb.Sql.Execution;

internal enum WindowKind : byte
{
    RowNumber,
    Rank,
    DenseRank,
    PercentRank,
    CumeDist,
    Ntile,
    Lag,
    Lead,
    FirstValue,
    LastValue,
    Aggregate,
}

/// <summary>How far an aggregate's window frame reaches.</summary>
internal enum FrameMode : byte
{
    /// <summary>Partition start to the current row and its peers (the default with ORDER BY).</summary>
    RangeToCurrent,

    /// <summary>Partition start to the current row only (ROWS ... CURRENT ROW).</summary>
    RowsToCurrent,

    /// <summary>The whole partition (no ORDER BY, or UNBOUNDED FOLLOWING).</summary>
    WholePartition,
}

/// <summary>One window function call with its window.</summary>
internal sealed class WindowFunc
{
    public required WindowKind Kind { get; init; }

    public BoundExpr[] Arguments { get; init; } = [];

    public AggregateSpec? Aggregate { get; init; }

    public BoundExpr[] PartitionBy { get; init; } = [];

    public (BoundExpr Expr, bool Descending, bool NullsFirst)[] OrderBy { get; init; } = [];

    public FrameMode Frame { get; init; }

    public required SqlType ResultType { get; init; }

    public required string Key { get; init; }
}

/// <summary>Computes window functions over the materialized input; output is the input row followed by one value per function.</summary>
internal sealed class WindowOp(Operator input, WindowFunc[] functions) : Operator(input.Width + functions.Length)
{
    private List<Value[]> _rows = [];
    private int[] _order = [];
    private int _next;

    public override void Open(ExecContext ctx)
    {
        _rows = [];
        input.Open(ctx);
        var baseWidth = input.Width;
        while (input.Next(ctx))
        {
            var row = new Value[Width];
            Array.Copy(input.Row, row, baseWidth);
            ctx.ChargeMemory(ExecContext.RowBytes(row));
            _rows.Add(row);
        }

        input.Close(ctx);
        _order = Enumerable.Range(0, _rows.Count).ToArray();
        for (var f = 0; f < functions.Length; f++)
        {
            Compute(functions[f], baseWidth + f, ctx);
        }

        _next = 0;
    }

    private void Compute(WindowFunc function, int slot, ExecContext ctx)
    {
        var count = _rows.Count;
        var partKeys = new Value[count][];
        var orderKeys = new Value[count][];
        for (var i = 0; i < count; i++)
        {
            partKeys[i] = Array.ConvertAll(function.PartitionBy, e => e.Eval(_rows[i], ctx));
            orderKeys[i] = Array.ConvertAll(function.OrderBy, k => k.Expr.Eval(_rows[i], ctx));
        }

        var order = Enumerable.Range(0, count).ToArray();
        Array.Sort(order, (a, b) =>
        {
            for (var i = 0; i < function.PartitionBy.Length; i++)
            {
                var c = SortOp.CompareKey(partKeys[a][i], partKeys[b][i], false, false);
                if (c != 0)
                {
                    return c;
                }
            }

            var o = CompareOrder(function, orderKeys[a], orderKeys[b]);
            return o != 0 ? o : a.CompareTo(b);
        });
        _order = order;

        var start = 0;
        while (start < count)
        {
            var end = start + 1;
            while (end < count && RowComparer.Instance.Equals(partKeys[order[start]], partKeys[order[end]]))
            {
                end++;
            }

            ComputePartition(function, slot, order, start, end, orderKeys, ctx);
            start = end;
        }
    }

    private static int CompareOrder(WindowFunc function, Value[] a, Value[] b)
    {
        for (var i = 0; i < function.OrderBy.Length; i++)
        {
            var c = SortOp.CompareKey(a[i], b[i], function.OrderBy[i].Descending, function.OrderBy[i].NullsFirst);
            if (c != 0)
            {
                return c;
            }
        }

        return 0;
    }

    private void ComputePartition(WindowFunc function, int slot, int[] order, int start, int end, Value[][] orderKeys, ExecContext ctx)
    {
        var size = end - start;
        long rank = 1, denseRank = 1;
        for (var p = start; p < end; p++)
        {
            var row = _rows[order[p]];
            var isPeerOfPrevious = p > start && CompareOrder(function, orderKeys[order[p - 1]], orderKeys[order[p]]) == 0;
            if (p > start && !isPeerOfPrevious)
            {
                rank = p - start + 1;
                denseRank++;
            }

            // The last peer of the current row bounds RANGE frames and cume_dist.
            var peerEnd = p + 1;
            while (peerEnd < end && CompareOrder(function, orderKeys[order[p]], orderKeys[order[peerEnd]]) == 0)
            {
                peerEnd++;
            }

            row[slot] = function.Kind switch
            {
                WindowKind.RowNumber => Value.FromInt(p - start + 1),
                WindowKind.Rank => Value.FromInt(rank),
                WindowKind.DenseRank => Value.FromInt(denseRank),
                WindowKind.PercentRank => Value.FromFloat(size <= 1 ? 0 : (double)(rank - 1) / (size - 1)),
                WindowKind.CumeDist => Value.FromFloat((double)(peerEnd - start) / size),
                WindowKind.Ntile => Ntile(function, row, p - start, size, ctx),
                WindowKind.Lag or WindowKind.Lead => Offset(function, order, p, start, end, ctx),
                WindowKind.FirstValue => function.Arguments[0].Eval(_rows[order[start]], ctx),
                WindowKind.LastValue => function.Arguments[0].Eval(_rows[order[FrameEnd(function, p, peerEnd, end) - 1]], ctx),
                _ => AggregateOver(function, order, start, FrameEnd(function, p, peerEnd, end), ctx),
            };
        }
    }

    private static int FrameEnd(WindowFunc function, int position, int peerEnd, int partitionEnd) => function.Frame switch
    {
        FrameMode.RowsToCurrent => position + 1,
        FrameMode.WholePartition => partitionEnd,
        _ => function.OrderBy.Length == 0 ? partitionEnd : peerEnd,
    };

    private static Value Ntile(WindowFunc function, Value[] row, int position, int size, ExecContext ctx)
    {
        var buckets = function.Arguments[0].Eval(row, ctx);
        if (buckets.IsNull)
        {
            return Value.Null;
        }

        var n = buckets.AsInt;
        if (n <= 0)
        {
            throw new SqlException("22014", "argument of ntile must be greater than zero");
        }

        var perBucket = size / n;
        var extra = size % n;
        var boundary = extra * (perBucket + 1);
        return Value.FromInt(position < boundary ? (position / (perBucket + 1)) + 1 : ((position - boundary) / Math.Max(perBucket, 1)) + extra + 1);
    }

    private Value Offset(WindowFunc function, int[] order, int position, int start, int end, ExecContext ctx)
    {
        var row = _rows[order[position]];
        var distance = function.Arguments.Length > 1 ? function.Arguments[1].Eval(row, ctx) : Value.FromInt(1);
        if (distance.IsNull)
        {
            return Value.Null;
        }

        var target = position + (function.Kind == WindowKind.Lag ? -distance.AsInt : distance.AsInt);
        if (target < start || target >= end)
        {
            return function.Arguments.Length > 2 ? function.Arguments[2].Eval(row, ctx) : Value.Null;
        }

        return function.Arguments[0].Eval(_rows[order[(int)target]], ctx);
    }

    private Value AggregateOver(WindowFunc function, int[] order, int start, int frameEnd, ExecContext ctx)
    {
        var state = function.Aggregate!.NewState();
        for (var i = start; i < frameEnd; i++)
        {
            state.Add(_rows[order[i]], ctx);
        }

        return state.Result(ctx);
    }

    public override bool Next(ExecContext ctx)
    {
        if (_next >= _order.Length)
        {
            return false;
        }

        Row = _rows[_order[_next++]];
        return true;
    }

    public override void Close(ExecContext ctx) => _rows = [];

    public override string Label => "WindowAgg";

    public override IEnumerable<Operator> Inputs => [input];
}
