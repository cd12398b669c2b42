using Kdb.Sql.Execution;
using Kdb.Sql.Planning;
using Kdb.Sql.Syntax;
using Kdb.Sql.Transactions;
using Kdb.Sql.Types;

namespace Kdb.Sql.Sessions;

/// <summary>
/// COPY ... FROM STDIN: rows arrive as text fields (the wire layer parses the text or CSV format) and are
/// inserted with every constraint checked, inside the session's transaction (committed at Sync as usual).
/// A row whose serial default or hidden row id needs a new sequence block (a commit: a Raft round trip on a
/// clustered node) is held with the rows after it until the caller awaits <see cref="FlushAsync"/>, so no
/// thread waits for the store.
/// </summary>
public sealed class SqlCopyIn
{
    private readonly TableWriter _writer;
    private readonly int[] _slots;
    private readonly SqlType[] _types;
    private readonly ExecContext _ctx;
    private readonly SequenceManager _sequences;
    private readonly SqlTransaction _transaction;
    private readonly List<Value[]> _held = [];

    internal SqlCopyIn(TableWriter writer, int[] slots, ExecContext ctx, IReadOnlyList<ResultColumn> columns, SequenceManager sequences)
    {
        _writer = writer;
        _slots = slots;
        _ctx = ctx;
        _sequences = sequences;
        _transaction = ctx.Transaction;
        Columns = columns;
        _types = columns.Select(c => c.Type).ToArray();
    }

    /// <summary>The target columns, in the order fields arrive.</summary>
    public IReadOnlyList<ResultColumn> Columns { get; }

    /// <summary>Rows inserted so far.</summary>
    public long Rows { get; private set; }

    /// <summary>Inserts one row; <paramref name="fields"/> holds one text value per column (null for NULL).</summary>
    public void AddRow(IReadOnlyList<string?> fields)
    {
        CheckFieldCount(fields.Count, fields.Count < _slots.Length ? $"missing data for column \"{Columns[fields.Count].Name}\"" : "extra data after last expected column");
        var values = new Value[_slots.Length];
        for (var i = 0; i < values.Length; i++)
        {
            try
            {
                values[i] = fields[i] is null ? Value.Null : ValueText.Parse(fields[i]!, _types[i]);
            }
            catch (SqlException e)
            {
                throw new SqlException(e.SqlState, e.Message, detail: $"COPY {_writer.Table.Table.Name}, line {Rows + _held.Count + 1}, column {Columns[i].Name}: \"{fields[i]}\"");
            }
        }

        Insert(values);
    }

    /// <summary>
    /// Inserts one row of already decoded values (binary COPY), one per column in <see cref="Columns"/> order and of
    /// that column's base type; length and precision modifiers are applied here, as a binary input function does.
    /// </summary>
    public void AddValues(ReadOnlySpan<Value> values)
    {
        if (values.Length != _slots.Length)
        {
            CheckFieldCount(values.Length, $"row field count is {values.Length}, expected {_slots.Length}");
        }

        var converted = new Value[values.Length];
        for (var i = 0; i < converted.Length; i++)
        {
            var type = _types[i];
            try
            {
                converted[i] = type.Modifier < 0 ? values[i] : Casts.Convert(values[i], new SqlType(type.Id), type, explicitCast: false);
            }
            catch (SqlException e)
            {
                throw new SqlException(e.SqlState, e.Message, detail: $"COPY {_writer.Table.Table.Name}, line {Rows + _held.Count + 1}, column {Columns[i].Name}");
            }
        }

        Insert(converted);
    }

    private void CheckFieldCount(int count, string message)
    {
        if (count != _slots.Length)
        {
            throw new SqlException("22P04", message, detail: $"COPY row {Rows + _held.Count + 1}");
        }
    }

    private void Insert(Value[] values)
    {
        if (_held.Count > 0 || !TryInsert(values))
        {
            _held.Add(values);
        }
    }

    /// <summary>Inserts the rows held for a sequence block once it is allocated. Call after each batch of rows and before <see cref="Complete"/>.</summary>
    public async ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        var done = 0;
        while (done < _held.Count)
        {
            await _sequences.CompletePendingAsync();
            cancellationToken.ThrowIfCancellationRequested();
            while (done < _held.Count && TryInsert(_held[done]))
            {
                done++;
            }
        }

        _held.Clear();
    }

    private bool TryInsert(Value[] values)
    {
        var mark = _transaction.UndoMark;
        _sequences.BeginAttempt();
        var pending = false;
        try
        {
            InsertNow(values);
            return true;
        }
        catch (SequencePendingException)
        {
            pending = true;
            _transaction.RollbackTo(mark);
            return false;
        }
        finally
        {
            _sequences.EndAttempt(statementDone: !pending);
        }
    }

    private void InsertNow(Value[] values)
    {
        var table = _writer.Table;
        var row = new Value[table.RowWidth];
        var provided = new bool[table.SlotCount];
        for (var i = 0; i < _slots.Length; i++)
        {
            row[_slots[i]] = values[i];
            provided[_slots[i]] = true;
        }

        _ctx.CheckCancellation();
        _writer.FillDefaults(row, provided, _ctx);
        _writer.Insert(row, _ctx, false, out _);
        Rows++;
    }

    /// <summary>Ends the copy and returns the command tag's row count (COPY n).</summary>
    public long Complete() => _held.Count == 0 ? Rows : throw new InvalidOperationException("COPY rows are still held: await FlushAsync before Complete");
}

public sealed partial class SqlSession
{
    /// <summary>Starts COPY <paramref name="table"/> [(<paramref name="columns"/>)] FROM STDIN in the current (or an implicit) transaction.</summary>
    public async ValueTask<SqlCopyIn> BeginCopyInAsync(string table, IReadOnlyList<string>? columns, CancellationToken cancellationToken = default)
    {
        if (_failed)
        {
            throw new SqlException(SqlState.InFailedTransaction, "current transaction is aborted, commands ignored until end of transaction block");
        }

        if (State.Role == SqlRoleKind.ReadOnly)
        {
            throw new SqlException(SqlState.InsufficientPrivilege, "permission denied: COPY FROM needs a role of kind readwrite or owner");
        }

        if (_readOnlyTxn)
        {
            throw new SqlException(SqlState.ReadOnlyTransaction, "cannot execute COPY FROM in a read-only transaction");
        }

        await EnsureTransactionAsync(cancellationToken);
        var catalog = CurrentCatalog();
        var context = new BindContext(catalog, Database.Tenant, State, null);
        var name = SqlParser.Parse("SELECT 1 FROM " + table) is SelectStatement { Body: SelectCore { From: [NamedTableRef named] } } ? named.Name : new QualifiedName(0, null, table);
        var definition = context.RequireTable(name);
        var writer = new Binder(context).BuildWriter(definition);
        var slots = columns is null || columns.Count == 0
            ? definition.Columns.Where(c => !c.Dropped).Select(c => c.Slot).ToArray()
            : columns.Select(c => (definition.FindColumn(c) ?? throw new SqlException(SqlState.UndefinedColumn, $"column \"{c}\" of relation \"{definition.Name}\" does not exist")).Slot).ToArray();
        var resultColumns = slots.Select(s => new ResultColumn(definition.Columns[s].Name, definition.Columns[s].Type, definition.Id, (short)(s + 1))).ToList();
        var (ctx, _) = NewContext(catalog, [], cancellationToken);
        return new SqlCopyIn(writer, slots, ctx, resultColumns, Sequences);
    }
}
