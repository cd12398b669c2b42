using Kdb.Sql.Catalog;
using Kdb.Sql.Codec;
using Kdb.Sql.Execution;
using Kdb.Sql.Planning;
using Kdb.Sql.Syntax;
using Kdb.Sql.Types;

namespace Kdb.Sql.Sessions;

internal sealed partial class DdlExecutor
{
    public string Drop(DropStatement drop)
    {
        var tag = "DROP " + drop.Kind.ToString().ToUpperInvariant();
        if (drop.Kind == ObjectKind.Schema && !drop.IfExists && drop.Names.FirstOrDefault(n => !_catalog.Schemas.Contains(n.Name)) is { } missing)
        {
            // Every name is looked up before anything is dropped, as in PostgreSQL.
            throw new SqlException(SqlState.InvalidSchemaName, $"schema \"{missing.Name}\" does not exist", missing.Position);
        }

        foreach (var name in drop.Names)
        {
            switch (drop.Kind)
            {
                case ObjectKind.Table:
                    {
                        var table = FindTable(name);
                        if (table is null)
                        {
                            if (drop.IfExists)
                            {
                                Notices.Add($"table \"{name.Name}\" does not exist, skipping");
                                continue;
                            }

                            throw new SqlException(SqlState.UndefinedTable, $"table \"{name}\" does not exist", name.Position);
                        }

                        DropTable(table, drop.Cascade, drop.Names);
                        break;
                    }

                case ObjectKind.Index:
                    {
                        var owner = SchemaPath.FindIndexOwner(_ctx.Session, _catalog, name);
                        if (owner is null)
                        {
                            if (drop.IfExists)
                            {
                                Notices.Add($"index \"{name.Name}\" does not exist, skipping");
                                continue;
                            }

                            throw new SqlException(SqlState.UndefinedObject, $"index \"{name}\" does not exist", name.Position);
                        }

                        var index = owner.Indexes.Find(i => i.Name == name.Name);
                        if (index is null || index.IsConstraint)
                        {
                            throw new SqlException(SqlState.DependentObjectsStillExist, $"cannot drop index {name.Name} because constraint {name.Name} on table {owner.Name} requires it", name.Position, hint: $"You can drop constraint {name.Name} on table {owner.Name} instead.");
                        }

                        DropIndex(owner, index);
                        break;
                    }

                case ObjectKind.View:
                    {
                        var view = SchemaPath.FindView(_ctx.Session, _catalog, name);
                        if (view is null)
                        {
                            if (drop.IfExists)
                            {
                                Notices.Add($"view \"{name.Name}\" does not exist, skipping");
                                continue;
                            }

                            throw new SqlException(SqlState.UndefinedTable, $"view \"{name}\" does not exist", name.Position);
                        }

                        DropViewsOn(view.Id, $"view {view.Name}", drop.Cascade, drop.Names);
                        _catalog.Views.Remove(view);
                        break;
                    }

                case ObjectKind.Sequence:
                    {
                        var sequence = SchemaPath.FindSequence(_ctx.Session, _catalog, name);
                        if (sequence is null)
                        {
                            if (drop.IfExists)
                            {
                                Notices.Add($"sequence \"{name.Name}\" does not exist, skipping");
                                continue;
                            }

                            throw new SqlException(SqlState.UndefinedTable, $"sequence \"{name}\" does not exist", name.Position);
                        }

                        if (sequence.OwnedBy is not null && !drop.Cascade && _catalog.Tables.Exists(t => t.Columns.Exists(c => c.SequenceId == sequence.Id && !c.Dropped)))
                        {
                            throw new SqlException(SqlState.DependentObjectsStillExist, $"cannot drop sequence {sequence.Name} because other objects depend on it", name.Position, hint: "Use DROP ... CASCADE to drop the dependent objects too.");
                        }

                        _catalog.Sequences.Remove(sequence);
                        _ctx.Transaction.Delete(_session.Database.CatalogStore.SequenceKey(sequence.Id));
                        break;
                    }

                case ObjectKind.Schema:
                    if (!_catalog.Schemas.Contains(name.Name))
                    {
                        Notices.Add($"schema \"{name.Name}\" does not exist, skipping");
                        continue;
                    }

                    DropSchema(name, drop.Cascade);
                    break;
            }
        }

        return tag;
    }

