using System.Text;
using Kdb.Sql.Catalog;
using Kdb.Sql.Codec;
using Kdb.Sql.Syntax;
using Kdb.Sql.Types;

namespace Kdb.Sql.Execution;

/// <summary>A foreign key seen from the referenced (parent) table.</summary>
internal sealed record InboundForeignKey(TableInfo Child, ForeignKeyDef Key, TableWriter? ChildWriter);

/// <summary>
/// Writes rows of one table inside a transaction: constraint checks (NOT NULL, CHECK, UNIQUE, PRIMARY KEY,
/// FOREIGN KEY in both directions with their actions) and secondary index maintenance, with PostgreSQL's
/// SQLSTATEs and messages.
/// </summary>
internal sealed class TableWriter
{
    public TableWriter(TableInfo table, BoundExpr?[] defaults, (string Name, BoundExpr Expr)[] checks)
    {
        Table = table;
        Defaults = defaults;
        Checks = checks;
    }

    public TableInfo Table { get; }

    /// <summary>Default expression per slot (identity and serial columns call nextval); null for NULL.</summary>
    public BoundExpr?[] Defaults { get; }

    public (string Name, BoundExpr Expr)[] Checks { get; }

    /// <summary>The WHERE of each partial index, by index id.</summary>
    public Dictionary<uint, BoundExpr> IndexPredicates { get; init; } = [];

    /// <summary>The bound key expressions of each expression index, by index id (null for plain columns).</summary>
    public Dictionary<uint, BoundExpr?[]> IndexExpressions { get; init; } = [];

    private byte[] Entry(IndexDef index, Value[] row, byte[] key, ExecContext ctx, out bool uniqueChecked) =>
        Table.IndexKey(ctx.KeyWriter, index, row, key, out uniqueChecked, IndexExpressions.GetValueOrDefault(index.Id), ctx);

    /// <summary>True when the row has an entry in the index (always, unless a partial index's WHERE is not true).</summary>
    private bool Covers(IndexDef index, Value[] row, ExecContext ctx) =>
        index.Predicate is null || IndexPredicates[index.Id].IsTrue(row, ctx);

    /// <summary>Parents this table references (checked on insert and update).</summary>
    public List<(TableInfo Parent, ForeignKeyDef Key)> Outbound { get; } = [];

    /// <summary>Children referencing this table (actions on delete and update).</summary>
    public List<InboundForeignKey> Inbound { get; } = [];

    private TableDef Def => Table.Table;

    public void FillDefaults(Value[] row, bool[] provided, ExecContext ctx)
    {
        foreach (var column in Def.Columns)
        {
            if (column.Dropped || provided[column.Slot])
            {
                continue;
            }

            row[column.Slot] = Defaults[column.Slot]?.Eval(row, ctx) ?? Value.Null;
        }
    }

    /// <summary>Checks and writes a new row. Returns false when <paramref name="onConflictSkip"/> and a unique key exists.</summary>
    public bool Insert(Value[] row, ExecContext ctx, bool onConflictSkip, out ConflictInfo? conflict)
    {
        conflict = null;
        CheckRow(row, ctx);
        var txn = ctx.Transaction;
        var rowId = Def.HasPrimaryKey ? 0 : ctx.Sequences.NextValue(Def.RowIdSequence!.Value);
        var key = Table.PrimaryKey(ctx.KeyWriter, row, rowId);
        if (Def.HasPrimaryKey && txn.Get(key) is not null)
        {
            conflict = new ConflictInfo(Def.PrimaryIndex, key);
            if (onConflictSkip)
            {
                return false;
            }

            throw UniqueViolation(Def.PrimaryIndex, row, ctx);
        }

        var entries = new List<byte[]>(Def.Indexes.Count);
        foreach (var index in Def.Indexes)
        {
            if (!Covers(index, row, ctx))
            {
                continue;
            }

            var entry = Entry(index, row, key, ctx, out var uniqueChecked);
            if (uniqueChecked && txn.Get(entry) is { } existing)
            {
                conflict = new ConflictInfo(index, existing);
                if (onConflictSkip)
                {
                    return false;
                }

                throw UniqueViolation(index, row, ctx);
            }

            entries.Add(entry);
        }

        // Foreign keys are checked after unique keys, as PostgreSQL's constraint triggers run after insertion
        // (so ON CONFLICT DO NOTHING skips a duplicate without looking at its references).
        CheckOutbound(row, null, ctx);
        txn.Put(key, Encode(row, ctx));
        foreach (var entry in entries)
        {
            txn.Put(entry, key);
        }

        row[Table.KeySlot] = Value.FromBytes(key);
        return true;
    }

