using Kdb.Sql.Catalog;
using Kdb.Sql.Codec;
using Kdb.Sql.Execution;
using Kdb.Sql.Planning;
using Kdb.Sql.Syntax;
using Kdb.Sql.Types;

namespace Kdb.Sql.Sessions;

/// <summary>
/// Runs DDL inside the current transaction: it changes a copy of the catalog (written back as one record,
/// so DDL commits or rolls back with the transaction) and rewrites or range-deletes data where needed.
/// </summary>
internal sealed partial class DdlExecutor
{
    private readonly CatalogData _catalog;
    private readonly ExecContext _ctx;
    private readonly SqlSession _session;

    public DdlExecutor(CatalogData catalogCopy, ExecContext ctx, SqlSession session)
    {
        _catalog = catalogCopy;
        _ctx = ctx;
        _session = session;
    }

    public List<string> Notices { get; } = [];

    /// <summary>Sequences to restart (TRUNCATE ... RESTART IDENTITY): each is its own commit, which the session awaits.</summary>
    public List<uint> SequencesToRestart { get; } = [];

    private ulong Tenant => _session.Database.Tenant;

    private uint NextOid() => _catalog.NextObjectId++;

    private string SchemaForCreate(QualifiedName name) => SchemaPath.ForCreate(_ctx.Session, _catalog, name);

    private TableDef? FindTable(QualifiedName name) => SchemaPath.FindTable(_ctx.Session, _catalog, name);

    private bool NameTaken(string schema, string name) => SchemaPath.HasRelation(_catalog, schema, name);

    private string UniqueName(string schema, string baseName)
    {
        var name = Truncate(baseName);
        var n = 1;
        while (NameTaken(schema, name))
        {
            name = Truncate(baseName) + n++;
        }

        return name;
    }

    private static string Truncate(string name) => name.Length > 63 ? name[..63] : name;

    public string CreateTable(CreateTableStatement create)
    {
        var schema = SchemaForCreate(create.Name);
        var name = create.Name.Name;
        if (NameTaken(schema, name))
        {
            if (create.IfNotExists)
            {
                Notices.Add($"relation \"{name}\" already exists, skipping");
                return "CREATE TABLE";
            }

            throw new SqlException(SqlState.DuplicateTable, $"relation \"{name}\" already exists", create.Position);
        }

        if (create.AsQuery is not null)
        {
            return CreateTableAs(create);
        }

        var table = new TableDef { Id = NextOid(), Schema = schema, Name = name, PrimaryIndex = new IndexDef { Id = 0, Oid = 0, Name = name + "_pkey", Primary = true } };
        _catalog.Tables.Add(table);
        foreach (var column in create.Columns)
        {
            AddColumn(table, column, create.Position);
        }

        if (table.Columns.Count > 1600)
        {
            throw new SqlException(SqlState.TooManyColumns, "tables can have at most 1600 columns", create.Position);
        }

        foreach (var constraint in create.Constraints)
        {
            AddConstraint(table, constraint, existingRows: false);
        }

        FinishTable(table);
        return "CREATE TABLE";
    }

    /// <summary>Gives a table without a primary key its hidden row-id sequence.</summary>
    private void FinishTable(TableDef table)
    {
        if (!table.HasPrimaryKey && table.RowIdSequence is null)
        {
            var sequence = new SequenceDef { Id = NextOid(), Schema = table.Schema, Name = UniqueName(table.Schema, table.Name + "_rowid_seq"), OwnedBy = table.Name + ".<rowid>" };
            _catalog.Sequences.Add(sequence);
            table.RowIdSequence = sequence.Id;
        }
    }

    private void AddColumn(TableDef table, ColumnDefinition definition, int position)
    {
        if (table.FindColumn(definition.Name) is not null)
        {
            throw new SqlException(SqlState.DuplicateColumn, $"column \"{definition.Name}\" specified more than once", definition.Position);
        }

        var type = TypeResolver.FromTypeName(definition.Type);
        // Arrays of the element types kdb has array types for are stored as they are; others (oid[], vectors) are catalog-only.
        var storableArray = type.Id is SqlTypeId.Int2Array or SqlTypeId.Int4Array or SqlTypeId.Int8Array or SqlTypeId.TextArray;
        if ((type.ElementType is not null && !storableArray) || type.Id is SqlTypeId.Unknown or SqlTypeId.Record or SqlTypeId.Void)
        {
            throw new SqlException(SqlState.FeatureNotSupported, $"columns of type {type.DisplayName} are not supported", definition.Position);
        }

        var column = new ColumnDef { Name = definition.Name, TypeId = type.Id, TypeModifier = type.Modifier, Slot = table.Columns.Count };
        table.Columns.Add(column);
        if (TypeResolver.IsSerial(definition.Type))
        {
            var sequence = CreateOwnedSequence(table, column, type);
            // Qualified outside public, so the default finds its sequence whatever the search_path.
            var sequenceName = (table.Schema == "public" ? string.Empty : SqlFormatter.QuoteIdentifier(table.Schema) + ".") + SqlFormatter.QuoteIdentifier(sequence.Name);
            column.DefaultSql = $"nextval('{sequenceName.Replace("'", "''", StringComparison.Ordinal)}'::regclass)";
            column.SequenceId = sequence.Id;
            column.NotNull = true;
        }