    private void DropTable(TableDef table, bool cascade, IReadOnlyList<QualifiedName> alsoDropped)
    {
        DropViewsOn(table.Id, $"table {table.Name}", cascade, alsoDropped);
        foreach (var other in _catalog.Tables)
        {
            if (other == table || alsoDropped.Any(n => n.Name == other.Name))
            {
                continue;
            }

            var referencing = other.ForeignKeys.FindAll(fk => fk.ReferencedTableId == table.Id);
            if (referencing.Count > 0 && !cascade)
            {
                throw new SqlException(
                    SqlState.DependentObjectsStillExist,
                    $"cannot drop table {table.Name} because other objects depend on it",
                    detail: $"constraint {referencing[0].Name} on table {other.Name} depends on table {table.Name}",
                    hint: "Use DROP ... CASCADE to drop the dependent objects too.");
            }

            foreach (var fk in referencing)
            {
                Notices.Add($"drop cascades to constraint {fk.Name} on table {other.Name}");
                other.ForeignKeys.Remove(fk);
            }
        }

        _catalog.Tables.Remove(table);
        _catalog.Sequences.RemoveAll(s => s.OwnedBy is not null && s.Schema == table.Schema && s.OwnedBy.StartsWith(table.Name + ".", StringComparison.Ordinal));

        // One range tombstone drops every row and index entry of the table: O(1) whatever its size.
        var prefix = KeyEncoder.Prefix(Tenant, table.Id, 0).AsSpan(0, 12).ToArray();
        _ctx.Transaction.DeleteRange(prefix, KeyEncoder.PrefixEnd(prefix)!);
    }

    /// <summary>DROP SCHEMA: refused while it holds objects, unless CASCADE, which drops them all.</summary>
    private void DropSchema(QualifiedName name, bool cascade)
    {
        var tables = _catalog.Tables.FindAll(t => t.Schema == name.Name);
        var views = _catalog.Views.FindAll(v => v.Schema == name.Name);
        var sequences = _catalog.Sequences.FindAll(s => s.Schema == name.Name && s.OwnedBy is null);
        var objects = tables.Select(t => $"table {name.Name}.{t.Name}").Concat(views.Select(v => $"view {name.Name}.{v.Name}")).Concat(sequences.Select(s => $"sequence {name.Name}.{s.Name}")).ToList();
        if (objects.Count > 0 && !cascade)
        {
            throw new SqlException(
                SqlState.DependentObjectsStillExist,
                $"cannot drop schema {name.Name} because other objects depend on it",
                name.Position,
                detail: string.Join("\n", objects.Select(o => $"{o} depends on schema {name.Name}")),
                hint: "Use DROP ... CASCADE to drop the dependent objects too.");
        }

        if (objects.Count > 0)
        {
            Notices.Add(objects.Count == 1 ? $"drop cascades to {objects[0]}" : $"drop cascades to {objects.Count} other objects");
        }

        foreach (var view in views)
        {
            // Views elsewhere over this schema's views go with them; its tables' dependents go in DropTable.
            DropViewsOn(view.Id, $"view {view.Name}", cascade: true, views.Select(v => new QualifiedName(0, v.Schema, v.Name)).ToList());
        }

        _catalog.Views.RemoveAll(v => v.Schema == name.Name);
        foreach (var sequence in sequences)
        {
            _catalog.Sequences.Remove(sequence);
            _ctx.Transaction.Delete(_session.Database.CatalogStore.SequenceKey(sequence.Id));
        }

        foreach (var table in tables)
        {
            DropTable(table, cascade: true, []);
        }

        _catalog.Schemas.Remove(name.Name);
        _catalog.SchemaOids.Remove(name.Name);
    }

    /// <summary>True when an index's expressions or predicate name the column (so dropping the column drops the index, as in PostgreSQL).</summary>
    private static bool MentionsColumn(IndexDef index, string column)
    {
        var texts = (index.Expressions ?? []).Append(index.Predicate);
        foreach (var text in texts)
        {
            if (text is not null && Binder.Walk(SqlParser.ParseExpression(text), e => e is ColumnRefExpr c && c.Column == column))
            {
                return true;
            }
        }

        return false;
    }

