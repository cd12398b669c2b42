using Kdb.Sql.Catalog;
using Kdb.Sql.Codec;
using Kdb.Sql.Types;

namespace Kdb.Sql.Execution;

/// <summary>
/// The key range an index scan reads: equality values for a prefix of the index columns, then optional lower
/// and upper bounds on the next (ascending) column. Every value is already of its column's type.
/// </summary>
internal sealed class KeyBounds
{
    public BoundExpr[] Equal { get; init; } = [];

    public bool[] EqualDescending { get; init; } = [];

    public BoundExpr? Lower { get; init; }

    public bool LowerInclusive { get; init; }

    public BoundExpr? Upper { get; init; }

    public bool UpperInclusive { get; init; }

    public bool IsEmpty => Equal.Length == 0 && Lower is null && Upper is null;

    /// <summary>Computes [start, end); false when a bound is NULL (no row can match).</summary>
    public bool TryCompute(byte[] indexPrefix, ExecContext ctx, out byte[] start, out byte[] end)
    {
        var writer = ctx.KeyWriter;
        writer.Clear();
        writer.Write(indexPrefix);
        start = end = [];
        for (var i = 0; i < Equal.Length; i++)
        {
            var v = Equal[i].Eval([], ctx);
            if (v.IsNull)
            {
                return false;
            }

            KeyEncoder.WriteValue(writer, v, EqualDescending[i]);
        }

        var prefix = writer.ToArray();
        if (Lower is null)
        {
            start = prefix;
        }
        else
        {
            var v = Lower.Eval([], ctx);
            if (v.IsNull)
            {
                return false;
            }

            KeyEncoder.WriteValue(writer, v, false);
            start = LowerInclusive ? writer.ToArray() : KeyEncoder.PrefixEnd(writer.WrittenSpan)!;
        }

        if (Upper is null)
        {
            if (Lower is not null)
            {
                // Stop before the NULLs of the range column (tag 0x03): a comparison never matches them.
                end = [.. prefix, 0x03];
            }
            else
            {
                end = KeyEncoder.PrefixEnd(prefix) ?? [.. prefix, 0xFF, 0xFF, 0xFF, 0xFF];
            }
        }
        else
        {
            var v = Upper.Eval([], ctx);
            if (v.IsNull)
            {
                return false;
            }

            writer.Clear();
            writer.Write(prefix);
            KeyEncoder.WriteValue(writer, v, false);
            end = UpperInclusive ? KeyEncoder.PrefixEnd(writer.WrittenSpan)! : writer.ToArray();
        }

        return start.AsSpan().SequenceCompareTo(end) < 0;
    }

    public IEnumerable<string> Describe(IReadOnlyList<string> columnNames)
    {
        var parts = new List<string>();
        for (var i = 0; i < Equal.Length; i++)
        {
            parts.Add($"({columnNames[i]} = {Equal[i].Describe()})");
        }

        if (Lower is not null)
        {
            parts.Add($"({columnNames[Equal.Length]} {(LowerInclusive ? ">=" : ">")} {Lower.Describe()})");
        }

        if (Upper is not null)
        {
            parts.Add($"({columnNames[Equal.Length]} {(UpperInclusive ? "<=" : "<")} {Upper.Describe()})");
        }

        return parts.Count == 0 ? [] : ["Index Cond: " + string.Join(" AND ", parts)];
    }
}

/// <summary>Reads rows in primary-key order over a key range of the primary index (a sequential scan when unbounded).</summary>
internal sealed class TableScanOp(TableInfo table, string alias, KeyBounds bounds, bool reverse) : Operator(table.RowWidth)
{
    /// <summary>Slots the query reads (null: all); the others are left NULL and never decoded.</summary>
    public bool[]? Needed { get; set; }

    private IEnumerator<KeyValuePair<byte[], byte[]>>? _rows;

    public TableInfo Table => table;

    public override void Open(ExecContext ctx)
    {
        _rows?.Dispose();
        _rows = bounds.TryCompute(table.PrimaryPrefix, ctx, out var start, out var end)
            ? ctx.Transaction.Scan(start, end, reverse).GetEnumerator()
            : null;
    }

    public override bool Next(ExecContext ctx)
    {
        if (_rows is null || !_rows.MoveNext())
        {
            return false;
        }

        ctx.CheckCancellation();
        var pair = _rows.Current;
        table.Decode(pair.Key, pair.Value, Row, Needed);
        return true;
    }

    public override void Close(ExecContext ctx)
    {
        _rows?.Dispose();
        _rows = null;
    }

    public override string Label => bounds.IsEmpty
        ? $"Seq Scan on {table.Table.Name}{AliasText}"
        : $"Index Scan{(reverse ? " Backward" : string.Empty)} using {table.Table.PrimaryIndex.Name} on {table.Table.Name}{AliasText}";

