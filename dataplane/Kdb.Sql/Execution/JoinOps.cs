using Kdb.Sql.Syntax;
using Kdb.Sql.Types;

namespace Kdb.Sql.Execution;

/// <summary>
/// Nested-loop join for conditions a hash join cannot use (and for LATERAL, whose right side is re-run per
/// left row with the left row as its outer row). The right side is materialized once otherwise.
/// </summary>
internal sealed class NestedLoopJoinOp : Operator
{
    private readonly Operator _left;
    private readonly Operator _right;
    private readonly JoinKind _kind;
    private readonly BoundExpr? _condition;
    private readonly bool _lateral;
    private readonly int _leftWidth;
    private readonly int _rightWidth;
    private List<Value[]> _rightRows = [];
    private bool[] _rightMatched = [];
    private bool _leftValid;
    private bool _leftMatched;
    private int _rightIndex;
    private int _unmatchedIndex;
    private bool _leftDone;

    public NestedLoopJoinOp(Operator left, Operator right, JoinKind kind, BoundExpr? condition, bool lateral)
        : base(left.Width + right.Width)
    {
        _left = left;
        _right = right;
        _kind = kind;
        _condition = condition;
        _lateral = lateral;
        _leftWidth = left.Width;
        _rightWidth = right.Width;
    }

    public override void Open(ExecContext ctx)
    {
        _left.Open(ctx);
        if (!_lateral)
        {
            _rightRows = JoinRows.Drain(_right, ctx);
            _rightMatched = new bool[_rightRows.Count];
        }

        _leftValid = false;
        _leftDone = false;
        _unmatchedIndex = 0;
    }

    public override bool Next(ExecContext ctx)
    {
        while (!_leftDone)
        {
            if (!_leftValid)
            {
                if (!_left.Next(ctx))
                {
                    _leftDone = true;
                    break;
                }

                _leftValid = true;
                _leftMatched = false;
                _rightIndex = 0;
                if (_lateral)
                {
                    ctx.PushOuter(_left.Row);
                    try
                    {
                        _rightRows = JoinRows.Drain(_right, ctx);
                    }
                    finally
                    {
                        ctx.PopOuter();
                    }
                }
            }

            while (_rightIndex < _rightRows.Count)
            {
                var index = _rightIndex++;
                Combine(_left.Row, _rightRows[index]);
                if (_condition is null || _condition.IsTrue(Row, ctx))
                {
                    _leftMatched = true;
                    if (!_lateral && _rightMatched.Length > index)
                    {
                        _rightMatched[index] = true;
                    }

                    return true;
                }
            }

            _leftValid = false;
            if (!_leftMatched && _kind is JoinKind.Left or JoinKind.Full)
            {
                Combine(_left.Row, null);
                return true;
            }
        }

        if (_kind is JoinKind.Right or JoinKind.Full)
        {
            while (_unmatchedIndex < _rightRows.Count)
            {
                var index = _unmatchedIndex++;
                if (!_rightMatched[index])
                {
                    Combine(null, _rightRows[index]);
                    return true;
                }
            }
        }

        return false;
    }

    private void Combine(Value[]? left, Value[]? right) => JoinRows.Combine(Row, left, right, _leftWidth, _rightWidth);

    public override void Close(ExecContext ctx) => _left.Close(ctx);

    public override string Label => "Nested Loop" + (_kind switch { JoinKind.Left => " Left Join", JoinKind.Right => " Right Join", JoinKind.Full => " Full Join", _ => string.Empty });

    public override IEnumerable<string> Details => _condition is null ? [] : ["Join Filter: " + _condition.Describe()];

    public override IEnumerable<Operator> Inputs => [_left, _right];
}

/// <summary>Hash join on equality keys: builds on the right input, probes with the left. NULL keys never match.</summary>
internal sealed class HashJoinOp : Operator
{
    private readonly Operator _left;
    private readonly Operator _right;
    private readonly JoinKind _kind;
    private readonly BoundExpr[] _leftKeys;
    private readonly BoundExpr[] _rightKeys;
    private readonly BoundExpr? _residual;
    private readonly int _leftWidth;
    private readonly int _rightWidth;
    // Build rows chained per key: the dictionary holds the newest row of each key, _next links to older ones.
    // One key column (the common case) hashes a Value directly, with no key array per row.
    private Dictionary<Value[], int> _heads = new(RowComparer.Instance);
    private Dictionary<Value, int> _singleHeads = new(ValueComparer.Instance);
    private List<int> _next = [];
    private List<Value[]> _buildRows = [];
    private bool[] _matched = [];
    private int _cursor = -1;
    private bool _leftMatched;
    private bool _leftValid;
    private bool _leftDone;
    private int _unmatchedIndex;
    private Value[] _probeKey;

    public HashJoinOp(Operator left, Operator right, JoinKind kind, BoundExpr[] leftKeys, BoundExpr[] rightKeys, BoundExpr? residual)
        : base(left.Width + right.Width)
    {
        _left = left;
        _right = right;
        _kind = kind;
        _leftKeys = leftKeys;
        _rightKeys = rightKeys;
        _residual = residual;
        _leftWidth = left.Width;
        _rightWidth = right.Width;
        _probeKey = new Value[leftKeys.Length];
    }