    private void DropIndex(TableDef table, IndexDef index)
    {
        table.Indexes.Remove(index);
        var prefix = KeyEncoder.Prefix(Tenant, table.Id, index.Id);
        _ctx.Transaction.DeleteRange(prefix, KeyEncoder.PrefixEnd(prefix)!);
    }

    public string Truncate(TruncateStatement truncate)
    {
        var tables = truncate.Tables.Select(n => FindTable(n)
            ?? throw new SqlException(SqlState.UndefinedTable, $"relation \"{n}\" does not exist", n.Position)).ToList();
        foreach (var table in tables)
        {
            var referencing = _catalog.Tables.Where(t => !tables.Contains(t) && t.ForeignKeys.Exists(fk => fk.ReferencedTableId == table.Id)).ToList();
            if (referencing.Count > 0)
            {
                if (!truncate.Cascade)
                {
                    throw new SqlException(SqlState.FeatureNotSupported, "cannot truncate a table referenced in a foreign key constraint", detail: $"Table \"{referencing[0].Name}\" references \"{table.Name}\".", hint: $"Truncate table \"{referencing[0].Name}\" at the same time, or use TRUNCATE ... CASCADE.");
                }

                tables.AddRange(referencing);
            }
        }

        foreach (var table in tables.Distinct())
        {
            var prefix = KeyEncoder.Prefix(Tenant, table.Id, 0).AsSpan(0, 12).ToArray();
            _ctx.Transaction.DeleteRange(prefix, KeyEncoder.PrefixEnd(prefix)!);
            if (truncate.RestartIdentity)
            {
                foreach (var column in table.Columns)
                {
                    if (column.SequenceId is { } id)
                    {
                        SequencesToRestart.Add(id);
                    }
                }
            }
        }

        return "TRUNCATE TABLE";
    }

    public string Alter(AlterTableStatement alter)
    {
        var table = FindTable(alter.Table);
        if (table is null)
        {
            if (alter.IfExists)
            {
                Notices.Add($"relation \"{alter.Table.Name}\" does not exist, skipping");
                return "ALTER TABLE";
            }

            throw new SqlException(SqlState.UndefinedTable, $"relation \"{alter.Table}\" does not exist", alter.Position);
        }

        foreach (var action in alter.Actions)
        {
            switch (action)
            {
                case AddColumnAction add:
                    if (table.FindColumn(add.Column.Name) is not null)
                    {
                        if (add.IfNotExists)
                        {
                            Notices.Add($"column \"{add.Column.Name}\" of relation \"{table.Name}\" already exists, skipping");
                            continue;
                        }

                        throw new SqlException(SqlState.DuplicateColumn, $"column \"{add.Column.Name}\" of relation \"{table.Name}\" already exists", add.Position);
                    }

                    AddColumnToExisting(table, add.Column);
                    break;
                case DropColumnAction dropColumn:
                    {
                        var column = table.FindColumn(dropColumn.Column);
                        if (column is null)
                        {
                            if (dropColumn.IfExists)
                            {
                                Notices.Add($"column \"{dropColumn.Column}\" of relation \"{table.Name}\" does not exist, skipping");
                                continue;
                            }

                            throw new SqlException(SqlState.UndefinedColumn, $"column \"{dropColumn.Column}\" of relation \"{table.Name}\" does not exist", dropColumn.Position);
                        }

                        if (table.PrimaryIndex.Columns.Contains(column.Slot))
                        {
                            throw new SqlException(SqlState.DependentObjectsStillExist, $"cannot drop column {column.Name} of table {table.Name} because constraint {table.PrimaryIndex.Name} depends on it", dropColumn.Position);
                        }

                        DropViewsOnColumn(table, column, dropColumn.Cascade);
                        foreach (var index in table.Indexes.Where(i => i.Columns.Contains(column.Slot) || MentionsColumn(i, column.Name)).ToList())
                        {
                            DropIndex(table, index);
                        }

                        table.Checks.RemoveAll(c => c.Columns.Contains(column.Slot));
                        table.ForeignKeys.RemoveAll(f => f.Columns.Contains(column.Slot));
                        column.Dropped = true;
                        column.NotNull = false;
                        column.DefaultSql = null;
                        break;
                    }

                case AddConstraintAction addConstraint:
                    AddConstraint(table, addConstraint.Constraint, existingRows: true);
                    if (addConstraint.Constraint.Kind == ConstraintKind.PrimaryKey && table.RowIdSequence is { } rowIdSequence)
                    {
                        _catalog.Sequences.RemoveAll(s => s.Id == rowIdSequence);
                        table.RowIdSequence = null;
                    }

                    break;
                case DropConstraintAction dropConstraint:
                    DropConstraint(table, dropConstraint);
                    break;
                case AlterColumnAction alterColumn:
                    AlterColumn(table, alterColumn);
                    break;
                case RenameTableAction rename:
                    if (NameTaken(table.Schema, rename.NewName))
                    {
                        throw new SqlException(SqlState.DuplicateTable, $"relation \"{rename.NewName}\" already exists", rename.Position);
                    }

                    RefuseRenameUnderView(table, null);
                    table.Name = rename.NewName;
                    break;
                case RenameColumnAction renameColumn:
                    {
                        var column = table.FindColumn(renameColumn.Column)
                            ?? throw new SqlException(SqlState.UndefinedColumn, $"column \"{renameColumn.Column}\" does not exist", renameColumn.Position);
                        if (table.FindColumn(renameColumn.NewName) is not null)
                        {
                            throw new SqlException(SqlState.DuplicateColumn, $"column \"{renameColumn.NewName}\" of relation \"{table.Name}\" already exists", renameColumn.Position);
                        }

                        RefuseRenameUnderView(table, column);

                        // CHECK texts name columns: keep them valid.
                        foreach (var check in table.Checks)
                        {
                            check.Sql = SqlFormatter.Format(RenameIn(SqlParser.ParseExpression(check.Sql), renameColumn.Column, renameColumn.NewName));
                        }

                        column.Name = renameColumn.NewName;
                        break;
                    }

                default:
                    throw new SqlException(SqlState.FeatureNotSupported, "this ALTER TABLE action is not supported", action.Position);
            }
        }

        FinishTable(table);
        return "ALTER TABLE";
    }

