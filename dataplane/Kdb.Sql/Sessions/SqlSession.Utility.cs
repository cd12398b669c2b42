using Kdb.Sql.Catalog;
using Kdb.Sql.Execution;
using Kdb.Sql.Planning;
using Kdb.Sql.Syntax;
using Kdb.Sql.Types;

namespace Kdb.Sql.Sessions;

/// <summary>The materialized result of one statement (convenience API for tests and the HTTP SQL endpoint).</summary>
public sealed record SqlResult(IReadOnlyList<ResultColumn>? Columns, IReadOnlyList<Value[]> Rows, string CommandTag, IReadOnlyList<SqlNotice> Notices);

public sealed partial class SqlSession
{
    private static readonly Dictionary<string, string> ReportedParameters = new(StringComparer.Ordinal)
    {
        ["application_name"] = "application_name",
        ["timezone"] = "TimeZone",
        ["datestyle"] = "DateStyle",
        ["client_encoding"] = "client_encoding",
        ["standard_conforming_strings"] = "standard_conforming_strings",
        ["intervalstyle"] = "IntervalStyle",
        ["default_transaction_read_only"] = "default_transaction_read_only",
        ["search_path"] = "search_path",
    };

    /// <summary>
    /// Runs every statement of <paramref name="sql"/> (parameters apply to a single statement) and commits the
    /// implicit transaction, as a simple query does. Returns each statement's result. On error the session is
    /// left as after any failed statement (<see cref="Fail"/> already called).
    /// </summary>
    public async ValueTask<IReadOnlyList<SqlResult>> ExecuteAsync(string sql, IReadOnlyList<Value>? parameters = null, CancellationToken cancellationToken = default)
    {
        var results = new List<SqlResult>();
        try
        {
            foreach (var parsed in SqlParser.ParseMany(sql))
            {
                var statement = new SqlStatement(this, parsed.Statement, parsed.Text, parameters is null ? [] : new SqlType[parameters.Count].Select(_ => SqlType.Unknown).ToArray());
                await DescribeAsync(statement, cancellationToken);
                var args = parameters ?? [];
                if (args.Count > 0 && statement.ParameterTypes.Count == args.Count)
                {
                    var converted = new Value[args.Count];
                    for (var i = 0; i < converted.Length; i++)
                    {
                        converted[i] = args[i].Kind == ValueKind.Text && statement.ParameterTypes[i].Kind != ValueKind.Text
                            ? ValueText.Parse(args[i].AsText, statement.ParameterTypes[i])
                            : args[i];
                    }

                    args = converted;
                }

                using var cursor = await statement.ExecuteAsync(args, cancellationToken);
                var rows = new List<Value[]>();
                var columns = cursor.Columns ?? [];
                while (cursor.MoveNext())
                {
                    var row = (Value[])cursor.Current.Clone();
                    for (var i = 0; i < row.Length && i < columns.Count; i++)
                    {
                        // Materialized rows outlive the statement's catalog: regclass and friends keep their name as text.
                        if (!row[i].IsNull && RegValues.PrintsAsName(columns[i].Type.Id))
                        {
                            row[i] = Value.FromText(cursor.FormatText(row[i], columns[i].Type));
                        }
                    }

                    rows.Add(row);
                }

                results.Add(new SqlResult(cursor.Columns, rows, cursor.CommandTag ?? string.Empty, cursor.Notices));
            }

            await SyncAsync(cancellationToken);
            return results;
        }
        catch
        {
            Fail();
            throw;
        }
    }

