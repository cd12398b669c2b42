using Kdb.Sql.Catalog;
using Kdb.Sql.Execution;
using Kdb.Sql.Planning;
using Kdb.Sql.Syntax;
using Kdb.Sql.Transactions;
using Kdb.Sql.Types;

namespace Kdb.Sql.Sessions;

/// <summary>Transaction status as ReadyForQuery reports it.</summary>
public enum SqlTransactionStatus : byte
{
    Idle = (byte)'I',
    InTransaction = (byte)'T',
    Failed = (byte)'E',
}

/// <summary>A parsed statement, bound against the catalog it last ran with (rebound when the catalog changes).</summary>
public sealed class SqlStatement
{
    internal SqlStatement(SqlSession session, Statement ast, string text, SqlType[] declaredTypes)
    {
        Session = session;
        Ast = ast;
        Text = text;
        DeclaredTypes = declaredTypes;
        ParameterTypes = declaredTypes;
    }

    internal SqlSession Session { get; }

    internal Statement Ast { get; }

    internal SqlType[] DeclaredTypes { get; }

    internal BoundQuery? Bound { get; set; }

    internal CatalogData? BoundCatalog { get; set; }

    /// <summary>The search_path the plan resolved names with: a new one rebinds it.</summary>
    internal string[]? BoundSearchPath { get; set; }

    internal bool InUse { get; set; }

    /// <summary>Calls nextval or setval: its run is buffered, so that a sequence commit it needs can be awaited and the run repeated.</summary>
    internal bool UsesSequences { get; set; }

    /// <summary>The statement text.</summary>
    public string Text { get; }

    /// <summary>
    /// As last bound (Prepare binds), a SELECT whose work is one primary-key lookup with cheap expressions: a host may
    /// run it on a thread it must not hold for long. A catalog change can rebind it into something else at its next run.
    /// </summary>
    public bool IsPointRead { get; internal set; }

    /// <summary>As last bound, a one-row write of bounded cost (see <see cref="PlanShape.IsPointWrite"/>).</summary>
    public bool IsPointWrite { get; internal set; }

    /// <summary>
    /// Work bounded like a point read's: a point read, a point write (it only adds to the transaction; the commit is
    /// Sync's or COMMIT's) or BEGIN. A host may run it on a thread it must not hold for long; one that has to wait (a row
    /// lock, a snapshot) resumes wherever the wait ends, and the host moves it from there.
    /// </summary>
    public bool IsBounded => IsPointRead || IsPointWrite || Ast is TransactionStatement { Kind: TransactionKind.Begin };

    /// <summary>Resolved parameter types ($1 first).</summary>
    public IReadOnlyList<SqlType> ParameterTypes { get; internal set; }

    /// <summary>Result columns, or null when the statement returns no rows.</summary>
    public IReadOnlyList<ResultColumn>? Columns { get; internal set; }

    /// <summary>Runs the statement with <paramref name="parameters"/> (already of <see cref="ParameterTypes"/>).</summary>
    public ValueTask<SqlCursor> ExecuteAsync(IReadOnlyList<Value> parameters, CancellationToken cancellationToken = default) =>
        Session.ExecuteAsync(this, parameters, cancellationToken);
}

/// <summary>
/// One client's SQL session: prepares and runs statements in transactions that are SERIALIZABLE (a request
/// for a weaker level runs at SERIALIZABLE, as documented). Statements outside BEGIN form an implicit
/// transaction that <see cref="SyncAsync"/> commits (the wire protocol's Sync, or the end of a simple query).
/// Not thread-safe: one caller at a time, as one connection is.
/// </summary>
public sealed partial class SqlSession : IDisposable
{
    private readonly Dictionary<string, SqlStatement> _sqlPrepared = new(StringComparer.Ordinal);
    private readonly List<(string Name, int UndoMark, CatalogData? Catalog)> _savepoints = [];
    private readonly Codec.ByteWriter _keyWriter = new();
    private readonly Codec.ByteWriter _rowWriter = new(1024);
    private readonly Stack<SqlCursor> _freeCursors = new();
    private SqlTransaction? _txn;
    private readonly KeyLocker? _locker;
    private LockPendingException? _lockPending;

