using Kdb.Sql.Catalog;
using Kdb.Sql.Execution;
using Kdb.Sql.Syntax;
using Kdb.Sql.Types;

namespace Kdb.Sql.Planning;

internal sealed partial class Binder
{
    private readonly Dictionary<uint, TableWriter> _writers = [];

    /// <summary>The scope of one table's full row (slots plus the hidden key), for defaults, checks and RETURNING.</summary>
    private static Scope RowScope(TableInfo table, string alias, Scope? parent, int offset = 0)
    {
        var columns = new List<ScopeColumn>();
        foreach (var column in table.Table.Columns)
        {
            if (!column.Dropped)
            {
                columns.Add(new ScopeColumn(alias, column.Name, column.Type, column.Slot + offset, table.Table.Id, (short)(column.Slot + 1)));
            }
        }

        return new Scope(columns, parent);
    }

    /// <summary>The writer of a table with its defaults, checks and foreign keys (children's writers built too, for cascades).</summary>
    public TableWriter BuildWriter(TableDef table)
    {
        if (_writers.TryGetValue(table.Id, out var cached))
        {
            return cached;
        }

        var info = _ctx.TableInfo(table);
        var defaults = new BoundExpr?[info.SlotCount];
        var empty = new ExprScope(Scope.Empty(null), "DEFAULT");
        foreach (var column in table.Columns)
        {
            if (column.Dropped)
            {
                continue;
            }

            if (column.DefaultSql is not null)
            {
                defaults[column.Slot] = TypeResolver.Coerce(BindExpr(SqlParser.ParseExpression(column.DefaultSql), empty), column.Type, false, 0);
            }
            else if (column.SequenceId is { } sequence)
            {
                defaults[column.Slot] = TypeResolver.Coerce(
                    new FuncExpr("nextval", [], SqlType.Int8, (_, ctx) => Value.FromInt(ctx.Sequences.NextValue(sequence)), strict: false, volatileFunction: true),
                    column.Type,
                    false,
                    0);
            }
        }

        var rowScope = new ExprScope(RowScope(info, table.Name, null), "CHECK");
        var checks = table.Checks.Select(c => (c.Name, CoerceBool(BindExpr(SqlParser.ParseExpression(c.Sql), rowScope), 0, "CHECK"))).ToArray();
        var predicates = new Dictionary<uint, BoundExpr>();
        var expressions = new Dictionary<uint, BoundExpr?[]>();
        foreach (var index in table.Indexes)
        {
            if (index.Predicate is not null)
            {
                predicates[index.Id] = BindIndexPredicate(info, SqlParser.ParseExpression(index.Predicate));
            }

            if (index.Expressions is not null)
            {
                expressions[index.Id] = BindIndexExpressions(info, index);
            }
        }

        var writer = new TableWriter(info, defaults, checks) { IndexPredicates = predicates, IndexExpressions = expressions };
        _writers[table.Id] = writer;
        foreach (var fk in table.ForeignKeys)
        {
            var parent = _ctx.Catalog.Tables.Find(t => t.Id == fk.ReferencedTableId)
                ?? throw new SqlException("XX001", $"foreign key \"{fk.Name}\" references a missing table");
            writer.Outbound.Add((_ctx.TableInfo(parent), fk));
        }

        foreach (var child in _ctx.Catalog.Tables)
        {
            foreach (var fk in child.ForeignKeys)
            {
                if (fk.ReferencedTableId == table.Id)
                {
                    writer.Inbound.Add(new InboundForeignKey(_ctx.TableInfo(child), fk, BuildWriter(child)));
                }
            }
        }

        return writer;
    }

    /// <summary>A partial index's WHERE over a row of its table, with PostgreSQL's restrictions on what it may hold.</summary>
    public BoundExpr BindIndexPredicate(TableInfo info, Expr predicate) =>
        CoerceBool(BindIndexExpression(info, predicate, "predicate"), predicate.Position, "WHERE");

