using Kdb.Sql.Execution;
using Kdb.Sql.Planning;
using Kdb.Sql.Types;

namespace Kdb.Sql.Sessions;

/// <summary>A notice for the client (NoticeResponse).</summary>
public sealed record SqlNotice(string Severity, string SqlState, string Message);

/// <summary>
/// The result of executing one statement: rows stream through <see cref="MoveNext"/>; once it returns false
/// (or at once for statements without rows) <see cref="CommandTag"/> holds the completion tag.
/// </summary>
public sealed class SqlCursor : IDisposable
{
    private readonly Operator? _plan;
    private readonly ExecContext? _ctx;
    private readonly Func<long, string>? _tag;
    private readonly Action? _onDone;
    private readonly SqlSession? _session;
    private readonly CancellationTokenSource? _timeout;
    private long _rows;
    private bool _done;

    internal SqlCursor(IReadOnlyList<ResultColumn>? columns, Operator? plan, ExecContext? ctx, Func<long, string> tag, SqlSession? session, CancellationTokenSource? timeout, Action? onDone = null)
    {
        Columns = columns;
        _plan = plan;
        _ctx = ctx;
        _tag = tag;
        _session = session;
        _timeout = timeout;
        _onDone = onDone;
        if (plan is null)
        {
            Finish();
        }
    }

    internal static SqlCursor Completed(string tag, IReadOnlyList<SqlNotice>? notices = null, IReadOnlyList<KeyValuePair<string, string>>? parameters = null)
    {
        var cursor = new SqlCursor(null, null, null, _ => tag, null, null);
        cursor.Notices = notices ?? [];
        cursor.ParameterChanges = parameters ?? [];
        return cursor;
    }

    /// <summary>Result columns, or null for a statement that returns no rows.</summary>
    public IReadOnlyList<ResultColumn>? Columns { get; }

    /// <summary>The current row (valid until the next call to <see cref="MoveNext"/>).</summary>
    public Value[] Current { get; private set; } = [];

    /// <summary>The CommandComplete tag (SELECT 3, INSERT 0 1, CREATE TABLE...), set when the statement finished.</summary>
    public string? CommandTag { get; private set; }

    /// <summary>Notices raised by the statement.</summary>
    public IReadOnlyList<SqlNotice> Notices { get; internal set; } = [];

    /// <summary>Session parameters the statement changed that clients track (application_name, TimeZone...).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> ParameterChanges { get; internal set; } = [];

    /// <summary>Advances to the next row. Errors surface as <see cref="SqlException"/> (the session then needs <see cref="SqlSession.Fail"/>).</summary>
    public bool MoveNext()
    {
        if (_done)
        {
            return false;
        }

        try
        {
            if (_plan!.Next(_ctx!))
            {
                _rows++;
                Current = _plan.Row;
                return true;
            }
        }
        catch (OperationCanceledException) when (_timeout?.IsCancellationRequested == true && _ctx!.CancellationToken.IsCancellationRequested)
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
        CommandTag = _tag!(count);
        _plan?.Close(_ctx!);
        _onDone?.Invoke();
    }

    public void Dispose()
    {
        if (!_done)
        {
            _done = true;
            try
            {
                _plan?.Close(_ctx!);
            }
            catch (SqlException)
            {
                // Closing a half-read cursor never fails the session.
            }
        }

        _timeout?.Dispose();
    }
}
