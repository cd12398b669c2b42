using System.Text;
using Kdb.Sql.Types;

namespace Kdb.Sql.Execution;

/// <summary>
/// A pull-based plan node. <see cref="Open"/> starts it (it may be opened again to rescan, e.g. the inner side
/// of a nested loop or a correlated subquery), <see cref="Next"/> advances, and <see cref="Row"/> holds the
/// current row — a buffer the node reuses, so a consumer that keeps rows must copy them.
/// </summary>
internal abstract class Operator
{
    protected Operator(int width) => Row = new Value[width];

    public Value[] Row { get; protected set; }

    public int Width => Row.Length;

    public abstract void Open(ExecContext ctx);

    public abstract bool Next(ExecContext ctx);

    public virtual void Close(ExecContext ctx)
    {
    }

    /// <summary>EXPLAIN line of this node (children are described by <see cref="Explain"/>).</summary>
    public abstract string Label { get; }

    public virtual IEnumerable<Operator> Inputs => [];

    public virtual IEnumerable<string> Details => [];

    public void Explain(List<string> lines, int depth)
    {
        var indent = depth == 0 ? string.Empty : new string(' ', (depth * 6) - 4) + "->  ";
        lines.Add(indent + Label);
        var detailIndent = new string(' ', depth == 0 ? 2 : (depth * 6) + 2);
        foreach (var detail in Details)
        {
            lines.Add(detailIndent + detail);
        }

        foreach (var input in Inputs)
        {
            input.Explain(lines, depth + 1);
        }
    }

    protected static string Join(IEnumerable<BoundExpr> exprs) => string.Join(", ", exprs.Select(e => e.Describe()));

    public override string ToString()
    {
        var lines = new List<string>();
        Explain(lines, 0);
        var sb = new StringBuilder();
        foreach (var line in lines)
        {
            sb.AppendLine(line);
        }

        return sb.ToString();
    }
}

/// <summary>One row of no columns (SELECT without FROM).</summary>
internal sealed class SingleRowOp() : Operator(0)
{
    private bool _done;

    public override void Open(ExecContext ctx) => _done = false;

    public override bool Next(ExecContext ctx)
    {
        if (_done)
        {
            return false;
        }

        _done = true;
        return true;
    }

    public override string Label => "Result";
}

/// <summary>No rows (WHERE false, LIMIT 0).</summary>
internal sealed class EmptyOp(int width) : Operator(width)
{
    public override void Open(ExecContext ctx)
    {
    }

    public override bool Next(ExecContext ctx) => false;

    public override string Label => "Result  (One-Time Filter: false)";
}

/// <summary>VALUES rows, evaluated per row against the outer context.</summary>
internal sealed class ValuesOp(BoundExpr[][] rows, int width) : Operator(width)
{
    private int _next;

    public override void Open(ExecContext ctx) => _next = 0;

    public override bool Next(ExecContext ctx)
    {
        if (_next >= rows.Length)
        {
            return false;
        }

        var exprs = rows[_next++];
        for (var i = 0; i < exprs.Length; i++)
        {
            Row[i] = exprs[i].Eval(Row, ctx);
        }

        return true;
    }

    public override string Label => $"Values Scan on \"*VALUES*\"  (rows={rows.Length})";

    /// <summary>The row expressions, for INSERT to evaluate itself (it must tell DEFAULT from NULL).</summary>
    public BoundExpr[][] RowsForInsert() => rows;
}

internal sealed class FilterOp(Operator input, BoundExpr predicate) : Operator(input.Width)
{
    public BoundExpr Predicate => predicate;

    public override void Open(ExecContext ctx)
    {
        input.Open(ctx);
        Row = input.Row;
    }

    public override bool Next(ExecContext ctx)
    {
        while (input.Next(ctx))
        {
            Row = input.Row;
            if (predicate.IsTrue(Row, ctx))
            {
                return true;
            }
        }

        return false;
    }

    public override void Close(ExecContext ctx) => input.Close(ctx);

    public override string Label => "Filter";

    public override IEnumerable<string> Details => ["Filter: " + predicate.Describe()];

    public override IEnumerable<Operator> Inputs => [input];
}

internal sealed class ProjectOp(Operator input, BoundExpr[] exprs) : Operator(exprs.Length)
{
    public BoundExpr[] Exprs => exprs;

    public override void Open(ExecContext ctx) => input.Open(ctx);

    public override bool Next(ExecContext ctx)
    {
        if (!input.Next(ctx))
        {
            return false;
        }

        var source = input.Row;
        for (var i = 0; i < exprs.Length; i++)
        {
            Row[i] = exprs[i].Eval(source, ctx);
        }

        return true;
    }

    public override void Close(ExecContext ctx) => input.Close(ctx);

    public override string Label => "Project";

    public override IEnumerable<string> Details => ["Output: " + Join(exprs)];