    // The last transaction object, released and kept for the next transaction (no allocation per implicit transaction).
    private SqlTransaction? _spareTxn;
    private CatalogData? _pendingCatalog;
    private bool _explicit;
    private bool _failed;
    private bool _readOnlyTxn;
    private long _txnTimestamp;
    private bool _disposed;

    internal SqlSession(SqlDatabase database, SessionState state)
    {
        Database = database;
        State = state;
        Sequences = new SequenceManager(this);
        if (database.Locks is { } locks)
        {
            _locker = new KeyLocker(locks, (ISqlLockingStore)database.Store);
        }
    }

    public SqlDatabase Database { get; }

    internal SessionState State { get; }

    internal SequenceManager Sequences { get; }

    /// <summary>The status for ReadyForQuery.</summary>
    public SqlTransactionStatus Status => _failed ? SqlTransactionStatus.Failed : _explicit ? SqlTransactionStatus.InTransaction : SqlTransactionStatus.Idle;

    /// <summary>The session's user.</summary>
    public string User => State.User;

    /// <summary>The session's role kind.</summary>
    public SqlRoleKind Role => State.Role;

    /// <summary>A session setting (SHOW), or null.</summary>
    public string? GetSetting(string name) => State.Get(name);

    /// <summary>Applies a startup parameter (application_name, client_encoding, DateStyle, TimeZone, or -c options).</summary>
    public void ApplyStartupParameter(string name, string value) => State.Set(name, value);

    /// <summary>statement_timeout in milliseconds (0: none).</summary>
    public int StatementTimeoutMs => State.StatementTimeoutMs;

    /// <summary>Splits a simple-query string into statement texts (syntax errors surface at prepare).</summary>
    public IReadOnlyList<string> SplitStatements(string sql) => SqlParser.SplitStatements(sql);

    /// <summary>
    /// Parses and binds one statement. <paramref name="parameterTypes"/> may leave types unspecified (0).
    /// Outside a transaction the catalog is read from a new snapshot, which this waits for: servers use <see cref="PrepareAsync"/>.
    /// </summary>
    public SqlStatement Prepare(string sql, IReadOnlyList<SqlTypeId>? parameterTypes = null)
    {
        var statement = Parse(sql, parameterTypes);
        Describe(statement, NeedsCatalog(statement) ? CurrentCatalog() : null);
        return statement;
    }

    /// <summary>Parses and binds one statement; reading the catalog outside a transaction never blocks a thread.</summary>
    public async ValueTask<SqlStatement> PrepareAsync(string sql, IReadOnlyList<SqlTypeId>? parameterTypes = null, CancellationToken cancellationToken = default)
    {
        var statement = Parse(sql, parameterTypes);
        await DescribeAsync(statement, cancellationToken);
        return statement;
    }

    private SqlStatement Parse(string sql, IReadOnlyList<SqlTypeId>? parameterTypes)
    {
        var ast = SqlParser.Parse(sql);
        var declared = parameterTypes is null ? [] : parameterTypes.Select(t => t == 0 ? SqlType.Unknown : new SqlType(t)).ToArray();
        return new SqlStatement(this, ast, sql, declared);
    }

    private static bool NeedsCatalog(SqlStatement statement) => statement.Ast is SelectStatement or InsertStatement or UpdateStatement or DeleteStatement;

    private ValueTask DescribeAsync(SqlStatement statement, CancellationToken cancellationToken)
    {
        if (!NeedsCatalog(statement) || _pendingCatalog is not null || _txn is not null)
        {
            Describe(statement, NeedsCatalog(statement) ? CurrentCatalog() : null);
            return ValueTask.CompletedTask;
        }

        return DescribeWithSnapshotAsync(statement, cancellationToken);
    }