    /// <summary>The key expressions of an expression index (null for its plain columns).</summary>
    public BoundExpr?[] BindIndexExpressions(TableInfo info, IndexDef index) =>
        Array.ConvertAll(index.Expressions!, sql => sql is null ? null : BindIndexExpression(info, SqlParser.ParseExpression(sql), "expression"));

    /// <summary>An index expression or predicate over a row of its table, with PostgreSQL's restrictions.</summary>
    public BoundExpr BindIndexExpression(TableInfo info, Expr expr, string what)
    {
        if (Walk(expr, e => e is Syntax.ExistsExpr or Syntax.ScalarSubqueryExpr or Syntax.InSubqueryExpr or Syntax.ArraySubqueryExpr or QuantifiedExpr { Query: not null }))
        {
            throw new SqlException(SqlState.FeatureNotSupported, $"cannot use subquery in index {what}", expr.Position);
        }

        var bound = BindExpr(expr, new ExprScope(RowScope(info, info.Table.Name, null), $"index {what}s"));
        if (HasVolatile(bound))
        {
            throw new SqlException("42P17", $"functions in index {what} must be marked IMMUTABLE", expr.Position);
        }

        return bound;
    }

    private static bool HasVolatile(BoundExpr expr)
    {
        if (expr is FuncExpr { Volatile: true })
        {
            return true;
        }

        foreach (var child in expr.Children)
        {
            if (HasVolatile(child))
            {
                return true;
            }
        }

        return false;
    }

    private void RequireWrite(string what)
    {
        if (_ctx.Session.Role == Sessions.SqlRoleKind.ReadOnly)
        {
            throw new SqlException(SqlState.InsufficientPrivilege, $"permission denied: {what} needs a role of kind readwrite or owner");
        }
    }

    public BoundQuery BindInsert(InsertStatement insert)
    {
        RequireWrite("INSERT");
        _ctx.TouchesData = true;
        _ctx.PushCtes();
        try
        {
            BindWith(insert.With, insert.Recursive, insert.Position, null);
            var table = _ctx.RequireTable(insert.Table);
            var info = _ctx.TableInfo(table);
            var writer = BuildWriter(table);
            int[] slots;
            if (insert.Columns is null)
            {
                slots = table.Columns.Where(c => !c.Dropped).Select(c => c.Slot).ToArray();
            }
            else
            {
                slots = new int[insert.Columns.Count];
                for (var i = 0; i < slots.Length; i++)
                {
                    var column = table.FindColumn(insert.Columns[i])
                        ?? throw new SqlException(SqlState.UndefinedColumn, $"column \"{insert.Columns[i]}\" of relation \"{table.Name}\" does not exist", insert.Position);
                    if (Array.IndexOf(slots, column.Slot, 0, i) >= 0)
                    {
                        throw new SqlException(SqlState.DuplicateColumn, $"column \"{column.Name}\" specified more than once", insert.Position);
                    }

                    slots[i] = column.Slot;
                }
            }

            var types = slots.Select(s => info.Types[s]).ToArray();
            Operator? source = null;
            BoundExpr[][]? values = null;
            if (insert.Source is { Body: ValuesBody valuesBody, OrderBy.Count: 0, Limit: null, Offset: null, With.Count: 0 })
            {
                foreach (var row in valuesBody.Rows)
                {
                    if (row.Count > slots.Length)
                    {
                        throw new SqlException(SqlState.SyntaxError, "INSERT has more expressions than target columns", insert.Position);
                    }

                    if (insert.Columns is not null && row.Count < slots.Length)
                    {
                        throw MoreTargetsThanExpressions(insert.Position);
                    }
                }

                var bound = BindValues(valuesBody, null, types.Take(valuesBody.Rows[0].Count).ToArray());
                values = ((ValuesOp)bound.Plan).RowsForInsert();
                if (values.Length > 0 && values[0].Length < slots.Length)
                {
                    slots = slots.Take(values[0].Length).ToArray();
                }
            }
            else if (insert.Source is not null)
            {
                // As in PostgreSQL, NULL and string literals in INSERT ... SELECT take the target columns' types.
                _keepUnknownOutput = insert.Source.Body is SelectCore;
                var bound = BindQuery(insert.Source, null);
                if (bound.Columns.Count > slots.Length)
                {
                    throw new SqlException(SqlState.SyntaxError, "INSERT has more expressions than target columns", insert.Position);
                }

                if (insert.Columns is not null && bound.Columns.Count < slots.Length)
                {
                    throw MoreTargetsThanExpressions(insert.Position);
                }

                slots = slots.Take(bound.Columns.Count).ToArray();
                var casts = new BoundExpr[bound.Columns.Count];
                var needsCast = false;
                for (var i = 0; i < casts.Length; i++)
                {
                    var column = new ColumnExpr(i, bound.Columns[i].Type, bound.Columns[i].Name);
                    casts[i] = TypeResolver.Coerce(column, info.Types[slots[i]], false, insert.Position);
                    needsCast |= !ReferenceEquals(casts[i], column);
                }

                source = needsCast ? new ProjectOp(bound.Plan, casts) : bound.Plan;
            }

            var targetScope = RowScope(info, insert.Alias ?? table.Name, null);
            OnConflictPlan? onConflict = null;
            if (insert.OnConflict is { } oc)
            {
                onConflict = BindOnConflict(oc, table, info, insert.Alias ?? table.Name, insert.Position);
            }

            var returning = BindReturning(insert.Returning, targetScope, out var columns);
            return new BoundQuery(new InsertOp(writer, source, values, slots, onConflict, returning, overridingSystem: false), columns);
        }
        finally
        {
            _ctx.PopCtes();
        }
    }