    public override IEnumerable<Operator> Inputs => [input];
}

internal sealed class LimitOp(Operator input, BoundExpr? limit, BoundExpr? offset) : Operator(input.Width)
{
    public BoundExpr? Limit => limit;

    public BoundExpr? Offset => offset;

    private long _remaining;

    private bool _opened;

    public override void Open(ExecContext ctx)
    {
        var skip = Evaluate(offset, ctx, "OFFSET") ?? 0;
        _remaining = Evaluate(limit, ctx, "LIMIT") ?? long.MaxValue;

        // LIMIT 0 never runs its input, as in PostgreSQL (errors its input would raise stay unraised).
        _opened = _remaining > 0;
        if (!_opened)
        {
            return;
        }

        input.Open(ctx);
        Row = input.Row;
        while (skip-- > 0 && input.Next(ctx))
        {
        }
    }

    private static long? Evaluate(BoundExpr? expr, ExecContext ctx, string clause)
    {
        if (expr is null)
        {
            return null;
        }

        var v = expr.Eval([], ctx);
        if (v.IsNull)
        {
            return null;
        }

        var n = v.Kind == ValueKind.Int ? v.AsInt : (long)v.ToDecimal();
        return n < 0 ? throw new SqlException("2201W", $"{clause} must not be negative") : n;
    }

    public override bool Next(ExecContext ctx)
    {
        if (!_opened || _remaining <= 0 || !input.Next(ctx))
        {
            return false;
        }

        _remaining--;
        Row = input.Row;
        return true;
    }

    public override void Close(ExecContext ctx)
    {
        if (_opened)
        {
            input.Close(ctx);
        }
    }

    public override string Label => "Limit";

    public override IEnumerable<Operator> Inputs => [input];
}

/// <summary>Runs its input once and replays the rows (CTEs, the inner side of nested loops, subqueries).</summary>
internal sealed class MaterializeOp(Operator input) : Operator(input.Width), ISharedRows
{
    private List<Value[]>? _rows;
    private long _owner;
    private int _next;

    /// <summary>When true the input is re-run on every Open (it depends on outer rows).</summary>
    public bool Rescan { get; init; }

    public bool PerOuterRow { get; set; }

    public void Restart() => _rows = null;

    public override void Open(ExecContext ctx)
    {
        // A cached plan runs again with a new context: rows of an earlier execution are stale.
        if (_rows is null || Rescan || _owner != ctx.Execution)
        {
            _owner = ctx.Execution;
            _rows = [];
            input.Open(ctx);
            while (input.Next(ctx))
            {
                var copy = (Value[])input.Row.Clone();
                ctx.ChargeMemory(ExecContext.RowBytes(copy));
                _rows.Add(copy);
            }

            input.Close(ctx);
        }

        _next = 0;
    }

    public override bool Next(ExecContext ctx)
    {
        if (_next >= _rows!.Count)
        {
            return false;
        }

        Row = _rows[_next++];
        return true;
    }

    /// <summary>The rows of this execution, computing them on first use (a CTE read by several scans).</summary>
    public List<Value[]> Rows(ExecContext ctx)
    {
        if (_rows is null || _owner != ctx.Execution)
        {
            Open(ctx);
        }

        return _rows!;
    }

    public bool TryGet(ExecContext ctx, int index, out Value[] row)
    {
        var rows = Rows(ctx);
        row = index < rows.Count ? rows[index] : [];
        return index < rows.Count;
    }

    public override string Label => "Materialize";

    public override IEnumerable<Operator> Inputs => [input];
}

/// <summary>The rows of a CTE for the current execution, shared by every reference to it (each keeps its own position).</summary>
internal interface ISharedRows
{
    /// <summary>True when the rows depend on an enclosing query's current row: every reader's Open recomputes them.</summary>
    bool PerOuterRow { get; set; }

    /// <summary>Row <paramref name="index"/> of this execution, computed on demand; false past the last row.</summary>
    bool TryGet(ExecContext ctx, int index, out Value[] row);

    /// <summary>Forgets the computed rows (a correlated CTE, for the next outer row).</summary>
    void Restart();
}

/// <summary>One reader of a shared materialized CTE, with its own cursor.</summary>
internal sealed class CteScanOp(Operator shared, string name) : Operator(shared.Width)
{
    private readonly ISharedRows _rows = (ISharedRows)shared;
    private int _next;

    public override void Open(ExecContext ctx)
    {
        _next = 0;
        if (_rows.PerOuterRow)
        {
            _rows.Restart();
        }
    }

    public override bool Next(ExecContext ctx)
    {
        if (!_rows.TryGet(ctx, _next, out var row))
        {
            return false;
        }

        _next++;
        Row = row;
        return true;
    }

    public override string Label => "CTE Scan on " + name;

    public override IEnumerable<Operator> Inputs => [shared];
}