    /// <summary>Where an insert collided: the index and the primary key of the existing row.</summary>
    public sealed record ConflictInfo(IndexDef Index, byte[] ExistingPrimaryKey);

    public void Delete(Value[] oldRow, ExecContext ctx)
    {
        var key = oldRow[Table.KeySlot].AsBytes;
        ApplyInbound(oldRow, null, ctx);
        var txn = ctx.Transaction;
        txn.Delete(key);
        foreach (var index in Def.Indexes)
        {
            if (Covers(index, oldRow, ctx))
            {
                txn.Delete(Entry(index, oldRow, key, ctx, out _));
            }
        }
    }

    public void Update(Value[] oldRow, Value[] newRow, ExecContext ctx)
    {
        CheckRow(newRow, ctx);
        var txn = ctx.Transaction;
        var oldKey = oldRow[Table.KeySlot].AsBytes;
        var newKey = Def.HasPrimaryKey ? Table.PrimaryKey(ctx.KeyWriter, newRow, 0) : oldKey;
        CheckOutbound(newRow, oldRow, ctx);
        var keyChanged = !oldKey.AsSpan().SequenceEqual(newKey);
        if (keyChanged)
        {
            if (txn.Get(newKey) is not null)
            {
                throw UniqueViolation(Def.PrimaryIndex, newRow, ctx);
            }

            txn.Delete(oldKey);
        }

        foreach (var index in Def.Indexes)
        {
            var oldCovered = Covers(index, oldRow, ctx);
            var newCovered = Covers(index, newRow, ctx);
            var oldEntry = oldCovered ? Entry(index, oldRow, oldKey, ctx, out _) : null;
            if (!newCovered)
            {
                if (oldEntry is not null)
                {
                    txn.Delete(oldEntry);
                }

                continue;
            }

            var newEntry = Entry(index, newRow, newKey, ctx, out var uniqueChecked);
            if (oldEntry is not null && oldEntry.AsSpan().SequenceEqual(newEntry) && !keyChanged)
            {
                continue;
            }

            if (oldEntry is not null)
            {
                txn.Delete(oldEntry);
            }

            if (uniqueChecked && txn.Get(newEntry) is not null)
            {
                throw UniqueViolation(index, newRow, ctx);
            }

            txn.Put(newEntry, newKey);
        }

        txn.Put(newKey, Encode(newRow, ctx));
        newRow[Table.KeySlot] = Value.FromBytes(newKey);

        // Referencing rows follow only once the new version exists (ON UPDATE CASCADE checks against it).
        ApplyInbound(oldRow, newRow, ctx);
    }

    private byte[] Encode(Value[] row, ExecContext ctx)
    {
        var writer = ctx.RowWriter;
        writer.Clear();
        RowCodec.Encode(writer, row.AsSpan(0, Table.SlotCount));
        return writer.ToArray();
    }

    private void CheckRow(Value[] row, ExecContext ctx)
    {
        foreach (var column in Def.Columns)
        {
            if (column.NotNull && !column.Dropped && row[column.Slot].IsNull)
            {
                throw new SqlException(
                    SqlState.NotNullViolation,
                    $"null value in column \"{column.Name}\" of relation \"{Def.Name}\" violates not-null constraint",
                    detail: "Failing row contains " + FormatRow(row) + ".");
            }
        }

        foreach (var (name, expr) in Checks)
        {
            var result = expr.Eval(row, ctx);
            if (result.Kind == ValueKind.Bool && !result.AsBool)
            {
                throw new SqlException(
                    SqlState.CheckViolation,
                    $"new row for relation \"{Def.Name}\" violates check constraint \"{name}\"",
                    detail: "Failing row contains " + FormatRow(row) + ".");
            }
        }
    }