    private static Expr RenameIn(Expr expr, string from, string to) => expr switch
    {
        ColumnRefExpr c when c.Column == from => c with { Parts = [.. c.Parts.Take(c.Parts.Count - 1), to] },
        BinaryExpr b => b with { Left = RenameIn(b.Left, from, to), Right = RenameIn(b.Right, from, to) },
        UnaryExpr u => u with { Operand = RenameIn(u.Operand, from, to) },
        Syntax.IsNullExpr n => n with { Operand = RenameIn(n.Operand, from, to) },
        BetweenExpr bt => bt with { Operand = RenameIn(bt.Operand, from, to), Low = RenameIn(bt.Low, from, to), High = RenameIn(bt.High, from, to) },
        Syntax.InListExpr il => il with { Operand = RenameIn(il.Operand, from, to), Items = il.Items.Select(i => RenameIn(i, from, to)).ToList() },
        FunctionCallExpr f => f with { Arguments = f.Arguments.Select(a => RenameIn(a, from, to)).ToList() },
        Syntax.CastExpr c => c with { Operand = RenameIn(c.Operand, from, to) },
        _ => expr,
    };

    private void AddColumnToExisting(TableDef table, ColumnDefinition definition)
    {
        AddColumn(table, definition, definition.Position);
        var column = table.Columns[^1];
        var hasRows = ReadAll(table).Count > 0;
        if (!hasRows)
        {
            return;
        }

        var binder = NewBinder();
        var writer = binder.BuildWriter(table);
        var defaultExpr = writer.Defaults[column.Slot];
        if (defaultExpr is null || defaultExpr.IsConstant && defaultExpr is ConstExpr or Execution.CastExpr { IsConstant: true })
        {
            var value = defaultExpr?.Eval([], _ctx) ?? Value.Null;
            if (value.IsNull && column.NotNull)
            {
                throw new SqlException(SqlState.NotNullViolation, $"column \"{column.Name}\" of relation \"{table.Name}\" contains null values");
            }

            // Existing rows read the value from the catalog: no rewrite (PostgreSQL's attmissingval).
            column.MissingValue = value.IsNull ? null : ValueText.Format(value, column.Type);
            return;
        }

        // A volatile default (nextval, random) differs per row: rewrite the rows.
        var info = new TableInfo(Tenant, table);
        foreach (var row in ReadAll(table))
        {
            var updated = (Value[])row.Clone();
            updated[column.Slot] = defaultExpr.Eval(updated, _ctx);
            writer.Update(row, updated, _ctx);
        }

        _ = info;
    }