    private string AliasText => alias == table.Table.Name ? string.Empty : " " + alias;

    public override IEnumerable<string> Details => bounds.Describe(KeyColumnNames(table.Table, table.Table.PrimaryIndex));

    public static List<string> KeyColumnNames(TableDef table, IndexDef index)
    {
        var names = new List<string>();
        for (var i = 0; i < index.Columns.Length; i++)
        {
            names.Add(index.KeyName(table, i));
        }

        return names;
    }
}

/// <summary>Reads one row by its complete primary key: a single point read, no allocation beyond the engine's value.</summary>
internal sealed class PointGetOp(TableInfo table, string alias, BoundExpr[] keyValues) : Operator(table.RowWidth)
{
    /// <summary>Slots the query reads (null: all); the others are left NULL and never decoded.</summary>
    public bool[]? Needed { get; set; }

    private bool _done;

    public TableInfo Table => table;

    public BoundExpr[] KeyValues => keyValues;

    public override void Open(ExecContext ctx) => _done = false;

    public override bool Next(ExecContext ctx)
    {
        if (_done)
        {
            return false;
        }

        _done = true;
        var writer = ctx.KeyWriter;
        writer.Clear();
        writer.Write(table.PrimaryPrefix);
        var index = table.Table.PrimaryIndex;
        for (var i = 0; i < keyValues.Length; i++)
        {
            var v = keyValues[i].Eval([], ctx);
            if (v.IsNull)
            {
                return false;
            }

            KeyEncoder.WriteValue(writer, v, index.Descending[i]);
        }

        // The row is decoded straight from the snapshot's bytes: no copy of the stored value.
        if (!ctx.Transaction.TryGetLent(writer.WrittenSpan, out var value))
        {
            return false;
        }

        // A pure SELECT (Needed set) never reads the hidden key slot: only DML identifies rows by it.
        table.Decode(Needed is null ? writer.ToArray() : null, value, Row, Needed);
        return true;
    }

    public override string Label => $"Index Scan using {table.Table.PrimaryIndex.Name} on {table.Table.Name}{(alias == table.Table.Name ? string.Empty : " " + alias)}";

    public override IEnumerable<string> Details =>
    [
        "Index Cond: " + string.Join(" AND ", TableScanOp.KeyColumnNames(table.Table, table.Table.PrimaryIndex).Select((n, i) => $"({n} = {keyValues[i].Describe()})")),
    ];
}

/// <summary>Scans a secondary index range and fetches each row by the primary key its entry holds.</summary>
internal sealed class IndexScanOp(TableInfo table, string alias, IndexDef index, KeyBounds bounds, bool reverse) : Operator(table.RowWidth)
{
    /// <summary>Slots the query reads (null: all); the others are left NULL and never decoded.</summary>
    public bool[]? Needed { get; set; }

    private IEnumerator<KeyValuePair<byte[], byte[]>>? _entries;

    public TableInfo Table => table;

    public override void Open(ExecContext ctx)
    {
        _entries?.Dispose();
        _entries = bounds.TryCompute(table.IndexPrefix(index.Id), ctx, out var start, out var end)
            ? ctx.Transaction.Scan(start, end, reverse).GetEnumerator()
            : null;
    }

    public override bool Next(ExecContext ctx)
    {
        while (_entries is not null && _entries.MoveNext())
        {
            ctx.CheckCancellation();
            var primaryKey = _entries.Current.Value;
            var value = ctx.Transaction.Get(primaryKey);
            if (value is null)
            {
                continue;
            }

            table.Decode(primaryKey, value, Row, Needed);
            return true;
        }

        return false;
    }

    public override void Close(ExecContext ctx)
    {
        _entries?.Dispose();
        _entries = null;
    }

    public override string Label => $"Index Scan{(reverse ? " Backward" : string.Empty)} using {index.Name} on {table.Table.Name}{(alias == table.Table.Name ? string.Empty : " " + alias)}";

    public override IEnumerable<string> Details => bounds.Describe(TableScanOp.KeyColumnNames(table.Table, index));
}

/// <summary>Rows produced by a function over the current context (generate_series, virtual catalog tables).</summary>
internal sealed class GeneratorOp(string label, int width, Func<ExecContext, IEnumerable<Value[]>> generate) : Operator(width)
{
    private IEnumerator<Value[]>? _rows;

    public override void Open(ExecContext ctx)
    {
        _rows?.Dispose();
        _rows = generate(ctx).GetEnumerator();
    }

    public override bool Next(ExecContext ctx)
    {
        if (_rows is null || !_rows.MoveNext())
        {
            return false;
        }

        ctx.CheckCancellation();
        var source = _rows.Current;
        Array.Copy(source, Row, Math.Min(source.Length, Row.Length));
        return true;
    }

    public override void Close(ExecContext ctx)
    {
        _rows?.Dispose();
        _rows = null;
    }

    public override string Label => label;
}