    private async ValueTask<SqlCursor> TransactionControlAsync(TransactionStatement transaction, CancellationToken cancellationToken)
    {
        switch (transaction.Kind)
        {
            case TransactionKind.Begin:
                if (_explicit)
                {
                    return SqlCursor.Completed("BEGIN", [new SqlNotice("WARNING", SqlState.ActiveSqlTransaction, "there is already a transaction in progress")]);
                }

                await EnsureTransactionAsync(cancellationToken);
                _explicit = true;
                if (transaction.ReadOnly is { } readOnly)
                {
                    _readOnlyTxn = readOnly;
                }

                return SqlCursor.Completed("BEGIN");
            case TransactionKind.SetTransaction:
                if (transaction.ReadOnly is { } setReadOnly)
                {
                    if (_txn is not null && _txn.HasWrites && setReadOnly)
                    {
                        throw new SqlException(SqlState.ActiveSqlTransaction, "transaction read-write mode must be set before any query");
                    }

                    _readOnlyTxn = setReadOnly;
                }

                return SqlCursor.Completed("SET");
            case TransactionKind.Commit:
                if (!_explicit)
                {
                    var notice = new SqlNotice("WARNING", SqlState.NoActiveSqlTransaction, "there is no transaction in progress");
                    await SyncAsync(cancellationToken);
                    return SqlCursor.Completed("COMMIT", [notice]);
                }

                if (_failed)
                {
                    Rollback();
                    return SqlCursor.Completed("ROLLBACK");
                }

                await CommitAsync(cancellationToken);
                return SqlCursor.Completed("COMMIT");
            case TransactionKind.Rollback:
                if (!_explicit)
                {
                    Rollback();
                    return SqlCursor.Completed("ROLLBACK", [new SqlNotice("WARNING", SqlState.NoActiveSqlTransaction, "there is no transaction in progress")]);
                }

                Rollback();
                return SqlCursor.Completed("ROLLBACK");
            case TransactionKind.Savepoint:
                RequireBlock("SAVEPOINT");
                _savepoints.Add((transaction.Savepoint!, _txn!.UndoMark, _pendingCatalog));
                return SqlCursor.Completed("SAVEPOINT");
            case TransactionKind.Release:
                {
                    RequireBlock("RELEASE SAVEPOINT");
                    var index = FindSavepoint(transaction.Savepoint!);
                    _savepoints.RemoveRange(index, _savepoints.Count - index);
                    return SqlCursor.Completed("RELEASE");
                }

            default:
                {
                    RequireBlock("ROLLBACK TO SAVEPOINT");
                    var index = FindSavepoint(transaction.Savepoint!);
                    var (_, mark, catalog) = _savepoints[index];
                    _txn!.RollbackTo(mark);
                    _pendingCatalog = catalog;
                    _savepoints.RemoveRange(index + 1, _savepoints.Count - index - 1);
                    _failed = false;
                    return SqlCursor.Completed("ROLLBACK");
                }
        }
    }

    private void RequireBlock(string what)
    {
        if (!_explicit)
        {
            throw new SqlException(SqlState.NoActiveSqlTransaction, $"{what} can only be used in transaction blocks");
        }
    }

    private int FindSavepoint(string name)
    {
        var index = _savepoints.FindLastIndex(s => s.Name == name);
        return index >= 0 ? index : throw new SqlException(SqlState.InvalidSavepoint, $"savepoint \"{name}\" does not exist");
    }

    private void RequireOwner(string what)
    {
        if (State.Role != SqlRoleKind.Owner)
        {
            throw new SqlException(SqlState.InsufficientPrivilege, $"permission denied: {what} needs the database's owner role");
        }
    }

