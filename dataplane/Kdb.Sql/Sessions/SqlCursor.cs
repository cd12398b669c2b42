using Kdb.Sql.Catalog;
using Kdb.Sql.Execution;
using Kdb.Sql.Planning;
using Kdb.Sql.Types;

namespace Kdb.Sql.Sessions;

/// <summary>A notice for the client (NoticeResponse).</summary>
public sealed record SqlNotice(string Severity, string SqlState, string Message);

/// <summary>
/// The result of executing one statement: rows stream through <see cref="MoveNext"/>; once it returns false
/// (or at once for statements without rows) <see cref="CommandTag"/> holds the completion tag.
/// Do not touch a cursor after disposing it: the session reuses disposed query cursors for later statements.
/// </summary>
public sealed class SqlCursor : IDisposable
{
    private Operator? _plan;
    private ExecContext? _ctx;
    private Func<long, string>? _tag;
    private string? _verb;
    private SqlStatement? _statement;
    private readonly SqlSession? _session;
    private CancellationTokenSource? _timeout;
    private long _rows;
    private bool _done;
    private bool _disposed;

    internal SqlCursor(IReadOnlyList<ResultColumn>? columns, Operator? plan, ExecContext? ctx, Func<long, string> tag, SqlSession? session, CancellationTokenSource? timeout)
    {
        Columns = columns;
        _plan = plan;
        _ctx = ctx;
        _tag = tag;
        _session = session;
        _timeout = timeout;
        if (plan is null)
        {
            Finish();
        }
    }

    /// <summary>A reusable cursor for <paramref name="session"/>'s queries (see <see cref="Start"/>).</summary>
    internal SqlCursor(SqlSession session, ExecContext ctx)
    {
        _session = session;
        _ctx = ctx;
        _done = true;
        _disposed = true;
    }

    /// <summary>The context this reusable cursor runs its statements with.</summary>
    internal ExecContext? Context => _ctx;

    /// <summary>Starts a pooled cursor on an opened plan of <paramref name="statement"/>; the tag is "VERB count".</summary>
    internal void Start(SqlStatement statement, Operator plan, string verb, CancellationTokenSource? timeout)
    {
        Columns = statement.Columns;
        _statement = statement;
        _plan = plan;
        _verb = verb;
        _timeout = timeout;
        _rows = 0;
        _done = false;
        _disposed = false;
        Current = [];
        CommandTag = null;
        Notices = [];
        ParameterChanges = [];
    }

    internal static SqlCursor Completed(string tag, IReadOnlyList<SqlNotice>? notices = null, IReadOnlyList<KeyValuePair<string, string>>? parameters = null)
    {
        var cursor = new SqlCursor(null, null, null, _ => tag, null, null);
        cursor.Notices = notices ?? [];
        cursor.ParameterChanges = parameters ?? [];
        return cursor;
    }

    /// <summary>Result columns, or null for a statement that returns no rows.</summary>
    public IReadOnlyList<ResultColumn>? Columns { get; private set; }

    /// <summary>The current row (valid until the next call to <see cref="MoveNext"/>).</summary>
    public Value[] Current { get; private set; } = [];

    /// <summary>The CommandComplete tag (SELECT 3, INSERT 0 1, CREATE TABLE...), set when the statement finished.</summary>
    public string? CommandTag { get; private set; }

    /// <summary>Notices raised by the statement.</summary>
    public IReadOnlyList<SqlNotice> Notices { get; internal set; } = [];

    /// <summary>Session parameters the statement changed that clients track (application_name, TimeZone...).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> ParameterChanges { get; internal set; } = [];

    /// <summary>
    /// A value in PostgreSQL's text output form. Unlike <see cref="ValueText.Format"/> it prints regclass, regtype
    /// and regnamespace values as names, resolved in the catalog this statement ran on.
    /// </summary>
    public string FormatText(in Value value, SqlType type) =>
        RegValues.PrintsAsName(type.Id) && _ctx is { } ctx ? RegValues.Name(ctx.Catalog, ctx.Session, value, type.Id) : ValueText.Format(value, type);

    /// <summary>Advances to the next row. Errors surface as <see cref="SqlException"/> (the session then needs <see cref="SqlSession.Fail"/>).</summary>
    public bool MoveNext()
    {
        if (_done)
        {
            return false;
        }

        var ctx = _ctx!;
        if (ctx.Transaction is { } transaction && transaction.Epoch != ctx.TransactionEpoch)
        {
            throw new SqlException(SqlState.InvalidCursorName, "portal does not exist: the transaction it ran in has ended");
        }

        try
        {
            if (_plan!.Next(ctx))
            {
                _rows++;
                Current = _plan.Row;
                return true;
            }
        }
        catch (OperationCanceledException) when (_timeout?.IsCancellationRequested == true && ctx.CancellationToken.IsCancellationRequested)
        {
            throw SqlSession.Canceled(_timeout, _session);
        }

        Finish();
        return false;
    }

    private void Finish()
    {
        if (_done)
        {
            return;
        }

        _done = true;
        var count = _plan is DmlOp dml ? dml.AffectedRows : _rows;
        CommandTag = _verb is not null ? CommandTags.Format(_verb, count) : _tag!(count);
        if (_plan is not null)
        {
            _plan.Close(_ctx!);
            _ctx!.CloseRegistered();
        }

        Release();
    }

    /// <summary>Lets the statement's plan run again (its operators hold this run's state until now).</summary>
    private void Release()
    {
        if (_statement is { } statement)
        {
            // A statement rebinds when run while in use: only the run of its current plan frees it.
            _statement = null;
            if (ReferenceEquals(statement.Bound?.Plan, _plan))
            {
                statement.InUse = false;
            }
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (!_done)
        {
            _done = true;
            try
            {
                if (_plan is not null)
                {
                    _plan.Close(_ctx!);
                    _ctx!.CloseRegistered();
                }
            }
            catch (SqlException)
            {
                // Closing a half-read cursor never fails the session.
            }
        }

        Release();
        _timeout?.Dispose();
        _timeout = null;
        if (_verb is not null)
        {
            _plan = null;
            Current = [];
            _session!.ReturnCursor(this);
        }
    }
}

/// <summary>CommandComplete tags of row-counting statements, cached for small counts so a point query allocates none.</summary>
internal static class CommandTags
{
    private const int Cached = 64;
    private static readonly string[][] Tags = [new string[Cached], new string[Cached], new string[Cached], new string[Cached]];

    public static string Format(string verb, long count)
    {
        var kind = verb switch
        {
            "SELECT" => 0,
            "INSERT" => 1,
            "UPDATE" => 2,
            "DELETE" => 3,
            _ => -1,
        };
        if (kind < 0 || count >= Cached)
        {
            return Text(verb, count);
        }

        ref var slot = ref Tags[kind][count];
        return slot ??= Text(verb, count);
    }

    private static string Text(string verb, long count) => verb == "INSERT" ? $"INSERT 0 {count}" : $"{verb} {count}";
}