    public override void Open(ExecContext ctx)
    {
        var single = _rightKeys.Length == 1;
        _heads = new Dictionary<Value[], int>(RowComparer.Instance);
        _singleHeads = new Dictionary<Value, int>(ValueComparer.Instance);
        _next = [];
        _buildRows = [];
        _right.Open(ctx);
        while (_right.Next(ctx))
        {
            ctx.CheckCancellation();
            var row = (Value[])_right.Row.Clone();
            var index = _buildRows.Count;
            _buildRows.Add(row);
            _next.Add(-1);
            ctx.ChargeMemory(ExecContext.RowBytes(row) + 48);
            if (single)
            {
                var value = _rightKeys[0].Eval(row, ctx);
                if (value.IsNull)
                {
                    continue;
                }

                if (_singleHeads.TryGetValue(value, out var previous))
                {
                    _next[index] = previous;
                }

                _singleHeads[value] = index;
                continue;
            }

            var key = new Value[_rightKeys.Length];
            var hasNull = false;
            for (var i = 0; i < key.Length; i++)
            {
                key[i] = _rightKeys[i].Eval(row, ctx);
                hasNull |= key[i].IsNull;
            }

            if (hasNull)
            {
                continue;
            }

            if (_heads.TryGetValue(key, out var head))
            {
                _next[index] = head;
            }

            _heads[key] = index;
        }

        _right.Close(ctx);
        _matched = new bool[_buildRows.Count];
        _left.Open(ctx);
        _leftValid = false;
        _leftDone = false;
        _unmatchedIndex = 0;
    }

    public override bool Next(ExecContext ctx)
    {
        while (!_leftDone)
        {
            if (!_leftValid)
            {
                if (!_left.Next(ctx))
                {
                    _leftDone = true;
                    break;
                }

                _leftValid = true;
                _leftMatched = false;
                var hasNull = false;
                for (var i = 0; i < _probeKey.Length; i++)
                {
                    _probeKey[i] = _leftKeys[i].Eval(_left.Row, ctx);
                    hasNull |= _probeKey[i].IsNull;
                }

                if (hasNull)
                {
                    _cursor = -1;
                }
                else if (_probeKey.Length == 1)
                {
                    _cursor = _singleHeads.TryGetValue(_probeKey[0], out var head) ? head : -1;
                }
                else
                {
                    _cursor = _heads.TryGetValue(_probeKey, out var head) ? head : -1;
                }
            }

            while (_cursor >= 0)
            {
                var index = _cursor;
                _cursor = _next[index];
                Combine(_left.Row, _buildRows[index]);
                if (_residual is null || _residual.IsTrue(Row, ctx))
                {
                    _leftMatched = true;
                    _matched[index] = true;
                    return true;
                }
            }

            _leftValid = false;
            if (!_leftMatched && _kind is JoinKind.Left or JoinKind.Full)
            {
                Combine(_left.Row, null);
                return true;
            }
        }

        if (_kind is JoinKind.Right or JoinKind.Full)
        {
            while (_unmatchedIndex < _buildRows.Count)
            {
                var index = _unmatchedIndex++;
                if (!_matched[index])
                {
                    Combine(null, _buildRows[index]);
                    return true;
                }
            }
        }

        return false;
    }

    private void Combine(Value[]? left, Value[]? right) => JoinRows.Combine(Row, left, right, _leftWidth, _rightWidth);

    public override void Close(ExecContext ctx)
    {
        _left.Close(ctx);
        _heads = new Dictionary<Value[], int>(RowComparer.Instance);
        _singleHeads = new Dictionary<Value, int>(ValueComparer.Instance);
        _next = [];
        _buildRows = [];
    }

    public override string Label => "Hash" + (_kind switch { JoinKind.Left => " Left Join", JoinKind.Right => " Right Join", JoinKind.Full => " Full Join", _ => " Join" });

    public override IEnumerable<string> Details
    {
        get
        {
            var conditions = new List<string>();
            for (var i = 0; i < _leftKeys.Length; i++)
            {
                conditions.Add($"({_leftKeys[i].Describe()} = {_rightKeys[i].Describe()})");
            }

            yield return "Hash Cond: " + string.Join(" AND ", conditions);
            if (_residual is not null)
            {
                yield return "Join Filter: " + _residual.Describe();
            }
        }
    }

    public override IEnumerable<Operator> Inputs => [_left, _right];
}

/// <summary>Row plumbing shared by the join and set operators.</summary>
internal static class JoinRows
{
    /// <summary>Writes left then right into <paramref name="row"/>; a missing side becomes NULLs (outer joins).</summary>
    public static void Combine(Value[] row, Value[]? left, Value[]? right, int leftWidth, int rightWidth)
    {
        if (left is null)
        {
            Array.Fill(row, Value.Null, 0, leftWidth);
        }
        else
        {
            Array.Copy(left, 0, row, 0, leftWidth);
        }

        if (right is null)
        {
            Array.Fill(row, Value.Null, leftWidth, rightWidth);
        }
        else
        {
            Array.Copy(right, 0, row, leftWidth, rightWidth);
        }
    }

    /// <summary>Runs an operator to the end and keeps copies of its rows (charged to the statement's memory).</summary>
    public static List<Value[]> Drain(Operator op, ExecContext ctx)
    {
        var rows = new List<Value[]>();
        op.Open(ctx);
        while (op.Next(ctx))
        {
            var copy = (Value[])op.Row.Clone();
            ctx.ChargeMemory(ExecContext.RowBytes(copy));
            rows.Add(copy);
        }

        op.Close(ctx);
        return rows;
    }
}