    private async ValueTask<SqlCursor> RunUtilityAsync(SqlStatement statement, IReadOnlyList<Value> parameters, CancellationToken cancellationToken)
    {
        switch (statement.Ast)
        {
            case CreateTableStatement or CreateIndexStatement or CreateViewStatement or CreateSequenceStatement or DropStatement or AlterTableStatement or TruncateStatement or CreateSchemaStatement:
                return await RunDdlAsync(statement.Ast, cancellationToken);
            case SetStatement { Name: "session_authorization" } authorization:
                if (authorization.Values.Count > 0 && authorization.Values[0] != State.User)
                {
                    throw new SqlException(SqlState.InsufficientPrivilege, $"permission denied to set session authorization \"{authorization.Values[0]}\"");
                }

                return SqlCursor.Completed("SET");
            case UtilityStatement utility:
                return utility.Command switch
                {
                    "close" when utility.Target == "all" => SqlCursor.Completed("CLOSE CURSOR ALL"),
                    "close" => throw new SqlException("34000", $"cursor \"{utility.Target}\" does not exist"),
                    "unlisten" => SqlCursor.Completed("UNLISTEN"),
                    _ => throw new SqlException(SqlState.FeatureNotSupported, $"{utility.Command.ToUpperInvariant()} is not supported: kdb has no asynchronous notifications"),
                };
            case SetStatement set:
                {
                    var name = set.Name.ToLowerInvariant();
                    if (name is "transaction_isolation" or "default_transaction_isolation" && set.Values.Count > 0
                        && !set.Values[0].Equals("serializable", StringComparison.OrdinalIgnoreCase))
                    {
                        State.Set(name, string.Join(' ', set.Values));
                        return SqlCursor.Completed("SET", [new SqlNotice("NOTICE", "00000", "kdb runs every transaction at SERIALIZABLE")]);
                    }

                    State.Set(name, set.Values.Count == 0 ? null : string.Join(", ", set.Values));
                    return SqlCursor.Completed("SET", parameters: Reported(name));
                }

            case ResetStatement reset:
                State.Reset(reset.Name);
                return SqlCursor.Completed("RESET", parameters: reset.Name == "all" ? ReportedParameters.Keys.SelectMany(Reported).ToList() : Reported(reset.Name.ToLowerInvariant()));
            case ShowStatement show:
                {
                    Describe(statement, null);
                    if (show.Name == "all")
                    {
                        var rows = State.All.Select(p => new[] { Value.FromText(p.Key), Value.FromText(p.Value), Value.Null }).ToArray();
                        return RowsCursor(statement.Columns!, rows, "SHOW");
                    }

                    var value = State.Get(show.Name) ?? throw new SqlException(SqlState.UndefinedObject, $"unrecognized configuration parameter \"{show.Name}\"");
                    return RowsCursor(statement.Columns!, [[Value.FromText(value)]], "SHOW");
                }

            case ExplainStatement explain:
                return await ExplainAsync(explain, parameters, cancellationToken);
            case PrepareStatement prepare:
                {
                    if (_sqlPrepared.ContainsKey(prepare.Name))
                    {
                        throw new SqlException(SqlState.DuplicatePreparedStatement, $"prepared statement \"{prepare.Name}\" already exists");
                    }

                    var types = prepare.ParameterTypes.Select(t => TypeResolver.FromTypeName(t).Id).ToList();
                    var target = new SqlStatement(this, prepare.Target, prepare.TargetText, types.Select(t => new SqlType(t)).ToArray());
                    await DescribeAsync(target, cancellationToken);
                    _sqlPrepared[prepare.Name] = target;
                    return SqlCursor.Completed("PREPARE");
                }

            case ExecuteStatement execute:
                {
                    var target = _sqlPrepared.GetValueOrDefault(execute.Name)
                        ?? throw new SqlException(SqlState.UndefinedPreparedStatement, $"prepared statement \"{execute.Name}\" does not exist");
                    if (execute.Arguments.Count != target.ParameterTypes.Count)
                    {
                        throw new SqlException(SqlState.SyntaxError, $"wrong number of parameters for prepared statement \"{execute.Name}\"", detail: $"Expected {target.ParameterTypes.Count} parameters but got {execute.Arguments.Count}.");
                    }

                    await EnsureTransactionAsync(cancellationToken);
                    var binder = new Binder(new BindContext(CurrentCatalog(), Database.Tenant, State, null));
                    var (ctx, _) = NewContext(CurrentCatalog(), parameters, cancellationToken);
                    var args = new Value[execute.Arguments.Count];
                    for (var i = 0; i < args.Length; i++)
                    {
                        var bound = TypeResolver.Coerce(binder.BindExpr(execute.Arguments[i], new ExprScope(Scope.Empty(null), "EXECUTE")), target.ParameterTypes[i], false, execute.Arguments[i].Position);
                        args[i] = bound.Eval([], ctx);
                    }

                    return await target.ExecuteAsync(args, cancellationToken);
                }

            case DeallocateStatement deallocate:
                if (deallocate.Name is null)
                {
                    _sqlPrepared.Clear();
                }
                else if (!_sqlPrepared.Remove(deallocate.Name))
                {
                    throw new SqlException(SqlState.UndefinedPreparedStatement, $"prepared statement \"{deallocate.Name}\" does not exist");
                }

                return SqlCursor.Completed(deallocate.Name is null ? "DEALLOCATE ALL" : "DEALLOCATE");
            case MaintenanceStatement maintenance:
                {
                    var command = maintenance.Command.ToUpperInvariant();
                    if (_explicit && command.StartsWith("VACUUM", StringComparison.Ordinal))
                    {
                        throw new SqlException(SqlState.ActiveSqlTransaction, "VACUUM cannot run inside a transaction block");
                    }

                    var catalog = await CurrentCatalogAsync(cancellationToken);
                    foreach (var table in maintenance.Tables)
                    {
                        if (SchemaPath.FindTable(State, catalog, table) is null)
                        {
                            throw new SqlException(SqlState.UndefinedTable, $"relation \"{table}\" does not exist", table.Position);
                        }
                    }

                    return SqlCursor.Completed(
                        command.Split(' ')[0],
                        [new SqlNotice("NOTICE", "00000", $"{command.Split(' ')[0]} is a no-op in kdb: its storage compacts itself and its planner needs no statistics")]);
                }

            case DiscardStatement discard:
                if (_explicit)
                {
                    throw new SqlException(SqlState.ActiveSqlTransaction, "DISCARD ALL cannot run inside a transaction block");
                }

                if (discard.What.Equals("all", StringComparison.OrdinalIgnoreCase))
                {
                    State.Reset("all");
                    _sqlPrepared.Clear();
                }
                else if (discard.What.Equals("plans", StringComparison.OrdinalIgnoreCase))
                {
                    foreach (var prepared in _sqlPrepared.Values)
                    {
                        prepared.Bound = null;
                        prepared.IsPointRead = false;
                        prepared.IsPointWrite = false;
                    }
                }

                return SqlCursor.Completed("DISCARD " + discard.What.ToUpperInvariant());
            case LockStatement:
                RequireBlock("LOCK TABLE");
                return SqlCursor.Completed("LOCK TABLE");
            case CommentStatement:
                RequireOwner("COMMENT");
                return SqlCursor.Completed("COMMENT", [new SqlNotice("NOTICE", "00000", "kdb does not store comments")]);
            case DoStatement:
                throw new SqlException(SqlState.FeatureNotSupported, "DO blocks are not supported: kdb has no procedural language");
            case CopyStatement:
                throw new SqlException(SqlState.FeatureNotSupported, "COPY needs the wire protocol's copy sub-protocol");
            case EmptyStatement:
                return SqlCursor.Completed(string.Empty);
            default:
                throw new SqlException(SqlState.FeatureNotSupported, $"{statement.Ast.GetType().Name.Replace("Statement", string.Empty, StringComparison.Ordinal)} is not supported");
        }
    }

