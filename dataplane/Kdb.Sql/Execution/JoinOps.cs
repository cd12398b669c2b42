using System.Numerics;
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

    // Integer keys on both sides (the usual key = foreign key join) use an open-addressing table of raw bits.
    private readonly bool _integerKeys;

    // Build rows lie back to back in one array (no object per row); rows of one key are chained through _next,
    // newest first. The key tables map a key to the newest build row of that key.
    private Value[] _arena = [];
    private int[] _next = [];
    private int _count;
    private IntegerKeyTable? _integerHeads;

    // Integer build keys are gathered first; when they are dense (serial ids), heads are indexed by key - min:
    // no hashing, and a probe in key order walks memory in order.
    private long[] _buildKeys = [];
    private int[]? _denseHeads;
    private long _denseMin;
    private Dictionary<Value[], int> _heads = new(RowComparer.Instance);
    private Dictionary<Value, int> _singleHeads = new(ValueComparer.Instance);
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
        _integerKeys = leftKeys.Length == 1 && IsInteger(leftKeys[0].Type.Id) && IsInteger(rightKeys[0].Type.Id);
    }

    private static bool IsInteger(SqlTypeId id) => id is SqlTypeId.Int2 or SqlTypeId.Int4 or SqlTypeId.Int8;

    public override void Open(ExecContext ctx)
    {
        Reset();
        var single = _rightKeys.Length == 1;
        long min = long.MaxValue, max = long.MinValue;
        _right.Open(ctx);
        while (_right.Next(ctx))
        {
            ctx.CheckCancellation();
            ctx.ChargeMemory(ExecContext.RowBytes(_right.Row) + 16);
            var index = Append(_right.Row);
            if (single)
            {
                var value = _rightKeys[0].Eval(_right.Row, ctx);
                if (value.IsNull)
                {
                    continue;
                }

                if (_integerKeys)
                {
                    var bits = value.RawBits();
                    _buildKeys[index] = bits;
                    _next[index] = -2;
                    min = Math.Min(min, bits);
                    max = Math.Max(max, bits);
                }
                else
                {
                    _next[index] = _singleHeads.TryGetValue(value, out var previous) ? previous : -1;
                    _singleHeads[value] = index;
                }

                continue;
            }

            var key = new Value[_rightKeys.Length];
            var hasNull = false;
            for (var i = 0; i < key.Length; i++)
            {
                key[i] = _rightKeys[i].Eval(_right.Row, ctx);
                hasNull |= key[i].IsNull;
            }

            if (hasNull)
            {
                continue;
            }

            _next[index] = _heads.TryGetValue(key, out var head) ? head : -1;
            _heads[key] = index;
        }

        _right.Close(ctx);
        if (_integerKeys)
        {
            IndexIntegerKeys(min, max);
        }

        _matched = _kind is JoinKind.Right or JoinKind.Full ? new bool[_count] : [];
        _left.Open(ctx);
        _leftValid = false;
        _leftDone = false;
        _unmatchedIndex = 0;
    }

    /// <summary>Chains the gathered integer keys (rows marked -2 in _next), newest first, into a dense or hashed table.</summary>
    private void IndexIntegerKeys(long min, long max)
    {
        var range = unchecked((ulong)max - (ulong)min);
        if (min <= max && range < (ulong)Math.Max(1024, 2 * _count))
        {
            _denseMin = min;
            _denseHeads = new int[(int)range + 1];
            Array.Fill(_denseHeads, -1);
            for (var i = 0; i < _count; i++)
            {
                if (_next[i] == -2)
                {
                    ref var head = ref _denseHeads[(int)unchecked((ulong)_buildKeys[i] - (ulong)min)];
                    _next[i] = head;
                    head = i;
                }
            }

            return;
        }

        var integers = _integerHeads = new IntegerKeyTable(_count);
        for (var i = 0; i < _count; i++)
        {
            if (_next[i] == -2)
            {
                _next[i] = integers.Set(_buildKeys[i], i);
            }
        }
    }

    /// <summary>Copies a build row into the arena; returns its index.</summary>
    private int Append(Value[] row)
    {
        var index = _count++;
        if (_count > _next.Length)
        {
            var capacity = Math.Max(256, _next.Length * 2);
            Array.Resize(ref _next, capacity);
            Array.Resize(ref _arena, capacity * _rightWidth);
            if (_integerKeys)
            {
                Array.Resize(ref _buildKeys, capacity);
            }
        }

        _next[index] = -1;
        Array.Copy(row, 0, _arena, index * _rightWidth, _rightWidth);
        return index;
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
                _cursor = FindHead(ctx);
            }

            while (_cursor >= 0)
            {
                var index = _cursor;
                _cursor = _next[index];
                CombineBuild(_left.Row, index);
                if (_residual is null || _residual.IsTrue(Row, ctx))
                {
                    _leftMatched = true;
                    if (_matched.Length != 0)
                    {
                        _matched[index] = true;
                    }

                    return true;
                }
            }

            _leftValid = false;
            if (!_leftMatched && _kind is JoinKind.Left or JoinKind.Full)
            {
                JoinRows.Combine(Row, _left.Row, null, _leftWidth, _rightWidth);
                return true;
            }
        }

        if (_kind is JoinKind.Right or JoinKind.Full)
        {
            while (_unmatchedIndex < _count)
            {
                var index = _unmatchedIndex++;
                if (!_matched[index])
                {
                    CombineBuild(null, index);
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>The newest build row whose key equals the current left row's, or -1.</summary>
    private int FindHead(ExecContext ctx)
    {
        var hasNull = false;
        for (var i = 0; i < _probeKey.Length; i++)
        {
            _probeKey[i] = _leftKeys[i].Eval(_left.Row, ctx);
            hasNull |= _probeKey[i].IsNull;
        }

        if (hasNull)
        {
            return -1;
        }

        if (_denseHeads is { } dense)
        {
            var offset = unchecked((ulong)_probeKey[0].RawBits() - (ulong)_denseMin);
            return offset < (ulong)dense.Length ? dense[(int)offset] : -1;
        }

        if (_integerHeads is { } integers)
        {
            return integers.Get(_probeKey[0].RawBits());
        }

        if (_probeKey.Length == 1)
        {
            return _singleHeads.TryGetValue(_probeKey[0], out var head) ? head : -1;
        }

        return _heads.TryGetValue(_probeKey, out var multiHead) ? multiHead : -1;
    }

    private void CombineBuild(Value[]? left, int index)
    {
        if (left is null)
        {
            Array.Fill(Row, Value.Null, 0, _leftWidth);
        }
        else
        {
            Array.Copy(left, 0, Row, 0, _leftWidth);
        }

        Array.Copy(_arena, index * _rightWidth, Row, _leftWidth, _rightWidth);
    }

    private void Reset()
    {
        _arena = [];
        _next = [];
        _count = 0;
        _integerHeads = null;
        _buildKeys = [];
        _denseHeads = null;
        _heads = new Dictionary<Value[], int>(RowComparer.Instance);
        _singleHeads = new Dictionary<Value, int>(ValueComparer.Instance);
    }

    public override void Close(ExecContext ctx)
    {
        _left.Close(ctx);
        Reset();
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

/// <summary>
/// Open addressing with linear probing from 64-bit integer keys to a row index: key and value share one slot, so
/// a probe usually costs one cache miss (a Dictionary costs a bucket, an entry and a comparer call).
/// </summary>
internal sealed class IntegerKeyTable
{
    private Entry[] _entries;
    private int _count;
    private int _shift;

    /// <summary>Sized for <paramref name="expected"/> keys at most half full, so filling it never rehashes.</summary>
    public IntegerKeyTable(int expected = 0)
    {
        var bits = Math.Max(8, 64 - BitOperations.LeadingZeroCount(((ulong)Math.Max(1, expected) * 2) - 1));
        _entries = new Entry[1 << bits];
        _shift = 64 - bits;
    }

    /// <summary>Maps <paramref name="key"/> to <paramref name="value"/>; returns the previous value or -1.</summary>
    public int Set(long key, int value)
    {
        if (_count * 2 >= _entries.Length)
        {
            Grow();
        }

        var mask = _entries.Length - 1;
        for (var slot = Slot(key); ; slot = (slot + 1) & mask)
        {
            ref var entry = ref _entries[slot];
            if (entry.Value == 0)
            {
                entry.Key = key;
                entry.Value = value + 1;
                _count++;
                return -1;
            }

            if (entry.Key == key)
            {
                var previous = entry.Value - 1;
                entry.Value = value + 1;
                return previous;
            }
        }
    }

    /// <summary>The value of <paramref name="key"/>, or -1.</summary>
    public int Get(long key)
    {
        var mask = _entries.Length - 1;
        for (var slot = Slot(key); ; slot = (slot + 1) & mask)
        {
            ref var entry = ref _entries[slot];
            if (entry.Value == 0 || entry.Key == key)
            {
                return entry.Value - 1;
            }
        }
    }

    // Fibonacci hashing: consecutive keys spread over the table.
    private int Slot(long key) => (int)((ulong)(key * -7046029254386353131L) >> _shift);

    private void Grow()
    {
        var old = _entries;
        _entries = new Entry[old.Length * 2];
        _shift--;
        _count = 0;
        foreach (var entry in old)
        {
            if (entry.Value != 0)
            {
                Set(entry.Key, entry.Value - 1);
            }
        }
    }

    // Value is the row index plus one, so a zeroed slot is empty.
    private struct Entry
    {
        public long Key;
        public int Value;
    }
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
