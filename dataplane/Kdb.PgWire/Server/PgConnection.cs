using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Kdb.PgWire.Protocol;
using Kdb.PgWire.Session;
using Kdb.PgWire.Types;

namespace Kdb.PgWire.Server;

/// <summary>
/// One client connection: the protocol state machine from startup to Terminate. Runs on one task;
/// only <see cref="CancelFromRequest"/> is called from other threads.
/// </summary>
internal sealed partial class PgConnection : IAsyncDisposable
{
    private const int CopyFlushThreshold = 32 * 1024;

    // Scratch buffers shrink back to this when idle so an idle connection holds little memory.
    private const int IdleBufferSize = 1024;

    private readonly PgConnectionHandler _handler;
    private readonly PgServerOptions _options;
    private readonly IPgSessionFactory _sessions;
    private readonly IPgAuthenticator _authenticator;
    private readonly PgConnectionInfo _info;
    private readonly PipeWriterLike _writer;
    private readonly ScratchBuffer _message = new(256);
    private readonly ScratchBuffer _rowScratch = new(256);
    private readonly byte[] _header = new byte[5];
    private readonly Dictionary<string, IPgStatement> _statements = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Portal> _portals = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IPgStatement>.AlternateLookup<ReadOnlySpan<char>> _statementsByName;
    private PgFormat[]? _textFormats;
    private PgFormat[]? _binaryFormats;
    private PgParameters? _spareParameters;
    private Portal? _sparePortal;
    private readonly Lock _cancelLock = new();
    private readonly PgRowWriter _rows;
    private readonly PgExecutionContext _context;
    private PipeReader _reader;
    private byte _code;
    private bool _isTls;
    private bool _slotHeld;
    private int _processId;
    private int _secretKey;
    private IPgSession? _session;
    private bool _skipToSync;
    private bool _discardRequested;
    private bool _afterReady;
    private PgTransactionStatus _lastStatus = PgTransactionStatus.Idle;
    private bool _copyInActive;
    private bool _copyOutActive;
    private CancellationTokenSource? _statementCts;

    // Reused by every statement that ends uncanceled (TryReset), so running one allocates no token source.
    private CancellationTokenSource? _reusableCts;
    private CancellationTokenRegistration _reusableLink;
    private bool _canceledByRequest;
    private CancellationToken _connectionToken;

    public PgConnection(PgConnectionHandler handler, PgServerOptions options, IPgSessionFactory sessions, IPgAuthenticator authenticator, IDuplexPipe transport, PgConnectionInfo info)
    {
        _handler = handler;
        _options = options;
        _sessions = sessions;
        _authenticator = authenticator;
        _info = info;
        _reader = transport.Input;
        _writer = new PipeWriterLike(transport.Output);
        _isTls = info.IsTls;
        _rows = new PgRowWriter(_writer, _rowScratch);
        _context = new PgExecutionContext(this, _rows);
        _statementsByName = _statements.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    private IPgSession Session => _session!;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        _connectionToken = cancellationToken;
        try
        {
            if (!await StartupAsync().ConfigureAwait(false))
            {
                return;
            }

            await MainLoopAsync().ConfigureAwait(false);
        }
        catch (PgException e)
        {
            // Only FATAL errors reach here: report and close.
            await TrySendFatalAsync(e).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // server shutdown or client gone
        }
        catch (IOException)
        {
            // client gone
        }
        catch (InvalidOperationException) when (_connectionToken.IsCancellationRequested)
        {
            // pipe completed underneath us at shutdown
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            await TrySendFatalAsync(new PgException(PgSqlState.InternalError, "internal error: " + e.Message, severity: "FATAL")).ConfigureAwait(false);
        }
    }