    private IReadOnlyList<KeyValuePair<string, string>> Reported(string name) =>
        ReportedParameters.TryGetValue(name, out var reported) && State.Get(name) is { } value
            ? [new KeyValuePair<string, string>(reported, value)]
            : [];

    private SqlCursor RowsCursor(IReadOnlyList<ResultColumn> columns, Value[][] rows, string tag)
    {
        var plan = new GeneratorOp(tag, columns.Count, _ => rows);
        var ctx = NewContext(CurrentCatalogOrEmpty(), [], CancellationToken.None).Context;
        plan.Open(ctx);
        return new SqlCursor(columns, plan, ctx, count => tag == "SHOW" ? "SHOW" : tag, this, null);
    }

    private CatalogData CurrentCatalogOrEmpty() => _pendingCatalog ?? new CatalogData();

    private async ValueTask<SqlCursor> RunDdlAsync(Statement ast, CancellationToken cancellationToken)
    {
        RequireOwner(ast switch { CreateTableStatement => "CREATE TABLE", DropStatement => "DROP", AlterTableStatement => "ALTER TABLE", TruncateStatement => "TRUNCATE", _ => "DDL" });
        if (ast is TruncateStatement && State.Role == SqlRoleKind.ReadOnly)
        {
            throw new SqlException(SqlState.InsufficientPrivilege, "permission denied: TRUNCATE");
        }

        if (_readOnlyTxn)
        {
            throw new SqlException(SqlState.ReadOnlyTransaction, "cannot execute DDL in a read-only transaction");
        }

        await EnsureTransactionAsync(cancellationToken);

        // A rewrite that fills a serial column draws sequence blocks: an attempt that needs one is undone and re-run.
        var mark = _txn!.UndoMark;
        while (true)
        {
            (string Tag, List<SqlNotice> Notices, List<uint> Restarts)? done = null;
            Sequences.BeginAttempt();
            var pending = false;
            try
            {
                done = RunDdlAttempt(ast, cancellationToken);
            }
            catch (SequencePendingException)
            {
                pending = true;
                _txn!.RollbackTo(mark);
            }
            finally
            {
                Sequences.EndAttempt(statementDone: !pending);
            }

            if (done is { } result)
            {
                foreach (var id in result.Restarts)
                {
                    await Sequences.RestartAsync(id, _pendingCatalog!, cancellationToken);
                }

                return SqlCursor.Completed(result.Tag, result.Notices);
            }

            await Sequences.CompletePendingAsync();
        }
    }