    private OnConflictPlan BindOnConflict(OnConflictClause clause, TableDef table, TableInfo info, string alias, int position)
    {
        IndexDef? target = null;
        if (clause.TargetColumns is not null)
        {
            var slots = clause.TargetColumns.Select(name => (table.FindColumn(name) ?? throw new SqlException(SqlState.UndefinedColumn, $"column \"{name}\" does not exist", position)).Slot).ToHashSet();
            target = new[] { table.PrimaryIndex }.Concat(table.Indexes).FirstOrDefault(i => (i.Primary && table.HasPrimaryKey || i.Unique) && i.Columns.Length == slots.Count && i.Columns.All(slots.Contains))
                ?? throw new SqlException(SqlState.InvalidColumnReference, "there is no unique or exclusion constraint matching the ON CONFLICT specification", position);
        }
        else if (clause.TargetConstraint is not null)
        {
            target = new[] { table.PrimaryIndex }.Concat(table.Indexes).FirstOrDefault(i => i.Name == clause.TargetConstraint)
                ?? throw new SqlException(SqlState.UndefinedObject, $"constraint \"{clause.TargetConstraint}\" for table \"{table.Name}\" does not exist", position);
        }
        else if (!clause.DoNothing)
        {
            throw new SqlException(SqlState.SyntaxError, "ON CONFLICT DO UPDATE requires inference specification or constraint name", position, hint: "For example, ON CONFLICT (column_name).");
        }

        if (clause.DoNothing)
        {
            return new OnConflictPlan { DoNothing = true, Target = target };
        }

        var existing = RowScope(info, alias, null).Columns.ToList();
        existing.AddRange(RowScope(info, "excluded", null, info.RowWidth).Columns);
        var scope = new ExprScope(new Scope(existing, null), "ON CONFLICT DO UPDATE");
        var set = new BoundExpr?[info.SlotCount];
        foreach (var assignment in clause.Updates)
        {
            var column = table.FindColumn(assignment.Column)
                ?? throw new SqlException(SqlState.UndefinedColumn, $"column \"{assignment.Column}\" of relation \"{table.Name}\" does not exist", position);
            set[column.Slot] = assignment.Value is DefaultExpr
                ? BuildWriter(table).Defaults[column.Slot] ?? new ConstExpr(Value.Null, column.Type)
                : TypeResolver.Coerce(BindExpr(assignment.Value, scope), column.Type, false, position);
        }

        var where = clause.UpdateWhere is null ? null : CoerceBool(BindExpr(clause.UpdateWhere, scope), position, "WHERE");
        return new OnConflictPlan { Target = target, Set = set, Where = where };
    }