    private async ValueTask TrySendFatalAsync(PgException e)
    {
        try
        {
            WriteError(e);
            await _writer.FlushAsync(_connectionToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or InvalidOperationException)
        {
            // the client is gone; nothing more to tell it
        }
    }

    private async Task MainLoopAsync()
    {
        while (true)
        {
            if (!await ReadMessageAsync(idle: true).ConfigureAwait(false))
            {
                return;
            }

            var code = (FrontendMessageCode)_code;
            switch (code)
            {
                case FrontendMessageCode.Query:
                    await HandleQueryAsync().ConfigureAwait(false);
                    break;
                case FrontendMessageCode.Parse or FrontendMessageCode.Bind or FrontendMessageCode.Describe
                    or FrontendMessageCode.Execute or FrontendMessageCode.Close:
                    if (_skipToSync)
                    {
                        break;
                    }

                    try
                    {
                        await HandleExtendedAsync(code).ConfigureAwait(false);
                    }
                    catch (Exception e) when (IsStatementError(e))
                    {
                        await ReportErrorAsync(ToPgException(e)).ConfigureAwait(false);
                        _skipToSync = true;
                    }

                    break;
                case FrontendMessageCode.Sync:
                    // A body on Sync is ignored rather than failing the batch it ends.
                    _skipToSync = false;
                    await SendReadyAsync().ConfigureAwait(false);
                    break;
                case FrontendMessageCode.Flush:
                    await FlushAsync().ConfigureAwait(false);
                    break;
                case FrontendMessageCode.Terminate:
                    return;
                case FrontendMessageCode.CopyData or FrontendMessageCode.CopyDone or FrontendMessageCode.CopyFail:
                    // PostgreSQL ignores these outside COPY: a failed COPY leaves the client still sending.
                    break;
                default:
                    throw new PgException(PgSqlState.ProtocolViolation, $"invalid frontend message type {_code}", severity: "FATAL");
            }
        }
    }

    /// <summary>
    /// Reads one typed message into <see cref="_message"/>. False on a clean or truncated end of input.
    /// A length word above the limit is FATAL before the body is buffered.
    /// </summary>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> ReadMessageAsync(bool idle, CancellationToken statementToken = default)
    {
        CancellationTokenSource? idleCts = null;
        CancellationToken token = statementToken.CanBeCanceled ? statementToken : _connectionToken;
        // Like PostgreSQL's idle_session_timeout: only outside a transaction block.
        if (idle && _afterReady && _lastStatus == PgTransactionStatus.Idle && _options.IdleSessionTimeout > TimeSpan.Zero)
        {
            idleCts = CancellationTokenSource.CreateLinkedTokenSource(_connectionToken);
            idleCts.CancelAfter(_options.IdleSessionTimeout);
            token = idleCts.Token;
        }

        try
        {
            while (true)
            {
                ReadResult r;
                try
                {
                    r = await _reader.ReadAsync(token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (idleCts is not null && idleCts.IsCancellationRequested && !_connectionToken.IsCancellationRequested)
                {
                    throw new PgException(PgSqlState.IdleSessionTimeout, "terminating connection due to idle-session timeout", severity: "FATAL");
                }

                ReadOnlySequence<byte> buffer = r.Buffer;
                if (buffer.Length >= 5)
                {
                    buffer.Slice(0, 5).CopyTo(_header);
                    int length = BinaryPrimitives.ReadInt32BigEndian(_header.AsSpan(1));
                    if (length < 4 || length - 4 > _options.MaxMessageSize)
                    {
                        _reader.AdvanceTo(buffer.Start);
                        throw new PgException(PgSqlState.ProtocolViolation, $"invalid message length {length}", severity: "FATAL");
                    }

                    if (buffer.Length >= 1L + length)
                    {
                        _code = _header[0];
                        _message.Reset();
                        int body = length - 4;
                        buffer.Slice(5, body).CopyTo(_message.GetSpan(body));
                        _message.Advance(body);
                        _reader.AdvanceTo(buffer.GetPosition(1L + length));
                        _afterReady = false;
                        return true;
                    }
                }

                _reader.AdvanceTo(buffer.Start, buffer.End);
                if (r.IsCompleted || r.IsCanceled)
                {
                    return false;
                }
            }
        }
        finally
        {
            idleCts?.Dispose();
        }
    }

    private async ValueTask HandleQueryAsync()
    {
        // A simple Query drops the unnamed statement and portal, as PostgreSQL does.
        DropStatement(string.Empty);
        DropPortal(string.Empty);
        try
        {
            string sql = ReadQueryText();
            IReadOnlyList<string> statements = Session.SplitStatements(sql);
            if (statements.Count == 0)
            {
                _writer.Write(new EmptyMessage(BackendMessageCode.EmptyQueryResponse));
            }

            for (int i = 0; i < statements.Count; i++)
            {
                await RunSimpleStatementAsync(statements[i]).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (IsStatementError(e))
        {
            await ReportErrorAsync(ToPgException(e)).ConfigureAwait(false);
        }

        await SendReadyAsync().ConfigureAwait(false);
    }

    private string ReadQueryText()
    {
        var reader = new MessageReader(_message.WrittenSpan);
        string sql = reader.ReadCString();
        reader.EnsureEnd();
        return sql;
    }

    private async ValueTask RunSimpleStatementAsync(string sql)
    {
        using IPgStatement statement = await Session.PrepareAsync(sql, ReadOnlyMemory<PgTypeOid>.Empty, _connectionToken).ConfigureAwait(false);
        if (statement.ParameterTypes.Length != 0)
        {
            throw new PgException("08P01", $"bind message supplies 0 parameters, but prepared statement \"\" requires {statement.ParameterTypes.Length}");
        }

        IReadOnlyList<PgColumn>? columns = statement.Columns;
        PgFormat[] formats = columns is null ? [] : new PgFormat[columns.Count];
        using IPgPortal portal = statement.Bind(PgParameters.Empty);
        if (columns is not null)
        {
            _writer.Write(new RowDescriptionMessage(columns, formats));
        }

        PgExecuteResult result = await ExecutePortalAsync(portal, columns, formats, 0, simple: true).ConfigureAwait(false);
        _writer.Write(new CommandCompleteMessage(result.CommandTag ?? string.Empty));
    }

    /// <summary>Runs a portal under a statement-scoped token (CancelRequest, statement timeout) and finishes COPY framing.</summary>
    private async ValueTask<PgExecuteResult> ExecutePortalAsync(IPgPortal portal, IReadOnlyList<PgColumn>? columns, PgFormat[] formats, int maxRows, bool simple)
    {
        CancellationTokenSource cts = RentStatementCts();
        lock (_cancelLock)
        {
            _statementCts = cts;
            _canceledByRequest = false;
        }

        try
        {
            _rows.Configure(columns ?? [], formats);
            _rows.CancellationToken = cts.Token;
            _context.MaxRows = maxRows;
            _context.CancellationToken = cts.Token;
            _context.IsSimpleQuery = simple;
            PgExecuteResult result = await portal.ExecuteAsync(_context).ConfigureAwait(false);
            if (_copyInActive)
            {
                await DrainCopyInAsync(cts.Token).ConfigureAwait(false);
            }

            if (_copyOutActive)
            {
                _copyOutActive = false;
                _writer.Write(new EmptyMessage(BackendMessageCode.CopyDone));
            }

            return result;
        }
        finally
        {
            _copyInActive = false;
            _copyOutActive = false;
            lock (_cancelLock)
            {
                _statementCts = null;
            }

            await ReturnStatementCtsAsync(cts).ConfigureAwait(false);
            ApplyDiscard();
        }
    }

    private CancellationTokenSource RentStatementCts()
    {
        CancellationTokenSource? cts = _reusableCts;
        if (cts is null)
        {
            cts = new CancellationTokenSource(Timeout.InfiniteTimeSpan, _options.TimeProvider);
            _reusableLink = _connectionToken.UnsafeRegister(static s => ((CancellationTokenSource)s!).Cancel(), cts);
            _reusableCts = cts;
        }

        if (_options.StatementTimeout > TimeSpan.Zero)
        {
            cts.CancelAfter(_options.StatementTimeout);
        }

        return cts;
    }

    /// <summary>Keeps the source for the next statement unless it was canceled (a canceled source cannot be reset).</summary>
    private async ValueTask ReturnStatementCtsAsync(CancellationTokenSource cts)
    {
        if (cts.TryReset())
        {
            return;
        }

        _reusableCts = null;
        await _reusableLink.DisposeAsync().ConfigureAwait(false);
        _reusableLink = default;
        cts.Dispose();
    }

    internal void CancelFromRequest(int secretKey)
    {
        if (secretKey != _secretKey)
        {
            return;
        }

        lock (_cancelLock)
        {
            if (_statementCts is { } cts)
            {
                _canceledByRequest = true;
                cts.Cancel();
            }
        }
    }

    private bool IsStatementError(Exception e) => e switch
    {
        PgException p => p.Severity != "FATAL",
        IOException => false,
        OperationCanceledException => !_connectionToken.IsCancellationRequested,
        OutOfMemoryException => false,
        _ => true,
    };

    private PgException ToPgException(Exception e)
    {
        switch (e)
        {
            case PgException p:
                return p;
            case OperationCanceledException:
                bool byRequest;
                lock (_cancelLock)
                {
                    byRequest = _canceledByRequest;
                }

                return new PgException(PgSqlState.QueryCanceled, byRequest ? "canceling statement due to user request" : "canceling statement due to statement timeout");
            default:
                return new PgException(PgSqlState.InternalError, "internal error: " + e.Message);
        }
    }

    private async ValueTask ReportErrorAsync(PgException e)
    {
        WriteError(e);
        if (_session is not null)
        {
            await _session.FailTransactionAsync().ConfigureAwait(false);
        }
    }

    private async ValueTask SendReadyAsync()
    {
        PgTransactionStatus status;
        try
        {
            status = await Session.SyncAsync(_connectionToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IsStatementError(e))
        {
            // A failed commit is rolled back: the session is no longer in a transaction.
            await ReportErrorAsync(ToPgException(e)).ConfigureAwait(false);
            status = PgTransactionStatus.Idle;
        }

        ApplyDiscard();
        _lastStatus = status;
        _writer.Write(new ReadyForQueryMessage(status));
        await FlushAsync().ConfigureAwait(false);
        _message.Shrink(IdleBufferSize);
        _rowScratch.Shrink(IdleBufferSize);
        _afterReady = true;
    }

    private async ValueTask FlushAsync()
    {
        FlushResult r = await _writer.FlushAsync(_connectionToken).ConfigureAwait(false);
        if (r.IsCompleted)
        {
            throw new IOException("client closed the connection");
        }
    }

    internal void WriteError(PgException e) =>
        _writer.Write(new ErrorOrNoticeMessage(true, e.Severity, e.SqlState, e.Message, e.Detail, e.Hint, e.Position));

    internal void WriteNotice(PgNotice n) =>
        _writer.Write(new ErrorOrNoticeMessage(false, n.Severity, n.SqlState, n.Message, n.Detail, n.Hint, 0));

    internal void WriteParameterStatus(string name, string value) => _writer.Write(new ParameterStatusMessage(name, value));

    internal void RequestDiscardAll() => _discardRequested = true;

    private void ApplyDiscard()
    {
        if (!_discardRequested)
        {
            return;
        }

        _discardRequested = false;
        foreach (IPgStatement s in _statements.Values)
        {
            s.Dispose();
        }

        foreach (Portal p in _portals.Values)
        {
            p.Dispose();
        }

        _statements.Clear();
        _portals.Clear();
    }

    public async ValueTask DisposeAsync()
    {
        if (_processId != 0)
        {
            _handler.Unregister(_processId);
        }

        if (_slotHeld)
        {
            _handler.ReleaseSlot();
        }

        foreach (IPgStatement s in _statements.Values)
        {
            s.Dispose();
        }

        foreach (Portal p in _portals.Values)
        {
            p.Dispose();
        }

        _statements.Clear();
        _portals.Clear();
        if (_session is not null)
        {
            try
            {
                await _session.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // The session's own failure at close must not keep the transport open.
            }
        }

        try
        {
            await _reader.CompleteAsync().ConfigureAwait(false);

            // Completing a stream-backed writer flushes what is buffered, which fails once the peer is gone.
            await _writer.Inner.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException or OperationCanceledException)
        {
            _writer.Inner.Complete(e);
        }

        if (_reusableCts is { } reusable)
        {
            await _reusableLink.DisposeAsync().ConfigureAwait(false);
            reusable.Dispose();
            _reusableCts = null;
        }

        _message.Dispose();
        _rowScratch.Dispose();
    }
}