    private void CheckOutbound(Value[] row, Value[]? oldRow, ExecContext ctx)
    {
        foreach (var (parent, key) in Outbound)
        {
            var values = new Value[key.Columns.Length];
            var anyNull = false;
            var changed = oldRow is null;
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = row[key.Columns[i]];
                anyNull |= values[i].IsNull;
                if (oldRow is not null && Value.Compare(values[i], oldRow[key.Columns[i]]) != 0)
                {
                    changed = true;
                }
            }

            if (anyNull || !changed)
            {
                continue;
            }

            if (!ParentExists(parent, key, values, ctx))
            {
                throw new SqlException(
                    SqlState.ForeignKeyViolation,
                    $"insert or update on table \"{Def.Name}\" violates foreign key constraint \"{key.Name}\"",
                    detail: $"Key ({ColumnList(Def, key.Columns)})=({string.Join(", ", values.Select(v => ValueText.Format(v, default)))}) is not present in table \"{parent.Table.Name}\".");
            }
        }
    }

    private static bool ParentExists(TableInfo parent, ForeignKeyDef key, Value[] values, ExecContext ctx)
    {
        var def = parent.Table;
        var referenced = key.ReferencedColumns;
        if (def.HasPrimaryKey && def.PrimaryIndex.Columns.AsSpan().SequenceEqual(referenced))
        {
            var row = new Value[parent.RowWidth];
            for (var i = 0; i < referenced.Length; i++)
            {
                row[referenced[i]] = values[i];
            }

            return ctx.Transaction.Get(parent.PrimaryKey(ctx.KeyWriter, row, 0)) is not null;
        }

        foreach (var index in def.Indexes)
        {
            if (index.Unique && index.Predicate is null && index.Expressions is null && index.Columns.AsSpan().SequenceEqual(referenced))
            {
                var row = new Value[parent.RowWidth];
                for (var i = 0; i < referenced.Length; i++)
                {
                    row[referenced[i]] = values[i];
                }

                return ctx.Transaction.Get(parent.IndexKey(ctx.KeyWriter, index, row, [], out _)) is not null;
            }
        }

        throw new SqlException(SqlState.InvalidColumnReference, $"there is no unique constraint matching given keys for referenced table \"{def.Name}\"");
    }

    /// <summary>ON DELETE / ON UPDATE actions for rows that reference the changed row.</summary>
    private void ApplyInbound(Value[] oldRow, Value[]? newRow, ExecContext ctx)
    {
        foreach (var inbound in Inbound)
        {
            var key = inbound.Key;
            var parentValues = new Value[key.ReferencedColumns.Length];
            var changed = newRow is null;
            for (var i = 0; i < parentValues.Length; i++)
            {
                parentValues[i] = oldRow[key.ReferencedColumns[i]];
                if (newRow is not null && Value.Compare(parentValues[i], newRow[key.ReferencedColumns[i]]) != 0)
                {
                    changed = true;
                }
            }

            if (!changed || Array.Exists(parentValues, v => v.IsNull))
            {
                continue;
            }

            var children = FindChildren(inbound.Child, key, parentValues, ctx);
            if (children.Count == 0)
            {
                continue;
            }

            var action = newRow is null ? key.OnDelete : key.OnUpdate;
            var writer = inbound.ChildWriter ?? throw new SqlException(SqlState.InternalError, "foreign key writer missing");
            switch (action)
            {
                case ReferentialAction.Cascade when newRow is null:
                    foreach (var child in children)
                    {
                        writer.Delete(child, ctx);
                    }

                    break;
                case ReferentialAction.Cascade:
                    foreach (var child in children)
                    {
                        var updated = (Value[])child.Clone();
                        for (var i = 0; i < key.Columns.Length; i++)
                        {
                            updated[key.Columns[i]] = newRow[key.ReferencedColumns[i]];
                        }

                        writer.Update(child, updated, ctx);
                    }

                    break;
                case ReferentialAction.SetNull or ReferentialAction.SetDefault:
                    foreach (var child in children)
                    {
                        var updated = (Value[])child.Clone();
                        foreach (var slot in key.Columns)
                        {
                            updated[slot] = action == ReferentialAction.SetDefault ? writer.Defaults[slot]?.Eval(updated, ctx) ?? Value.Null : Value.Null;
                        }

                        writer.Update(child, updated, ctx);
                    }

                    break;
                default:
                    throw new SqlException(
                        SqlState.ForeignKeyViolation,
                        $"update or delete on table \"{Def.Name}\" violates foreign key constraint \"{key.Name}\" on table \"{inbound.Child.Table.Name}\"",
                        detail: $"Key ({ColumnList(Def, key.ReferencedColumns)})=({string.Join(", ", parentValues.Select(v => ValueText.Format(v, default)))}) is still referenced from table \"{inbound.Child.Table.Name}\".");
            }
        }
    }

    private static List<Value[]> FindChildren(TableInfo child, ForeignKeyDef key, Value[] parentValues, ExecContext ctx)
    {
        // Every referencing row is read (and so recorded in the read set): a concurrent insert of a child conflicts.
        var result = new List<Value[]>();
        var end = KeyEncoder.PrefixEnd(child.PrimaryPrefix)!;
        foreach (var pair in ctx.Transaction.Scan(child.PrimaryPrefix, end, false))
        {
            ctx.CheckCancellation();
            var row = new Value[child.RowWidth];
            child.Decode(pair.Key, pair.Value, row);
            var matches = true;
            for (var i = 0; i < key.Columns.Length && matches; i++)
            {
                matches = !row[key.Columns[i]].IsNull && Value.Compare(row[key.Columns[i]], parentValues[i]) == 0;
            }

            if (matches)
            {
                result.Add(row);
            }
        }

        return result;
    }

    private SqlException UniqueViolation(IndexDef index, Value[] row, ExecContext ctx) =>
        new(
            SqlState.UniqueViolation,
            $"duplicate key value violates unique constraint \"{index.Name}\"",
            detail: $"Key {KeyText(Def, index, row, IndexExpressions.GetValueOrDefault(index.Id), ctx)} already exists.");

    /// <summary>"(names)=(values)" of an index key, as PostgreSQL's unique-violation details print it.</summary>
    public static string KeyText(TableDef table, IndexDef index, Value[] row, BoundExpr?[]? expressions, ExecContext ctx)
    {
        var names = new string[index.Columns.Length];
        var values = new string[index.Columns.Length];
        for (var i = 0; i < names.Length; i++)
        {
            names[i] = index.KeyName(table, i);
            var slot = index.Columns[i];
            var value = slot >= 0 ? row[slot] : expressions![i]!.Eval(row, ctx);
            values[i] = value.IsNull ? "null" : ValueText.Format(value, slot >= 0 ? table.Columns[slot].Type : expressions![i]!.Type);
        }

        return $"({string.Join(", ", names)})=({string.Join(", ", values)})";
    }

    private static string ColumnList(TableDef table, int[] slots) => string.Join(", ", slots.Select(s => table.Columns[s].Name));

    private string FormatRow(Value[] row)
    {
        var sb = new StringBuilder("(");
        var first = true;
        foreach (var column in Def.Columns)
        {
            if (column.Dropped)
            {
                continue;
            }

            if (!first)
            {
                sb.Append(", ");
            }

            first = false;
            sb.Append(row[column.Slot].IsNull ? "null" : ValueText.Format(row[column.Slot], column.Type));
        }

        return sb.Append(')').ToString();
    }
}