    private async ValueTask DescribeWithSnapshotAsync(SqlStatement statement, CancellationToken cancellationToken) =>
        Describe(statement, await CurrentCatalogAsync(cancellationToken));

    /// <summary>Binds (or rebinds) a statement to learn its parameter and result types; <paramref name="catalog"/> is set for queries.</summary>
    private void Describe(SqlStatement statement, CatalogData? catalog)
    {
        switch (statement.Ast)
        {
            case SelectStatement or InsertStatement or UpdateStatement or DeleteStatement:
                Bind(statement, catalog!);
                break;
            case ExplainStatement:
                statement.Columns = [new ResultColumn("QUERY PLAN", SqlType.Text)];
                break;
            case ShowStatement show:
                statement.Columns = show.Name == "all"
                    ? [new ResultColumn("name", SqlType.Text), new ResultColumn("setting", SqlType.Text), new ResultColumn("description", SqlType.Text)]
                    : [new ResultColumn(show.Name, SqlType.Text)];
                break;
            case ExecuteStatement execute:
                if (_sqlPrepared.TryGetValue(execute.Name, out var target))
                {
                    statement.Columns = target.Columns;
                }

                break;
        }
    }

    private void Bind(SqlStatement statement, CatalogData catalog)
    {
        var context = new BindContext(catalog, Database.Tenant, State, statement.DeclaredTypes)
        {
            ReadColumns = statement.Ast is SelectStatement ? ColumnUsage.Collect(statement.Ast) : null,
        };
        var binder = new Binder(context);
        var bound = statement.Ast switch
        {
            SelectStatement select => binder.BindQuery(select, null),
            InsertStatement insert => binder.BindInsert(insert),
            UpdateStatement update => binder.BindUpdate(update),
            DeleteStatement delete => binder.BindDelete(delete),
            _ => throw new SqlException(SqlState.InternalError, "statement cannot be bound"),
        };
        statement.Bound = bound;
        statement.UsesSequences = context.UsesSequences;
        statement.IsPointRead = statement.Ast is SelectStatement && !context.UsesSequences && PlanShape.IsPointRead(bound.Plan);
        statement.IsPointWrite = statement.Ast is InsertStatement or UpdateStatement or DeleteStatement && !context.UsesSequences && PlanShape.IsPointWrite(bound.Plan);
        statement.BoundCatalog = catalog;
        statement.BoundSearchPath = State.SearchPath;
        statement.ParameterTypes = context.ParameterTypes();
        statement.Columns = statement.Ast is SelectStatement || bound.Columns.Count > 0 ? bound.Columns : null;
    }

    /// <summary>The catalog this session sees now: its own uncommitted DDL, else its transaction's snapshot, else the latest.</summary>
    internal CatalogData CurrentCatalog()
    {
        if (_pendingCatalog is not null)
        {
            return _pendingCatalog;
        }

        if (_txn is not null)
        {
            return Database.CatalogStore.Load(_txn, null);
        }

        // Only the synchronous Prepare gets here (every statement path reads the catalog in a transaction or through
        // CurrentCatalogAsync): it is for in-process callers, whose store answers at once.
        var opening = Database.Store.OpenSnapshotAsync(CancellationToken.None);
        using var snapshot = opening.IsCompletedSuccessfully ? opening.Result : opening.AsTask().GetAwaiter().GetResult();
        return LoadCatalog(snapshot);
    }

    /// <summary><see cref="CurrentCatalog"/> without blocking: outside a transaction it awaits a new snapshot.</summary>
    internal async ValueTask<CatalogData> CurrentCatalogAsync(CancellationToken cancellationToken)
    {
        if (_pendingCatalog is not null || _txn is not null)
        {
            return CurrentCatalog();
        }

        using var snapshot = await Database.Store.OpenSnapshotAsync(cancellationToken);
        return LoadCatalog(snapshot);
    }