        foreach (var constraint in definition.Constraints)
        {
            switch (constraint.Kind)
            {
                case ConstraintKind.NotNull:
                    column.NotNull = true;
                    break;
                case ConstraintKind.Null:
                    break;
                case ConstraintKind.Default:
                    column.DefaultSql = ValidateDefault(constraint.Expression!, column);
                    break;
                case ConstraintKind.Identity:
                    if (type.Kind != ValueKind.Int)
                    {
                        throw new SqlException(SqlState.InvalidParameterValue, $"identity column type must be smallint, integer, or bigint", constraint.Position);
                    }

                    column.Identity = constraint.IdentityAlways ? IdentityKind.Always : IdentityKind.ByDefault;
                    var identity = CreateOwnedSequence(table, column, type);
                    identity.Increment = constraint.IdentityIncrement is null or 0 ? 1 : constraint.IdentityIncrement.Value;
                    identity.Start = constraint.IdentityStart ?? (identity.Increment > 0 ? 1 : -1);
                    if (identity.Increment < 0)
                    {
                        identity.MinValue = -identity.MaxValue;
                        identity.MaxValue = -1;
                    }

                    column.SequenceId = identity.Id;
                    column.NotNull = true;
                    break;
                default:
                    AddConstraint(table, constraint with { Columns = [column.Name] }, existingRows: false);
                    break;
            }
        }

