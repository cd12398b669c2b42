using Kdb.Sql.Catalog;
using Kdb.Sql.Codec;
using Kdb.Sql.Types;

namespace Kdb.Sql.Execution;

/// <summary>
/// What the executor needs to read and write one table, derived once from its definition: value kinds per
/// physical slot, the values of columns added after a row was written, and key prefixes.
/// </summary>
internal sealed class TableInfo
{
    public TableInfo(ulong tenant, TableDef table)
    {
        Tenant = tenant;
        Table = table;
        SlotCount = table.Columns.Count;
        Kinds = new ValueKind[SlotCount];
        Types = new SqlType[SlotCount];
        Missing = new Value[SlotCount];
        foreach (var column in table.Columns)
        {
            Kinds[column.Slot] = column.Type.Kind;
            Types[column.Slot] = column.Type;
            Missing[column.Slot] = column.MissingValue is null || column.Dropped ? Value.Null : ValueText.Parse(column.MissingValue, column.Type);
        }

        PrimaryPrefix = KeyEncoder.Prefix(tenant, table.Id, 0);
        TablePrefix = PrimaryPrefix.AsSpan(0, 12).ToArray();
    }

    public ulong Tenant { get; }

    public TableDef Table { get; }

    /// <summary>Physical slots; scans output them followed by one hidden slot holding the row's key.</summary>
    public int SlotCount { get; }

    public int KeySlot => SlotCount;

    public int RowWidth => SlotCount + 1;

    public ValueKind[] Kinds { get; }

    public SqlType[] Types { get; }

    public Value[] Missing { get; }

    public byte[] PrimaryPrefix { get; }

    /// <summary>[tenant][table]: every index of the table lies under it.</summary>
    public byte[] TablePrefix { get; }

    public byte[] IndexPrefix(uint indexId) => KeyEncoder.Prefix(Tenant, Table.Id, indexId);

    /// <summary>Decodes a stored row into <paramref name="row"/> (slots) and puts the key in the hidden slot.</summary>
    public void Decode(byte[]? key, ReadOnlySpan<byte> value, Value[] row, bool[]? needed = null)
    {
        var present = RowCodec.Decode(value, Kinds, row, needed);
        for (var i = present; i < SlotCount; i++)
        {
            row[i] = Missing[i];
        }

        row[KeySlot] = Value.FromBytes(key);
    }

    /// <summary>Encodes the primary key of a row (the declared key columns, or the hidden row id).</summary>
    public byte[] PrimaryKey(ByteWriter writer, Value[] row, long rowId)
    {
        writer.Clear();
        writer.Write(PrimaryPrefix);
        var index = Table.PrimaryIndex;
        if (index.Columns.Length == 0)
        {
            KeyEncoder.WriteValue(writer, Value.FromInt(rowId), false);
        }
        else
        {
            for (var i = 0; i < index.Columns.Length; i++)
            {
                KeyEncoder.WriteValue(writer, row[index.Columns[i]], index.Descending[i]);
            }
        }

        return writer.ToArray();
    }

    /// <summary>
    /// Encodes a secondary index entry's key. A unique index whose key has no NULL is just the key columns (so a
    /// point read finds a duplicate); otherwise the row's primary key follows to keep entries distinct.
    /// </summary>
    public byte[] IndexKey(ByteWriter writer, IndexDef index, Value[] row, byte[] primaryKey, out bool uniqueChecked, BoundExpr?[]? expressions = null, ExecContext? ctx = null)
    {
        writer.Clear();
        writer.Write(IndexPrefix(index.Id));
        var hasNull = false;
        for (var i = 0; i < index.Columns.Length; i++)
        {
            var slot = index.Columns[i];
            var v = slot >= 0 ? row[slot] : expressions![i]!.Eval(row, ctx!);
            hasNull |= v.IsNull;
            KeyEncoder.WriteValue(writer, v, index.Descending[i]);
        }

        uniqueChecked = index.Unique && !hasNull;
        if (!uniqueChecked)
        {
            writer.Write(primaryKey.AsSpan(KeyEncoder.PrefixLength));
        }

        return writer.ToArray();
    }
}
