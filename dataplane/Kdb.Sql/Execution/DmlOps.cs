using Kdb.Sql.Types;

namespace Kdb.Sql.Execution;

/// <summary>Base of INSERT/UPDATE/DELETE plans: the work happens at Open; RETURNING rows stream afterwards.</summary>
internal abstract class DmlOp(int width) : Operator(width)
{
    private List<Value[]> _returned = [];
    private int _next;

    public long AffectedRows { get; protected set; }

    protected BoundExpr[]? Returning { get; init; }

    /// <summary>The RETURNING expressions (null: none); for <see cref="PlanShape"/>.</summary>
    internal BoundExpr[]? ReturningExprs => Returning;

    public override void Open(ExecContext ctx)
    {
        _returned = [];
        _next = 0;
        AffectedRows = 0;
        Execute(ctx);
    }

    protected abstract void Execute(ExecContext ctx);

    protected void Return(Value[] row, ExecContext ctx)
    {
        if (Returning is null)
        {
            return;
        }

        var output = new Value[Returning.Length];
        for (var i = 0; i < output.Length; i++)
        {
            output[i] = Returning[i].Eval(row, ctx);
        }

        ctx.ChargeMemory(ExecContext.RowBytes(output));
        _returned.Add(output);
    }

    public override bool Next(ExecContext ctx)
    {
        if (_next >= _returned.Count)
        {
            return false;
        }

        Row = _returned[_next++];
        return true;
    }
}

/// <summary>What ON CONFLICT does with a row that collides.</summary>
internal sealed class OnConflictPlan
{
    public bool DoNothing { get; init; }

    /// <summary>The index the conflict target names (null: any unique index, DO NOTHING only).</summary>
    public Catalog.IndexDef? Target { get; init; }

    /// <summary>SET expressions per slot (null: unchanged), over [existing row, excluded row].</summary>
    public BoundExpr?[] Set { get; init; } = [];

    public BoundExpr? Where { get; init; }
}

internal sealed class InsertOp : DmlOp
{
    private readonly TableWriter _writer;
    private readonly Operator? _source;
    private readonly BoundExpr[][]? _values;
    private readonly int[] _targetSlots;
    private readonly OnConflictPlan? _onConflict;
    private readonly bool _overridingSystem;

    public InsertOp(TableWriter writer, Operator? source, BoundExpr[][]? values, int[] targetSlots, OnConflictPlan? onConflict, BoundExpr[]? returning, bool overridingSystem)
        : base(returning?.Length ?? 0)
    {
        _writer = writer;
        _source = source;
        _values = values;
        _targetSlots = targetSlots;
        _onConflict = onConflict;
        _overridingSystem = overridingSystem;
        Returning = returning;
    }

    internal TableWriter Writer => _writer;

    /// <summary>The one row of an INSERT ... VALUES of one row without ON CONFLICT, else null; for <see cref="PlanShape"/>.</summary>
    internal BoundExpr[]? SingleValuesRow => _source is null && _onConflict is null && _values is [var only] ? only : null;

    protected override void Execute(ExecContext ctx)
    {
        var table = _writer.Table;
        if (_values is not null)
        {
            foreach (var exprs in _values)
            {
                var row = new Value[table.RowWidth];
                var provided = new bool[table.SlotCount];
                for (var i = 0; i < exprs.Length; i++)
                {
                    if (exprs[i] is Planning.DefaultMarkerExpr)
                    {
                        continue;
                    }

                    row[_targetSlots[i]] = exprs[i].Eval(row, ctx);
                    provided[_targetSlots[i]] = true;
                }

                InsertOne(row, provided, ctx);
            }

            return;
        }

        if (_source is null)
        {
            InsertOne(new Value[table.RowWidth], new bool[table.SlotCount], ctx);
            return;
        }

        // INSERT ... SELECT reads everything first, so a SELECT over the same table never sees its own inserts.
        var rows = new List<Value[]>();
        _source.Open(ctx);
        while (_source.Next(ctx))
        {
            ctx.CheckCancellation();
            var copy = (Value[])_source.Row.Clone();
            ctx.ChargeMemory(ExecContext.RowBytes(copy));
            rows.Add(copy);
        }

        _source.Close(ctx);
        foreach (var source in rows)
        {
            var row = new Value[table.RowWidth];
            var provided = new bool[table.SlotCount];
            for (var i = 0; i < _targetSlots.Length; i++)
            {
                row[_targetSlots[i]] = source[i];
                provided[_targetSlots[i]] = true;
            }

            InsertOne(row, provided, ctx);
        }
    }