    private void DropConstraint(TableDef table, DropConstraintAction drop)
    {
        if (table.HasPrimaryKey && table.PrimaryIndex.Name == drop.Name)
        {
            var referencing = _catalog.Tables.Find(t => t.ForeignKeys.Exists(fk => fk.ReferencedTableId == table.Id && fk.ReferencedColumns.AsSpan().SequenceEqual(table.PrimaryIndex.Columns)));
            if (referencing is not null && !drop.Cascade)
            {
                throw new SqlException(SqlState.DependentObjectsStillExist, $"cannot drop constraint {drop.Name} on table {table.Name} because other objects depend on it", hint: "Use DROP ... CASCADE to drop the dependent objects too.");
            }

            var old = CatalogStore.Clone(new CatalogData { Tables = [table] }).Tables[0];
            table.PrimaryIndex = new IndexDef { Id = 0, Oid = 0, Name = table.Name + "_pkey", Primary = true };
            FinishTable(table);
            RekeyRows(table, null, old);
            return;
        }

        var index = table.Indexes.Find(i => i.Name == drop.Name && i.IsConstraint);
        if (index is not null)
        {
            DropIndex(table, index);
            return;
        }

        if (table.Checks.RemoveAll(c => c.Name == drop.Name) > 0 || table.ForeignKeys.RemoveAll(f => f.Name == drop.Name) > 0)
        {
            return;
        }

        if (!drop.IfExists)
        {
            throw new SqlException(SqlState.UndefinedObject, $"constraint \"{drop.Name}\" of relation \"{table.Name}\" does not exist", drop.Position);
        }

        Notices.Add($"constraint \"{drop.Name}\" of relation \"{table.Name}\" does not exist, skipping");
    }

    private void AlterColumn(TableDef table, AlterColumnAction alter)
    {
        var column = table.FindColumn(alter.Column)
            ?? throw new SqlException(SqlState.UndefinedColumn, $"column \"{alter.Column}\" of relation \"{table.Name}\" does not exist", alter.Position);
        if (alter.SetDefault is not null)
        {
            column.DefaultSql = ValidateDefault(alter.SetDefault, column);
        }
        else if (alter.DropDefault)
        {
            column.DefaultSql = null;
        }
        else if (alter.SetNotNull is { } notNull)
        {
            if (notNull && !column.NotNull)
            {
                foreach (var row in ReadAll(table))
                {
                    if (row[column.Slot].IsNull)
                    {
                        throw new SqlException(SqlState.NotNullViolation, $"column \"{column.Name}\" of relation \"{table.Name}\" contains null values");
                    }
                }
            }
            else if (!notNull && table.PrimaryIndex.Columns.Contains(column.Slot))
            {
                throw new SqlException(SqlState.InvalidTableDefinition, $"column \"{column.Name}\" is in a primary key");
            }

            column.NotNull = notNull;
        }
        else if (alter.NewType is not null)
        {
            var newType = TypeResolver.FromTypeName(alter.NewType);
            RefuseIfViewReadsColumn(table, column);
            var oldType = column.Type;
            var old = CatalogStore.Clone(new CatalogData { Tables = [table] }).Tables[0];
            column.TypeId = newType.Id;
            column.TypeModifier = newType.Modifier;
            column.MissingValue = null;
            var slot = column.Slot;
            RekeyRows(table, row =>
            {
                var copy = (Value[])row.Clone();
                copy[slot] = Casts.Convert(row[slot], oldType, newType, explicitCast: alter.Using is not null || Casts.IsAssignable(oldType, newType));
                return copy;
            }, old);
        }
    }
}