    private CatalogData LoadCatalog(Kdb.Storage.IKvSnapshot snapshot)
    {
        using var temporary = new SqlTransaction(Database.Tenant, new BorrowedSnapshot(snapshot));
        return Database.CatalogStore.Load(temporary, null);
    }

    private async ValueTask EnsureTransactionAsync(CancellationToken cancellationToken)
    {
        if (_txn is null)
        {
            BeginTransaction(await Database.Store.OpenSnapshotAsync(cancellationToken));
        }
    }

    private void BeginTransaction(Kdb.Storage.IKvSnapshot snapshot)
    {
        if (_spareTxn is { } spare)
        {
            _spareTxn = null;
            spare.Reset(snapshot);
            _txn = spare;
        }
        else
        {
            _txn = new SqlTransaction(Database.Tenant, snapshot);
        }

        _txn.Locker = _locker;
        _txnTimestamp = DateTimeText.FromDateTime(DateTime.UtcNow);
        _readOnlyTxn = State.Get("default_transaction_read_only") == "on";
    }

    internal ValueTask<SqlCursor> ExecuteAsync(SqlStatement statement, IReadOnlyList<Value> parameters, CancellationToken cancellationToken)
    {
        // The common case runs synchronously without an async state machine: a query whose snapshot is at hand.
        if (!_failed && statement.Ast is SelectStatement or InsertStatement or UpdateStatement or DeleteStatement)
        {
            try
            {
                if (_txn is null)
                {
                    var opening = Database.Store.OpenSnapshotAsync(cancellationToken);
                    if (!opening.IsCompletedSuccessfully)
                    {
                        return ExecuteSlowAsync(opening, statement, parameters, cancellationToken);
                    }

                    BeginTransaction(opening.Result);
                }

                return RunStatementAsync(statement, parameters, cancellationToken);
            }
            catch (Exception e)
            {
                return ValueTask.FromException<SqlCursor>(e);
            }
        }

        return ExecuteAnyAsync(statement, parameters, cancellationToken);
    }

    private async ValueTask<SqlCursor> ExecuteSlowAsync(ValueTask<Kdb.Storage.IKvSnapshot> opening, SqlStatement statement, IReadOnlyList<Value> parameters, CancellationToken cancellationToken)
    {
        var snapshot = await opening;
        if (_txn is null)
        {
            BeginTransaction(snapshot);
        }
        else
        {
            snapshot.Dispose();
        }

        return await RunStatementAsync(statement, parameters, cancellationToken);
    }

    private async ValueTask<SqlCursor> ExecuteAnyAsync(SqlStatement statement, IReadOnlyList<Value> parameters, CancellationToken cancellationToken)
    {
        if (_failed && statement.Ast is not TransactionStatement { Kind: TransactionKind.Rollback or TransactionKind.Commit or TransactionKind.RollbackToSavepoint })
        {
            throw new SqlException(SqlState.InFailedTransaction, "current transaction is aborted, commands ignored until end of transaction block");
        }

        switch (statement.Ast)
        {
            case SelectStatement or InsertStatement or UpdateStatement or DeleteStatement:
                await EnsureTransactionAsync(cancellationToken);
                return await RunStatementAsync(statement, parameters, cancellationToken);
            case TransactionStatement transaction:
                return await TransactionControlAsync(transaction, cancellationToken);
            default:
                return await RunUtilityAsync(statement, parameters, cancellationToken);
        }
    }

    /// <summary>
    /// Runs a query. A plain SELECT streams; DML (whose work happens at open) and a SELECT calling nextval or
    /// setval (run to the end into a buffer) are attempts that can be undone: one that needs a sequence commit
    /// throws, is rolled back to its undo mark, awaits the commit and runs again (see <see cref="SequenceManager"/>).
    /// </summary>
    private ValueTask<SqlCursor> RunStatementAsync(SqlStatement statement, IReadOnlyList<Value> parameters, CancellationToken cancellationToken)
    {
        if (statement.Ast is SelectStatement && !statement.UsesSequences)
        {
            return ValueTask.FromResult(RunQuery(statement, parameters, cancellationToken));
        }

        var mark = new AttemptMark(_txn!.UndoMark, _txn.CurrentReadMark, _txn.ActiveScans);
        if (TryAttempt(statement, parameters, mark, cancellationToken) is { } cursor)
        {
            return ValueTask.FromResult(cursor);
        }

        return RerunAsync(statement, parameters, mark, cancellationToken);
    }