    private void InsertOne(Value[] row, bool[] provided, ExecContext ctx)
    {
        ctx.CheckCancellation();
        foreach (var column in _writer.Table.Table.Columns)
        {
            if (column.Identity == Catalog.IdentityKind.Always && provided[column.Slot] && !_overridingSystem)
            {
                throw new SqlException("428C9", $"cannot insert a non-DEFAULT value into column \"{column.Name}\"", detail: $"Column \"{column.Name}\" is an identity column defined as GENERATED ALWAYS.", hint: "Use OVERRIDING SYSTEM VALUE to override.");
            }
        }

        _writer.FillDefaults(row, provided, ctx);
        if (_onConflict is null)
        {
            _writer.Insert(row, ctx, false, out _);
            AffectedRows++;
            Return(row, ctx);
            return;
        }

        if (_writer.Insert(row, ctx, true, out var conflict))
        {
            AffectedRows++;
            Return(row, ctx);
            return;
        }

        if (_onConflict.Target is not null && conflict!.Index != _onConflict.Target)
        {
            // A collision on another unique index than the target is an error, as in PostgreSQL.
            _writer.Insert(row, ctx, false, out _);
        }

        if (_onConflict.DoNothing)
        {
            return;
        }

        var table = _writer.Table;
        var existingValue = ctx.Transaction.Get(conflict!.ExistingPrimaryKey)
            ?? throw new SqlException(SqlState.InternalError, "conflicting row vanished");
        var existing = new Value[table.RowWidth];
        table.Decode(conflict.ExistingPrimaryKey, existingValue, existing);
        var combined = new Value[table.RowWidth * 2];
        Array.Copy(existing, combined, table.RowWidth);
        Array.Copy(row, 0, combined, table.RowWidth, table.RowWidth);
        if (_onConflict.Where is not null && !_onConflict.Where.IsTrue(combined, ctx))
        {
            return;
        }

        var updated = (Value[])existing.Clone();
        for (var slot = 0; slot < _onConflict.Set.Length; slot++)
        {
            if (_onConflict.Set[slot] is { } expr)
            {
                updated[slot] = expr.Eval(combined, ctx);
            }
        }

        _writer.Update(existing, updated, ctx);
        AffectedRows++;
        Return(updated, ctx);
    }

    public override string Label => $"Insert on {_writer.Table.Table.Name}";

    public override IEnumerable<Operator> Inputs => _source is null ? [] : [_source];
}

/// <summary>UPDATE: collects the target rows first (so no row is updated twice), then writes each new version.</summary>
internal sealed class UpdateOp : DmlOp
{
    private readonly TableWriter _writer;
    private readonly Operator _source;
    private readonly BoundExpr?[] _set;

    public UpdateOp(TableWriter writer, Operator source, BoundExpr?[] set, BoundExpr[]? returning)
        : base(returning?.Length ?? 0)
    {
        _writer = writer;
        _source = source;
        _set = set;
        Returning = returning;
    }

    internal TableWriter Writer => _writer;

    internal Operator Source => _source;

    internal BoundExpr?[] Set => _set;

    protected override void Execute(ExecContext ctx)
    {
        var table = _writer.Table;
        var targets = new List<(Value[] Old, Value[] New)>();
        var seen = new HashSet<byte[]>(Transactions.ByteArrayComparer.Instance);
        _source.Open(ctx);
        while (_source.Next(ctx))
        {
            ctx.CheckCancellation();
            var source = _source.Row;
            var key = source[table.KeySlot].AsBytes;
            if (!seen.Add(key))
            {
                continue;
            }

            var old = source.AsSpan(0, table.RowWidth).ToArray();
            var updated = (Value[])old.Clone();
            for (var slot = 0; slot < _set.Length; slot++)
            {
                if (_set[slot] is { } expr)
                {
                    updated[slot] = expr.Eval(source, ctx);
                }
            }

            ctx.ChargeMemory(ExecContext.RowBytes(old) * 2);
            targets.Add((old, updated));
        }

        _source.Close(ctx);
        foreach (var (old, updated) in targets)
        {
            _writer.Update(old, updated, ctx);
            AffectedRows++;
            Return(updated, ctx);
        }
    }

    public override string Label => $"Update on {_writer.Table.Table.Name}";

    public override IEnumerable<Operator> Inputs => [_source];
}

internal sealed class DeleteOp : DmlOp
{
    private readonly TableWriter _writer;
    private readonly Operator _source;

    public DeleteOp(TableWriter writer, Operator source, BoundExpr[]? returning)
        : base(returning?.Length ?? 0)
    {
        _writer = writer;
        _source = source;
        Returning = returning;
    }

    internal TableWriter Writer => _writer;

    internal Operator Source => _source;

    protected override void Execute(ExecContext ctx)
    {
        var table = _writer.Table;
        var targets = new List<Value[]>();
        var seen = new HashSet<byte[]>(Transactions.ByteArrayComparer.Instance);
        _source.Open(ctx);
        while (_source.Next(ctx))
        {
            ctx.CheckCancellation();
            var key = _source.Row[table.KeySlot].AsBytes;
            if (seen.Add(key))
            {
                var old = _source.Row.AsSpan(0, table.RowWidth).ToArray();
                ctx.ChargeMemory(ExecContext.RowBytes(old));
                targets.Add(old);
            }
        }

        _source.Close(ctx);
        foreach (var old in targets)
        {
            // A cascade from an earlier row may already have removed this one.
            if (ctx.Transaction.Get(old[table.KeySlot].AsBytes) is null)
            {
                continue;
            }

            _writer.Delete(old, ctx);
            AffectedRows++;
            Return(old, ctx);
        }
    }

    public override string Label => $"Delete on {_writer.Table.Table.Name}";

    public override IEnumerable<Operator> Inputs => [_source];
}