    private BoundExpr[]? BindReturning(IReadOnlyList<SelectItem>? returning, Scope scope, out List<ResultColumn> columns)
    {
        columns = [];
        if (returning is null)
        {
            return null;
        }

        var exprs = new List<BoundExpr>();
        var texts = new List<string>();
        var es = new ExprScope(scope, "RETURNING");
        foreach (var item in returning)
        {
            if (item.Expression is StarExpr star)
            {
                ExpandStar(star, scope, null, exprs, columns, texts);
                continue;
            }

            var bound = BindExpr(item.Expression, es);
            exprs.Add(bound);
            columns.Add(new ResultColumn(item.Alias ?? ColumnName(item.Expression), bound.Type));
        }

        return exprs.ToArray();
    }

    public BoundQuery BindUpdate(UpdateStatement update)
    {
        RequireWrite("UPDATE");
        _ctx.TouchesData = true;
        _ctx.PushCtes();
        try
        {
            BindWith(update.With, update.Recursive, update.Position, null);
            var table = _ctx.RequireTable(update.Table);
            var info = _ctx.TableInfo(table);
            var writer = BuildWriter(table);
            var alias = update.Alias ?? table.Name;
            var from = new List<TableRef> { new NamedTableRef(update.Position, update.Table, update.Alias, null) };
            from.AddRange(update.From);
            var (plan, scope, _) = BindFrom(from, update.Where, null, null);
            var es = new ExprScope(scope, "UPDATE");
            var set = new BoundExpr?[info.SlotCount];
            foreach (var assignment in update.Set)
            {
                var column = table.FindColumn(assignment.Column)
                    ?? throw new SqlException(SqlState.UndefinedColumn, $"column \"{assignment.Column}\" of relation \"{table.Name}\" does not exist", update.Position);
                if (column.Identity == IdentityKind.Always && assignment.Value is not DefaultExpr)
                {
                    throw new SqlException("428C9", $"column \"{column.Name}\" can only be updated to DEFAULT", update.Position, detail: $"Column \"{column.Name}\" is an identity column defined as GENERATED ALWAYS.");
                }

                set[column.Slot] = assignment.Value is DefaultExpr
                    ? writer.Defaults[column.Slot] ?? new ConstExpr(Value.Null, column.Type)
                    : TypeResolver.Coerce(BindExpr(assignment.Value, es), column.Type, false, update.Position);
            }

            var returning = BindReturning(update.Returning, RowScope(info, alias, null), out var columns);
            return new BoundQuery(new UpdateOp(writer, plan, set, returning), columns);
        }
        finally
        {
            _ctx.PopCtes();
        }
    }

    public BoundQuery BindDelete(DeleteStatement delete)
    {
        RequireWrite("DELETE");
        _ctx.TouchesData = true;
        _ctx.PushCtes();
        try
        {
            BindWith(delete.With, delete.Recursive, delete.Position, null);
            var table = _ctx.RequireTable(delete.Table);
            var info = _ctx.TableInfo(table);
            var writer = BuildWriter(table);
            var from = new List<TableRef> { new NamedTableRef(delete.Position, delete.Table, delete.Alias, null) };
            from.AddRange(delete.Using);
            var (plan, _, _) = BindFrom(from, delete.Where, null, null);
            var returning = BindReturning(delete.Returning, RowScope(info, delete.Alias ?? table.Name, null), out var columns);
            return new BoundQuery(new DeleteOp(writer, plan, returning), columns);
        }
        finally
        {
            _ctx.PopCtes();
        }
    }

    private static SqlException MoreTargetsThanExpressions(int position) =>
        new(SqlState.SyntaxError, "INSERT has more target columns than expressions", position);
}