    private async ValueTask<SqlCursor> RerunAsync(SqlStatement statement, IReadOnlyList<Value> parameters, AttemptMark mark, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (_lockPending is { } lockPending)
            {
                _lockPending = null;
                await WaitAndRefreshAsync(lockPending, mark, cancellationToken);
            }
            else
            {
                await Sequences.CompletePendingAsync();
            }

            if (cancellationToken.IsCancellationRequested)
            {
                throw Canceled(null, this);
            }

            if (TryAttempt(statement, parameters, mark, cancellationToken) is { } cursor)
            {
                return cursor;
            }
        }
    }

    /// <summary>
    /// One attempt; null when it needs a sequence commit (its writes are undone, the commit left pending) or a row lock
    /// or read refresh (its writes and reads are undone, <see cref="_lockPending"/> says what to wait for).
    /// </summary>
    private SqlCursor? TryAttempt(SqlStatement statement, IReadOnlyList<Value> parameters, AttemptMark mark, CancellationToken cancellationToken)
    {
        Sequences.BeginAttempt();
        var pending = false;
        var txn = _txn!;
        txn.LockWrites = txn.Locker is not null && !statement.UsesSequences;
        try
        {
            var cursor = RunQuery(statement, parameters, cancellationToken);
            return statement.Ast is SelectStatement ? Buffer(cursor) : cursor;
        }
        catch (SequencePendingException)
        {
            pending = true;
            txn.RollbackTo(mark.Undo);
            return null;
        }
        catch (LockPendingException e)
        {
            pending = true;
            txn.RollbackTo(mark.Undo);
            txn.DropReadsAfter(mark.Reads);
            _lockPending = e;
            return null;
        }
        finally
        {
            txn.LockWrites = false;
            Sequences.EndAttempt(statementDone: !pending);
        }
    }

    /// <summary>Reads a SELECT to its end (an exception leaves nothing behind) and returns a cursor over its rows.</summary>
    private SqlCursor Buffer(SqlCursor cursor)
    {
        var rows = new List<Value[]>();
        IReadOnlyList<ResultColumn>? columns;
        using (cursor)
        {
            columns = cursor.Columns;
            while (cursor.MoveNext())
            {
                rows.Add((Value[])cursor.Current.Clone());
            }
        }

        var ctx = NewContext(CurrentCatalog(), [], CancellationToken.None).Context;
        var plan = new GeneratorOp("SELECT", columns?.Count ?? 0, _ => rows);
        plan.Open(ctx);
        return new SqlCursor(columns, plan, ctx, count => CommandTags.Format("SELECT", count), this, null);
    }

    private SqlCursor RunQuery(SqlStatement statement, IReadOnlyList<Value> parameters, CancellationToken cancellationToken)
    {
        var catalog = CurrentCatalog();
        if (statement.Bound is null || !ReferenceEquals(statement.BoundCatalog, catalog) || !ReferenceEquals(statement.BoundSearchPath, State.SearchPath) || statement.InUse)
        {
            Bind(statement, catalog);
        }

        if (statement.Ast is not SelectStatement && _readOnlyTxn)
        {
            throw new SqlException(SqlState.ReadOnlyTransaction, $"cannot execute {StatementVerb(statement.Ast)} in a read-only transaction");
        }

        if (parameters.Count != statement.ParameterTypes.Count)
        {
            throw new SqlException(SqlState.ProtocolViolation, $"bind message supplies {parameters.Count} parameters, but prepared statement requires {statement.ParameterTypes.Count}");
        }

        var cursor = _freeCursors.TryPop(out var free) ? free : new SqlCursor(this, NewContext(catalog, [], CancellationToken.None).Context);
        var ctx = cursor.Context!;
        var timeout = StatementTimeout(cancellationToken, out var token);
        ctx.ResetStatement();
        ctx.Transaction = _txn!;
        ctx.TransactionEpoch = _txn!.Epoch;
        ctx.Catalog = catalog;
        ctx.CancellationToken = token;
        ctx.TransactionTimestamp = _txnTimestamp;
        ctx.StatementTimestamp = DateTimeText.FromDateTime(DateTime.UtcNow);
        ctx.MemoryLimit = Database.Options.StatementMemoryBytes;
        var values = ctx.Parameters.Length == parameters.Count ? ctx.Parameters : new Value[parameters.Count];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = parameters[i];
        }

        ctx.Parameters = values;
        var plan = statement.Bound!.Plan;
        statement.InUse = true;
        try
        {
            plan.Open(ctx);
        }
        catch (Exception e)
        {
            statement.InUse = false;
            timeout?.Dispose();
            if (e is LockPendingException)
            {
                // Closing ends the attempt's scans now, before its reads are dropped and the snapshot may move.
                plan.Close(ctx);
            }

            ReturnCursor(cursor);
            if (e is OperationCanceledException && timeout is not null && token.IsCancellationRequested)
            {
                throw Canceled(timeout, this);
            }

            throw;
        }

        cursor.Start(statement, plan, StatementVerb(statement.Ast), timeout);
        return cursor;
    }

    /// <summary>Takes back a disposed query cursor for a later statement (a few are kept: most clients run one at a time).</summary>
    internal void ReturnCursor(SqlCursor cursor)
    {
        if (_freeCursors.Count < 4)
        {
            _freeCursors.Push(cursor);
        }
    }

    /// <summary>A source that cancels after statement_timeout (null when there is none); <paramref name="token"/> is what the statement watches.</summary>
    private CancellationTokenSource? StatementTimeout(CancellationToken cancellationToken, out CancellationToken token)
    {
        token = cancellationToken;
        var timeoutMs = State.StatementTimeoutMs;
        if (timeoutMs <= 0)
        {
            return null;
        }

        var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(timeoutMs);
        token = timeout.Token;
        return timeout;
    }

    private static string StatementVerb(Statement statement) => statement switch
    {
        InsertStatement => "INSERT",
        UpdateStatement => "UPDATE",
        DeleteStatement => "DELETE",
        _ => "SELECT",
    };

    private (ExecContext Context, CancellationTokenSource? Timeout) NewContext(CatalogData catalog, IReadOnlyList<Value> parameters, CancellationToken cancellationToken)
    {
        var timeout = StatementTimeout(cancellationToken, out var token);
        var values = new Value[parameters.Count];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = parameters[i];
        }

        var ctx = new ExecContext
        {
            Transaction = _txn!,
            TransactionEpoch = _txn?.Epoch ?? 0,
            Session = State,
            Catalog = catalog,
            Sequences = Sequences,
            Parameters = values,
            CancellationToken = token,
            TransactionTimestamp = _txnTimestamp,
            StatementTimestamp = DateTimeText.FromDateTime(DateTime.UtcNow),
            MemoryLimit = Database.Options.StatementMemoryBytes,
            KeyWriter = _keyWriter,
            RowWriter = _rowWriter,
        };
        return (ctx, timeout);
    }

    internal static SqlException Canceled(CancellationTokenSource? timeout, SqlSession? session) =>
        timeout is not null && timeout.IsCancellationRequested
            ? new SqlException(SqlState.QueryCanceled, "canceling statement due to statement timeout")
            : new SqlException(SqlState.QueryCanceled, "canceling statement due to user request");

    /// <summary>True when <see cref="SyncAsync"/> would commit writes (an implicit transaction that wrote), not just end a read.</summary>
    public bool SyncCommits => !_explicit && _txn is not null && !_failed && _txn.HasWrites;

    /// <summary>
    /// Called at Sync and at the end of a simple query: an implicit transaction commits (throws 40001 when it
    /// conflicts). Returns the status for ReadyForQuery.
    /// </summary>
    public ValueTask<SqlTransactionStatus> SyncAsync(CancellationToken cancellationToken = default)
    {
        if (_explicit || _txn is null)
        {
            return ValueTask.FromResult(Status);
        }

        if (_failed || !_txn.HasWrites)
        {
            // Nothing to commit (a read-only implicit transaction): end it without an async state machine.
            EndTransaction();
            return ValueTask.FromResult(Status);
        }

        return SyncWithCommitAsync(cancellationToken);
    }

    private async ValueTask<SqlTransactionStatus> SyncWithCommitAsync(CancellationToken cancellationToken)
    {
        if (!_explicit && _txn is not null)
        {
            if (_failed)
            {
                Rollback();
            }
            else
            {
                await CommitAsync(cancellationToken);
            }
        }

        return Status;
    }

    /// <summary>After an error: an explicit transaction becomes failed; an implicit one is rolled back. Never throws.</summary>
    public void Fail()
    {
        if (_explicit)
        {
            _failed = true;
        }
        else
        {
            Rollback();
        }
    }

    private async ValueTask CommitAsync(CancellationToken cancellationToken)
    {
        var txn = _txn;
        try
        {
            if (txn is not null && txn.HasWrites)
            {
                // Every writer point-reads the catalog record: DDL conflicts with concurrent writers, so a
                // transaction never commits rows encoded under a table definition that changed meanwhile.
                txn.RecordPointRead(Database.CatalogStore.CatalogKey);
                var record = txn.BuildCommitRecord();
                var outcome = await Database.Store.CommitAsync(record, cancellationToken);
                if (!outcome.Validation.IsValid)
                {
                    throw new SqlException(outcome.Validation.SqlState, outcome.Validation.Message, hint: "The transaction might succeed if retried.");
                }
            }
        }
        finally
        {
            EndTransaction();
        }
    }

    private void Rollback() => EndTransaction();

    private void EndTransaction()
    {
        if (_txn is { } txn)
        {
            txn.Release();
            _spareTxn = txn;
        }

        _txn = null;
        _pendingCatalog = null;
        _explicit = false;
        _failed = false;
        _readOnlyTxn = false;
        _savepoints.Clear();
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _locker?.Close();
        EndTransaction();
        Database.SessionClosed();
    }

    /// <summary>A snapshot owned by someone else: disposing the transaction must not release it twice.</summary>
    private sealed class BorrowedSnapshot(Kdb.Storage.IKvSnapshot inner) : Kdb.Storage.IKvSnapshot
    {
        public ulong Version => inner.Version;

        public Kdb.Storage.GetResult Get(ReadOnlySpan<byte> key) => inner.Get(key);

        public bool TryGetLent(ReadOnlySpan<byte> key, out ReadOnlySpan<byte> value, out ulong version) => inner.TryGetLent(key, out value, out version);

        public IEnumerable<Kdb.Storage.KvEntry> Scan(byte[] start, byte[]? end, int limit = 0, bool reverse = false) => inner.Scan(start, end, limit, reverse);

        public ulong NewestVersion(ReadOnlySpan<byte> key) => inner.NewestVersion(key);

        public ulong NewestVersionInRange(byte[] start, byte[]? end) => inner.NewestVersionInRange(start, end);

        public IReadOnlyList<Kdb.Storage.KvRangeDelete> RangeDeletesSince(ulong since, byte[] start, byte[]? end) => inner.RangeDeletesSince(since, start, end);

        public IEnumerable<Kdb.Storage.KvChange> ChangesSince(ulong since, byte[] start, byte[]? end) => inner.ChangesSince(since, start, end);

        public void Dispose()
        {
        }
    }
}