        _ = position;
    }

    private SequenceDef CreateOwnedSequence(TableDef table, ColumnDef column, SqlType type)
    {
        var sequence = new SequenceDef
        {
            Id = NextOid(),
            Schema = table.Schema,
            Name = UniqueName(table.Schema, $"{table.Name}_{column.Name}_seq"),
            TypeId = type.Id,
            MaxValue = type.Id switch { SqlTypeId.Int2 => short.MaxValue, SqlTypeId.Int4 => int.MaxValue, _ => long.MaxValue },
            OwnedBy = table.Name + "." + column.Name,
        };
        _catalog.Sequences.Add(sequence);
        return sequence;
    }

    private string ValidateDefault(Expr expr, ColumnDef column)
    {
        if (Binder.Walk(expr, e => e is ColumnRefExpr))
        {
            throw new SqlException(SqlState.FeatureNotSupported, "cannot use column reference in DEFAULT expression", expr.Position);
        }

        var binder = NewBinder();
        TypeResolver.Coerce(binder.BindExpr(expr, new ExprScope(Scope.Empty(null), "DEFAULT")), column.Type, false, expr.Position);
        return SqlFormatter.Format(expr);
    }

    /// <summary>Array columns cannot be index keys here (their values have no order-preserving key encoding).</summary>
    private static void RequireKeyable(TableDef table, IEnumerable<int> slots, int position)
    {
        foreach (var slot in slots)
        {
            if (slot >= 0 && table.Columns[slot].Type.ElementType is not null)
            {
                throw new SqlException(SqlState.FeatureNotSupported, $"column \"{table.Columns[slot].Name}\" of type {table.Columns[slot].Type.DisplayName} cannot be part of an index key in kdb", position);
            }
        }
    }

    private Binder NewBinder() => new(new BindContext(_catalog, Tenant, _ctx.Session, null));

    private void AddConstraint(TableDef table, Syntax.Constraint constraint, bool existingRows)
    {
        var slots = constraint.Columns.Select(name =>
            (table.FindColumn(name) ?? throw new SqlException(SqlState.UndefinedColumn, $"column \"{name}\" named in key does not exist", constraint.Position)).Slot).ToArray();
        if (constraint.Kind is ConstraintKind.PrimaryKey or ConstraintKind.Unique)
        {
            RequireKeyable(table, slots, constraint.Position);
        }
        switch (constraint.Kind)
        {
            case ConstraintKind.PrimaryKey:
                if (table.HasPrimaryKey)
                {
                    throw new SqlException(SqlState.InvalidTableDefinition, $"multiple primary keys for table \"{table.Name}\" are not allowed", constraint.Position);
                }

                foreach (var slot in slots)
                {
                    table.Columns[slot].NotNull = true;
                }

                table.PrimaryIndex = new IndexDef
                {
                    Id = 0,
                    Oid = NextOid(),
                    Name = constraint.Name ?? UniqueName(table.Schema, table.Name + "_pkey"),
                    Primary = true,
                    Unique = true,
                    IsConstraint = true,
                    Columns = slots,
                    Descending = new bool[slots.Length],
                };
                if (existingRows)
                {
                    RekeyRows(table);
                }

                break;
            case ConstraintKind.Unique:
                {
                    var index = new IndexDef
                    {
                        Id = table.NextIndexId++,
                        Oid = NextOid(),
                        Name = constraint.Name ?? UniqueName(table.Schema, $"{table.Name}_{string.Join('_', constraint.Columns)}_key"),
                        Unique = true,
                        IsConstraint = true,
                        Columns = slots,
                        Descending = new bool[slots.Length],
                    };
                    table.Indexes.Add(index);
                    if (existingRows)
                    {
                        BuildIndex(table, index);
                    }

                    break;
                }

            case ConstraintKind.Check:
                {
                    var text = SqlFormatter.Format(constraint.Expression!);
                    var check = new CheckDef
                    {
                        Name = constraint.Name ?? UniqueName(table.Schema, $"{table.Name}_{(constraint.Columns.Count == 1 ? constraint.Columns[0] : string.Join('_', CheckColumns(constraint.Expression!, table)))}_check".Replace("__check", "_check", StringComparison.Ordinal)),
                        Sql = text,
                        Columns = slots,
                    };
                    table.Checks.Add(check);
                    var writer = NewBinder().BuildWriter(table);
                    if (existingRows)
                    {
                        foreach (var row in ReadAll(table))
                        {
                            foreach (var (name, expr) in writer.Checks)
                            {
                                if (name == check.Name && expr.Eval(row, _ctx) is { Kind: ValueKind.Bool } v && !v.AsBool)
                                {
                                    throw new SqlException(SqlState.CheckViolation, $"check constraint \"{check.Name}\" of relation \"{table.Name}\" is violated by some row");
                                }
                            }
                        }
                    }

                    break;
                }

            case ConstraintKind.ForeignKey:
                {
                    var reference = constraint.ReferencedTable!;
                    var parent = reference.Name == table.Name && (reference.Schema ?? SchemaPath.Locate(_ctx.Session, _catalog, reference) ?? table.Schema) == table.Schema ? table : FindTable(reference)
                        ?? throw new SqlException(SqlState.UndefinedTable, $"relation \"{constraint.ReferencedTable}\" does not exist", constraint.Position);
                    int[] referenced;
                    if (constraint.ReferencedColumns is null)
                    {
                        referenced = parent.HasPrimaryKey ? parent.PrimaryIndex.Columns
                            : throw new SqlException(SqlState.UndefinedObject, $"there is no primary key for referenced table \"{parent.Name}\"", constraint.Position);
                    }
                    else
                    {
                        referenced = constraint.ReferencedColumns.Select(n => (parent.FindColumn(n) ?? throw new SqlException(SqlState.UndefinedColumn, $"column \"{n}\" referenced in foreign key constraint does not exist", constraint.Position)).Slot).ToArray();
                    }

                    if (referenced.Length != slots.Length)
                    {
                        throw new SqlException(SqlState.InvalidForeignKey, "number of referencing and referenced columns for foreign key disagree", constraint.Position);
                    }

                    var matchesKey = (parent.HasPrimaryKey && parent.PrimaryIndex.Columns.AsSpan().SequenceEqual(referenced))
                        || parent.Indexes.Exists(i => i.Unique && i.Predicate is null && i.Expressions is null && i.Columns.AsSpan().SequenceEqual(referenced));
                    if (!matchesKey)
                    {
                        throw new SqlException(SqlState.InvalidForeignKey, $"there is no unique constraint matching given keys for referenced table \"{parent.Name}\"", constraint.Position);
                    }

                    for (var i = 0; i < slots.Length; i++)
                    {
                        var childType = table.Columns[slots[i]].Type;
                        var parentType = parent.Columns[referenced[i]].Type;
                        if (childType.Kind != parentType.Kind)
                        {
                            throw new SqlException(SqlState.DatatypeMismatch, $"foreign key constraint \"{constraint.Name ?? table.Name + "_fkey"}\" cannot be implemented", constraint.Position, detail: $"Key columns are of incompatible types: {childType.DisplayName} and {parentType.DisplayName}.");
                        }
                    }

                    var fk = new ForeignKeyDef
                    {
                        Name = constraint.Name ?? UniqueName(table.Schema, $"{table.Name}_{string.Join('_', constraint.Columns)}_fkey"),
                        Columns = slots,
                        ReferencedTableId = parent.Id,
                        ReferencedColumns = referenced,
                        OnDelete = constraint.OnDelete,
                        OnUpdate = constraint.OnUpdate,
                    };
                    table.ForeignKeys.Add(fk);
                    if (existingRows)
                    {
                        ValidateForeignKey(table, fk);
                    }

                    break;
                }

            case ConstraintKind.NotNull:
                foreach (var slot in slots)
                {
                    table.Columns[slot].NotNull = true;
                }

                break;
            default:
                throw new SqlException(SqlState.FeatureNotSupported, $"constraint {constraint.Kind} is not supported here", constraint.Position);
        }
    }

    private static IEnumerable<string> CheckColumns(Expr expr, TableDef table)
    {
        var names = new List<string>();
        Binder.Walk(expr, e =>
        {
            if (e is ColumnRefExpr c && table.FindColumn(c.Column) is not null && !names.Contains(c.Column))
            {
                names.Add(c.Column);
            }

            return false;
        });
        return names.Count == 0 ? [string.Empty] : names.Take(1);
    }

    private void ValidateForeignKey(TableDef table, ForeignKeyDef fk)
    {
        var writer = NewBinder().BuildWriter(table);
        foreach (var row in ReadAll(table))
        {
            // Rewriting each row with itself as the old version runs exactly the insert-time check.
            var fresh = (Value[])row.Clone();
            var nulls = new Value[row.Length];
            Array.Copy(row, nulls, row.Length);
            foreach (var slot in fk.Columns)
            {
                nulls[slot] = Value.Null;
            }

            try
            {
                writer.Update(nulls, fresh, _ctx);
            }
            catch (SqlException e) when (e.SqlState == SqlState.ForeignKeyViolation)
            {
                throw new SqlException(SqlState.ForeignKeyViolation, $"insert or update on table \"{table.Name}\" violates foreign key constraint \"{fk.Name}\"", detail: e.Detail);
            }
        }
    }

    /// <summary>Every live row of a table (slots plus the hidden key slot).</summary>
    private List<Value[]> ReadAll(TableDef table)
    {
        var info = new TableInfo(Tenant, table);
        var rows = new List<Value[]>();
        foreach (var pair in _ctx.Transaction.Scan(info.PrimaryPrefix, KeyEncoder.PrefixEnd(info.PrimaryPrefix)!, false))
        {
            _ctx.CheckCancellation();
            var row = new Value[info.RowWidth];
            info.Decode(pair.Key, pair.Value, row);
            _ctx.ChargeMemory(ExecContext.RowBytes(row));
            rows.Add(row);
        }

        return rows;
    }

    /// <summary>Writes every row again under the table's (new) definition: new primary key, new column types.</summary>
    private void RekeyRows(TableDef table, Func<Value[], Value[]>? transform = null, TableDef? oldDefinition = null)
    {
        var rows = ReadAll(oldDefinition ?? table);
        var info = new TableInfo(Tenant, table);
        var prefix = info.TablePrefix;
        _ctx.Transaction.DeleteRange(prefix, KeyEncoder.PrefixEnd(prefix)!);
        var writer = NewBinder().BuildWriter(table);
        foreach (var row in rows)
        {
            var next = transform is null ? row : transform(row);
            writer.Insert(next, _ctx, false, out _);
        }
    }

    private void BuildIndex(TableDef table, IndexDef index)
    {
        var info = new TableInfo(Tenant, table);
        var predicate = index.Predicate is null ? null : NewBinder().BindIndexPredicate(info, SqlParser.ParseExpression(index.Predicate));
        var expressions = index.Expressions is null ? null : NewBinder().BindIndexExpressions(info, index);
        foreach (var row in ReadAll(table))
        {
            if (predicate is not null && !predicate.IsTrue(row, _ctx))
            {
                continue;
            }

            var key = row[info.KeySlot].AsBytes;
            var entry = info.IndexKey(_ctx.KeyWriter, index, row, key, out var uniqueChecked, expressions, _ctx);
            if (uniqueChecked && _ctx.Transaction.Get(entry) is not null)
            {
                throw new SqlException(
                    SqlState.UniqueViolation,
                    $"could not create unique index \"{index.Name}\"",
                    detail: $"Key {TableWriter.KeyText(table, index, row, expressions, _ctx)} is duplicated.");
            }

            _ctx.Transaction.Put(entry, key);
        }
    }

    private string CreateTableAs(CreateTableStatement create)
    {
        var binder = NewBinder();
        var bound = binder.BindQuery(create.AsQuery!, null);
        var columns = new List<ColumnDefinition>();
        for (var i = 0; i < bound.Columns.Count; i++)
        {
            var column = bound.Columns[i];
            var name = create.AsColumnNames is not null && i < create.AsColumnNames.Count ? create.AsColumnNames[i] : column.Name;
            var type = column.Type.Id == SqlTypeId.Unknown ? SqlType.Text : column.Type;
            columns.Add(new ColumnDefinition(create.Position, name, SqlParser.ParseTypeName(type.DisplayName), []));
        }

        var table = new TableDef { Id = NextOid(), Schema = SchemaForCreate(create.Name), Name = create.Name.Name, PrimaryIndex = new IndexDef { Id = 0, Oid = 0, Name = create.Name.Name + "_pkey", Primary = true } };
        _catalog.Tables.Add(table);
        foreach (var column in columns)
        {
            AddColumn(table, column, create.Position);
        }

        FinishTable(table);
        var writer = NewBinder().BuildWriter(table);
        var info = writer.Table;
        bound.Plan.Open(_ctx);
        var count = 0L;
        while (bound.Plan.Next(_ctx))
        {
            var row = new Value[info.RowWidth];
            Array.Copy(bound.Plan.Row, row, Math.Min(bound.Plan.Row.Length, info.SlotCount));
            writer.Insert(row, _ctx, false, out _);
            count++;
        }

        bound.Plan.Close(_ctx);
        return "SELECT " + count;
    }

    public string CreateIndex(CreateIndexStatement create)
    {
        var table = FindTable(create.Table)
            ?? throw new SqlException(SqlState.UndefinedTable, $"relation \"{create.Table}\" does not exist", create.Position);

        var slots = new int[create.Columns.Count];
        var descending = new bool[create.Columns.Count];
        var expressions = new string?[create.Columns.Count];
        var keyNames = new string[create.Columns.Count];
        var info = new TableInfo(Tenant, table);
        for (var i = 0; i < slots.Length; i++)
        {
            var column = create.Columns[i];
            descending[i] = column.Descending;
            if (column.Expression is ColumnRefExpr { Parts.Count: 1 } name)
            {
                slots[i] = (table.FindColumn(name.Column) ?? throw new SqlException(SqlState.UndefinedColumn, $"column \"{name.Column}\" does not exist", name.Position)).Slot;
                keyNames[i] = name.Column;
                continue;
            }

            // An expression key: bound now so a bad one fails here; stored as text like CHECK constraints.
            var bound = NewBinder().BindIndexExpression(info, column.Expression, "expression");
            if (bound.Type.Id is SqlTypeId.Unknown || bound.Type.ElementType is not null || bound.Type.Kind == ValueKind.Array)
            {
                throw new SqlException(SqlState.FeatureNotSupported, $"index expressions of type {bound.Type.DisplayName} are not supported", column.Expression.Position);
            }

            slots[i] = -1;
            expressions[i] = SqlFormatter.Format(column.Expression);
            keyNames[i] = Binder.ColumnName(column.Expression) is var figured && figured != "?column?" ? figured : "expr";
        }

        RequireKeyable(table, slots, create.Position);
        var indexName = create.Name ?? UniqueName(table.Schema, $"{table.Name}_{string.Join('_', keyNames)}_idx");
        if (NameTaken(table.Schema, indexName))
        {
            if (create.IfNotExists)
            {
                Notices.Add($"relation \"{indexName}\" already exists, skipping");
                return "CREATE INDEX";
            }

            throw new SqlException(SqlState.DuplicateTable, $"relation \"{indexName}\" already exists", create.Position);
        }

        var index = new IndexDef { Id = table.NextIndexId++, Oid = NextOid(), Name = indexName, Unique = create.Unique, Columns = slots, Descending = descending, Expressions = Array.Exists(slots, s => s < 0) ? expressions : null };
        if (create.Where is not null)
        {
            // Bound once here so a bad predicate fails the CREATE INDEX, not every later write.
            _ = NewBinder().BindIndexPredicate(new TableInfo(Tenant, table), create.Where);
            index.Predicate = SqlFormatter.Format(create.Where);
        }

        table.Indexes.Add(index);
        BuildIndex(table, index);
        return "CREATE INDEX";
    }

    public string CreateView(CreateViewStatement create)
    {
        var schema = SchemaForCreate(create.Name);
        var existing = _catalog.Views.Find(v => v.Schema == schema && v.Name == create.Name.Name);
        if (existing is not null && !create.OrReplace)
        {
            throw new SqlException(SqlState.DuplicateTable, $"relation \"{create.Name.Name}\" already exists", create.Position);
        }

        if (existing is null && NameTaken(schema, create.Name.Name))
        {
            throw new SqlException(SqlState.DuplicateTable, $"relation \"{create.Name.Name}\" already exists", create.Position);
        }

        var context = new BindContext(_catalog, Tenant, _ctx.Session, null) { Dependencies = [] };
        var bound = new Binder(context).BindQuery(create.Query, null);
        var names = bound.Columns.Select((c, i) => create.Columns is not null && i < create.Columns.Count ? create.Columns[i] : c.Name).ToList();
        var types = bound.Columns.Select(c => c.Type.Id == SqlTypeId.Unknown ? SqlTypeId.Text : c.Type.Id).ToList();
        if (create.Columns is not null && create.Columns.Count > names.Count)
        {
            throw new SqlException(SqlState.SyntaxError, "CREATE VIEW specifies more column names than columns", create.Position);
        }

        if (existing is not null)
        {
            CheckViewReplacement(existing, names, types, context.Dependencies, create.Position);
            _catalog.Views.Remove(existing);
        }

        _catalog.Views.Add(new ViewDef
        {
            Id = existing?.Id ?? NextOid(),
            Schema = schema,
            Name = create.Name.Name,
            Sql = SqlFormatter.Format(create.Query),
            ColumnNames = names,
            ColumnTypes = types,
            DependsOn = [.. context.Dependencies],
            ColumnDependencies = ColumnDependencies(create.Query, context.Dependencies),
            SearchPath = [.. _ctx.Session.SearchPath],
        });
        return "CREATE VIEW";
    }

    public string CreateSequence(CreateSequenceStatement create)
    {
        var schema = SchemaForCreate(create.Name);
        if (NameTaken(schema, create.Name.Name))
        {
            if (create.IfNotExists)
            {
                Notices.Add($"relation \"{create.Name.Name}\" already exists, skipping");
                return "CREATE SEQUENCE";
            }

            throw new SqlException(SqlState.DuplicateTable, $"relation \"{create.Name.Name}\" already exists", create.Position);
        }

        var increment = create.Increment ?? 1;
        if (increment == 0)
        {
            throw new SqlException(SqlState.InvalidParameterValue, "INCREMENT must not be zero", create.Position);
        }

        var type = create.DataType is null ? SqlType.Int8 : TypeResolver.FromTypeName(SqlParser.ParseTypeName(create.DataType));
        var typeMax = type.Id switch { SqlTypeId.Int2 => short.MaxValue, SqlTypeId.Int4 => int.MaxValue, _ => long.MaxValue };
        var min = create.MinValue ?? (increment > 0 ? 1 : -typeMax);
        var max = create.MaxValue ?? (increment > 0 ? typeMax : -1);
        var start = create.Start ?? (increment > 0 ? min : max);
        if (start < min || start > max)
        {
            throw new SqlException(SqlState.InvalidParameterValue, $"START value ({start}) cannot be {(start < min ? "less than MINVALUE" : "greater than MAXVALUE")} ({(start < min ? min : max)})", create.Position);
        }

        _catalog.Sequences.Add(new SequenceDef
        {
            Id = NextOid(),
            Schema = schema,
            Name = create.Name.Name,
            TypeId = type.Id,
            Increment = increment,
            MinValue = min,
            MaxValue = max,
            Start = start,
            Cache = Math.Max(1, create.Cache ?? 1),
            Cycle = create.Cycle ?? false,
        });
        return "CREATE SEQUENCE";
    }
}
