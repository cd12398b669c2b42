using Kdb.Sql.Types;

namespace Kdb.Sql.Execution;

/// <summary>The working table of a recursive CTE: the rows the last iteration produced, read by the recursive term.</summary>
internal sealed class WorkTable
{
    public List<Value[]> Rows { get; set; } = [];
}

/// <summary>The self-reference inside a recursive CTE's recursive term: it reads the current working table.</summary>
internal sealed class WorkTableScanOp(WorkTable table, string name, int width) : Operator(width)
{
    private int _next;

    public override void Open(ExecContext ctx) => _next = 0;

    public override bool Next(ExecContext ctx)
    {
        if (_next >= table.Rows.Count)
        {
            return false;
        }

        Row = table.Rows[_next++];
        return true;
    }

    public override string Label => "WorkTable Scan on " + name;
}

/// <summary>
/// PostgreSQL's recursive union: the non-recursive term's rows, then the recursive term run again and again over
/// the rows of the previous round (the working table) until a round adds none. With UNION (not ALL) a row already
/// produced is dropped, so cyclic data ends. Rows stream as they come: LIMIT over an endless UNION ALL stops it.
/// </summary>
internal sealed class RecursiveUnionOp(Operator nonRecursive, Operator recursive, WorkTable work, bool distinct) : Operator(nonRecursive.Width)
{
    private HashSet<Value[]>? _seen;
    private List<Value[]> _round = [];
    private bool _recursing;
    private bool _done;

    public override void Open(ExecContext ctx)
    {
        _seen = distinct ? new HashSet<Value[]>(RowComparer.Instance) : null;
        _round = [];
        work.Rows = [];
        _recursing = false;
        _done = false;
        nonRecursive.Open(ctx);
    }

    public override bool Next(ExecContext ctx)
    {
        while (!_done)
        {
            var input = _recursing ? recursive : nonRecursive;
            if (input.Next(ctx))
            {
                ctx.CheckCancellation();
                var row = (Value[])input.Row.Clone();
                if (_seen is not null && !_seen.Add(row))
                {
                    continue;
                }

                // Everything produced is held (working tables, the UNION's seen set): an endless recursion
                // without LIMIT ends with 53200 at the statement memory limit, not by exhausting the process.
                ctx.ChargeMemory(ExecContext.RowBytes(row));
                _round.Add(row);
                Row = row;
                return true;
            }

            input.Close(ctx);
            if (_round.Count == 0)
            {
                _done = true;
                break;
            }

            work.Rows = _round;
            _round = [];
            _recursing = true;
            recursive.Open(ctx);
        }

        return false;
    }

    public override void Close(ExecContext ctx)
    {
        if (!_done)
        {
            (_recursing ? recursive : nonRecursive).Close(ctx);
            _done = true;
        }

        _seen = null;
        work.Rows = [];
    }

    public override string Label => distinct ? "Recursive Union (distinct)" : "Recursive Union";

    public override IEnumerable<Operator> Inputs => [nonRecursive, recursive];
}

/// <summary>
/// The rows of a recursive CTE shared by its references, pulled from the recursive union only as far as a reader
/// has asked: <c>SELECT ... FROM t LIMIT 10</c> over an endless recursion reads ten rows.
/// </summary>
internal sealed class LazyCteOp(Operator input) : Operator(input.Width), ISharedRows
{
    private readonly List<Value[]> _rows = [];
    private long _execution;
    private long _registeredFor;
    private bool _open;
    private bool _exhausted;

    public override void Open(ExecContext ctx)
    {
    }

    public override bool Next(ExecContext ctx) => false;

    public bool PerOuterRow { get; set; }

    // The next TryGet starts the recursion again (the open input, if any, is closed there).
    public void Restart() => _execution = 0;

    /// <summary>Called at the end of the statement (readers may stop early): the recursion's scans record what they read.</summary>
    public override void Close(ExecContext ctx)
    {
        if (_open)
        {
            _open = false;
            input.Close(ctx);
        }
    }

    public bool TryGet(ExecContext ctx, int index, out Value[] row)
    {
        if (_execution != ctx.Execution)
        {
            // A cached plan runs again: rows of an earlier execution are stale.
            _execution = ctx.Execution;
            _rows.Clear();
            _exhausted = false;
            if (_open)
            {
                input.Close(ctx);
            }

            input.Open(ctx);
            _open = true;
            if (_registeredFor != ctx.Execution)
            {
                _registeredFor = ctx.Execution;
                ctx.CloseAtEnd(this);
            }
        }

        while (index >= _rows.Count && !_exhausted)
        {
            if (input.Next(ctx))
            {
                // The recursive union hands out rows it owns and never reuses: no copy needed.
                _rows.Add(input.Row);
            }
            else
            {
                _exhausted = true;
                Close(ctx);
            }
        }

        row = index < _rows.Count ? _rows[index] : [];
        return index < _rows.Count;
    }

    public override string Label => "Recursive CTE";

    public override IEnumerable<Operator> Inputs => [input];
}