    private (string Tag, List<SqlNotice> Notices, List<uint> Restarts) RunDdlAttempt(Statement ast, CancellationToken cancellationToken)
    {
        var catalog = CatalogStore.Clone(CurrentCatalog());
        var (statementCtx, timeout) = NewContext(catalog, [], cancellationToken);

        // DDL that rewrites a table (ADD PRIMARY KEY, ALTER TYPE) holds its rows: allow it more than a query.
        var ctx = new ExecContext
        {
            Transaction = statementCtx.Transaction,
            Session = statementCtx.Session,
            Catalog = catalog,
            Sequences = statementCtx.Sequences,
            CancellationToken = statementCtx.CancellationToken,
            TransactionTimestamp = statementCtx.TransactionTimestamp,
            StatementTimestamp = statementCtx.StatementTimestamp,
            MemoryLimit = Math.Max(Database.Options.StatementMemoryBytes, 4L << 30),
            KeyWriter = statementCtx.KeyWriter,
            RowWriter = statementCtx.RowWriter,
        };
        using (timeout)
        {
            var ddl = new DdlExecutor(catalog, ctx, this);
            string tag;
            try
            {
                tag = ast switch
                {
                    CreateTableStatement create => ddl.CreateTable(create),
                    CreateIndexStatement index => ddl.CreateIndex(index),
                    CreateViewStatement view => ddl.CreateView(view),
                    CreateSequenceStatement sequence => ddl.CreateSequence(sequence),
                    DropStatement drop => ddl.Drop(drop),
                    AlterTableStatement alter => ddl.Alter(alter),
                    TruncateStatement truncate => ddl.Truncate(truncate),
                    CreateSchemaStatement schema => CreateSchema(catalog, schema, ddl),
                    _ => throw new SqlException(SqlState.FeatureNotSupported, "unsupported DDL"),
                };
            }
            catch (OperationCanceledException) when (ctx.CancellationToken.IsCancellationRequested)
            {
                throw Canceled(timeout, this);
            }

            _pendingCatalog = catalog;
            _txn!.Put(Database.CatalogStore.CatalogKey, CatalogStore.Encode(catalog));
            return (tag, ddl.Notices.Select(n => new SqlNotice("NOTICE", "00000", n)).ToList(), ddl.SequencesToRestart);
        }
    }

    private static string CreateSchema(CatalogData catalog, CreateSchemaStatement schema, DdlExecutor ddl)
    {
        if (catalog.Schemas.Contains(schema.Name) || schema.Name is "pg_catalog" or "information_schema")
        {
            if (schema.IfNotExists)
            {
                ddl.Notices.Add($"schema \"{schema.Name}\" already exists, skipping");
                return "CREATE SCHEMA";
            }

            throw new SqlException(SqlState.DuplicateSchema, $"schema \"{schema.Name}\" already exists", schema.Position);
        }

        if (schema.Name.StartsWith("pg_", StringComparison.Ordinal))
        {
            throw new SqlException("42939", $"unacceptable schema name \"{schema.Name}\"", schema.Position, detail: "The prefix \"pg_\" is reserved for system schemas.");
        }

        catalog.Schemas.Add(schema.Name);
        catalog.SchemaOids[schema.Name] = catalog.NextObjectId++;
        return "CREATE SCHEMA";
    }

    private async ValueTask<SqlCursor> ExplainAsync(ExplainStatement explain, IReadOnlyList<Value> parameters, CancellationToken cancellationToken)
    {
        if (explain.Target is not (SelectStatement or InsertStatement or UpdateStatement or DeleteStatement))
        {
            throw new SqlException(SqlState.FeatureNotSupported, "EXPLAIN supports SELECT, INSERT, UPDATE and DELETE");
        }

        var target = new SqlStatement(this, explain.Target, string.Empty, parameters.Select(p => SqlType.Unknown).ToArray());
        Bind(target, await CurrentCatalogAsync(cancellationToken));
        var lines = new List<string>();
        if (explain.Analyze)
        {
            await EnsureTransactionAsync(cancellationToken);
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            using var cursor = await RunStatementAsync(target, parameters.Count == target.ParameterTypes.Count ? parameters : [], cancellationToken);
            var rows = 0L;
            while (cursor.MoveNext())
            {
                rows++;
            }

            target.Bound!.Plan.Explain(lines, 0);
            lines.Add($"Execution Time: {System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds:F3} ms (rows: {rows})");
        }
        else
        {
            target.Bound!.Plan.Explain(lines, 0);
        }

        return RowsCursor([new ResultColumn("QUERY PLAN", SqlType.Text)], lines.Select(l => new[] { Value.FromText(l) }).ToArray(), "EXPLAIN");
    }
}
