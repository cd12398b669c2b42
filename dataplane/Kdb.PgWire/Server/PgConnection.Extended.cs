using System.Buffers;
using Kdb.PgWire.Protocol;
using Kdb.PgWire.Session;
using Kdb.PgWire.Types;

namespace Kdb.PgWire.Server;

internal sealed partial class PgConnection
{
    private ValueTask HandleExtendedAsync(FrontendMessageCode code) => code switch
    {
        FrontendMessageCode.Parse => HandleParseAsync(),
        FrontendMessageCode.Bind => HandleBind(),
        FrontendMessageCode.Describe => HandleDescribe(),
        FrontendMessageCode.Execute => HandleExecuteAsync(),
        _ => HandleClose(),
    };

    private async ValueTask HandleParseAsync()
    {
        var reader = new MessageReader(_message.WrittenSpan);
        string name = reader.ReadCString();
        string sql = reader.ReadCString();
        short count = reader.ReadInt16();
        if (count < 0)
        {
            throw new PgException(PgSqlState.ProtocolViolation, "invalid number of parameter types");
        }

        var types = new PgTypeOid[count];
        for (int i = 0; i < count; i++)
        {
            types[i] = (PgTypeOid)reader.ReadUInt32();
        }

        reader.EnsureEnd();
        if (name.Length > 0 && _statements.ContainsKey(name))
        {
            throw new PgException(PgSqlState.DuplicatePreparedStatement, $"prepared statement \"{name}\" already exists");
        }

        IPgStatement statement = await Session.PrepareAsync(sql, types, _connectionToken).ConfigureAwait(false);
        DropStatement(name);
        _statements[name] = statement;
        _writer.Write(new EmptyMessage(BackendMessageCode.ParseComplete));
    }

    private ValueTask HandleBind()
    {
        var reader = new MessageReader(_message.WrittenSpan);
        string portalName = reader.ReadCString();
        IPgStatement? statement = FindStatement(ref reader, out string? statementName);
        int formatCount = reader.ReadInt16();
        if (formatCount < 0)
        {
            throw new PgException(PgSqlState.ProtocolViolation, "invalid number of parameter formats");
        }

        Span<PgFormat> paramFormats = formatCount <= 64 ? stackalloc PgFormat[formatCount] : new PgFormat[formatCount];
        for (int i = 0; i < formatCount; i++)
        {
            paramFormats[i] = ReadFormat(ref reader);
        }

        int paramCount = reader.ReadInt16();
        if (statement is null)
        {
            throw UnknownStatement(statementName!);
        }

        ReadOnlySpan<PgTypeOid> types = statement.ParameterTypes.Span;
        if (paramCount != types.Length)
        {
            throw new PgException(PgSqlState.ProtocolViolation, $"bind message supplies {paramCount} parameters, but prepared statement \"{NameOf(statement)}\" requires {types.Length}");
        }

        if (formatCount > 1 && formatCount != paramCount)
        {
            throw new PgException(PgSqlState.ProtocolViolation, $"bind message has {formatCount} parameter formats but {paramCount} parameters");
        }

        if (portalName.Length > 0 && _portals.ContainsKey(portalName))
        {
            throw new PgException(PgSqlState.DuplicateCursor, $"cursor \"{portalName}\" already exists");
        }

        PgParameters parameters = ReadParameters(ref reader, paramCount, types, paramFormats);
        try
        {
            IReadOnlyList<PgColumn>? columns = statement.Columns;
            int resultFormatCount = reader.ReadInt16();
            int columnCount = columns?.Count ?? 0;
            if (resultFormatCount < 0 || (resultFormatCount > 1 && resultFormatCount != columnCount))
            {
                throw new PgException(PgSqlState.ProtocolViolation, $"bind message has {resultFormatCount} result formats but query has {columnCount} columns");
            }

            PgFormat[] resultFormats;
            if (resultFormatCount <= 1)
            {
                resultFormats = UniformFormats(columnCount, resultFormatCount == 0 ? PgFormat.Text : ReadFormat(ref reader));
            }
            else
            {
                resultFormats = new PgFormat[columnCount];
                for (int i = 0; i < resultFormatCount; i++)
                {
                    resultFormats[i] = ReadFormat(ref reader);
                }
            }

            reader.EnsureEnd();

            // As in PostgreSQL, a Bind replaces the unnamed portal before decoding its values (so the engine can reuse
            // what the old one held).
            DropPortal(portalName);
            IPgPortal portal = statement.Bind(parameters);
            Portal holder = _sparePortal ?? new Portal();
            _sparePortal = null;
            _portals[portalName] = holder.Set(portal, columns, resultFormats, parameters);
        }
        catch
        {
            parameters.Dispose();
            throw;
        }

        _writer.Write(new EmptyMessage(BackendMessageCode.BindComplete));
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Looks the statement up by its name without allocating a string for it (named statements are looked up on every
    /// Bind of a prepared workload). <paramref name="name"/> is set only when the statement does not exist.
    /// </summary>
    private IPgStatement? FindStatement(ref MessageReader reader, out string? name)
    {
        ReadOnlySpan<byte> utf8 = reader.ReadCStringBytes();
        name = null;
        if (utf8.Length <= 128)
        {
            Span<char> chars = stackalloc char[128];
            if (System.Text.Unicode.Utf8.ToUtf16(utf8, chars, out _, out int written, replaceInvalidSequences: false) == OperationStatus.Done
                && _statementsByName.TryGetValue(chars[..written], out IPgStatement? found))
            {
                return found;
            }
        }

        name = MessageReader.DecodeName(utf8);
        return _statements.GetValueOrDefault(name);
    }

    private string NameOf(IPgStatement statement)
    {
        foreach (KeyValuePair<string, IPgStatement> pair in _statements)
        {
            if (ReferenceEquals(pair.Value, statement))
            {
                return pair.Key;
            }
        }

        return string.Empty;
    }

    /// <summary>One shared array per column count and format: portals only read their formats.</summary>
    private PgFormat[] UniformFormats(int columnCount, PgFormat format)
    {
        ref PgFormat[]? cached = ref format == PgFormat.Binary ? ref _binaryFormats : ref _textFormats;
        if (cached is null || cached.Length != columnCount)
        {
            cached = new PgFormat[columnCount];
            Array.Fill(cached, format);
        }

        return cached;
    }

    private static PgFormat ReadFormat(ref MessageReader reader)
    {
        short f = reader.ReadInt16();
        return f is 0 or 1 ? (PgFormat)f : throw new PgException(PgSqlState.ProtocolViolation, $"unsupported format code: {f}");
    }

    /// <summary>
    /// Copies the values out of the message buffer into one pooled array owned by the portal. The holder is the one
    /// the last closed portal gave back, when there is one, so a prepared workload binds without allocating it.
    /// </summary>
    private PgParameters ReadParameters(ref MessageReader reader, int count, scoped ReadOnlySpan<PgTypeOid> types, scoped ReadOnlySpan<PgFormat> formats)
    {
        if (count == 0)
        {
            return PgParameters.Empty;
        }

        PgParameters parameters = _spareParameters ?? new PgParameters(count);
        _spareParameters = null;
        byte[] data = ArrayPool<byte>.Shared.Rent(Math.Max(reader.Remaining, 16));
        parameters.Reset(count, data);
        int written = 0;
        try
        {
            for (int i = 0; i < count; i++)
            {
                int length = reader.ReadInt32();
                if (length < -1)
                {
                    throw new PgException(PgSqlState.ProtocolViolation, $"invalid length {length} of parameter ${i + 1}");
                }

                parameters.Set(i, types[i], formats.Length == 0 ? PgFormat.Text : formats.Length == 1 ? formats[0] : formats[i], written, length);
                if (length > 0)
                {
                    reader.ReadBytes(length).CopyTo(data.AsSpan(written));
                    written += length;
                }
            }
        }
        catch
        {
            parameters.Dispose();
            throw;
        }

        return parameters;
    }

    private ValueTask HandleDescribe()
    {
        var reader = new MessageReader(_message.WrittenSpan);
        byte kind = reader.ReadByte();
        string name = reader.ReadCString();
        reader.EnsureEnd();
        if (kind == (byte)'S')
        {
            if (!_statements.TryGetValue(name, out IPgStatement? statement))
            {
                throw UnknownStatement(name);
            }

            _writer.Write(new ParameterDescriptionMessage(statement.ParameterTypes));
            WriteRowDescription(statement.Columns, default);
        }
        else if (kind == (byte)'P')
        {
            if (!_portals.TryGetValue(name, out Portal? portal))
            {
                throw UnknownPortal(name);
            }

            WriteRowDescription(portal.Columns, portal.Formats);
        }
        else
        {
            throw new PgException(PgSqlState.ProtocolViolation, $"invalid DESCRIBE message subtype {kind}");
        }

        return ValueTask.CompletedTask;
    }

    private void WriteRowDescription(IReadOnlyList<PgColumn>? columns, ReadOnlyMemory<PgFormat> formats)
    {
        if (columns is null)
        {
            _writer.Write(new EmptyMessage(BackendMessageCode.NoData));
        }
        else
        {
            _writer.Write(new RowDescriptionMessage(columns, formats));
        }
    }

    private async ValueTask HandleExecuteAsync()
    {
        var reader = new MessageReader(_message.WrittenSpan);
        string name = reader.ReadCString();
        int maxRows = reader.ReadInt32();
        reader.EnsureEnd();
        if (!_portals.TryGetValue(name, out Portal? portal))
        {
            throw UnknownPortal(name);
        }

        PgExecuteResult result = await ExecutePortalAsync(portal.Inner, portal.Columns, portal.Formats, Math.Max(maxRows, 0), simple: false).ConfigureAwait(false);
        if (result.Suspended)
        {
            _writer.Write(new EmptyMessage(BackendMessageCode.PortalSuspended));
        }
        else
        {
            _writer.Write(new CommandCompleteMessage(result.CommandTag ?? string.Empty));
        }
    }

    private ValueTask HandleClose()
    {
        var reader = new MessageReader(_message.WrittenSpan);
        byte kind = reader.ReadByte();
        string name = reader.ReadCString();
        reader.EnsureEnd();

        // Closing a name that does not exist is not an error (PostgreSQL answers CloseComplete).
        if (kind == (byte)'S')
        {
            DropStatement(name);
        }
        else if (kind == (byte)'P')
        {
            DropPortal(name);
        }
        else
        {
            throw new PgException(PgSqlState.ProtocolViolation, $"invalid CLOSE message subtype {kind}");
        }

        _writer.Write(new EmptyMessage(BackendMessageCode.CloseComplete));
        return ValueTask.CompletedTask;
    }

    private void DropStatement(string name)
    {
        if (_statements.Remove(name, out IPgStatement? old))
        {
            old.Dispose();
        }
    }

    private void DropPortal(string name)
    {
        if (_portals.Remove(name, out Portal? old))
        {
            old.Dispose();
            if (old.Parameters != PgParameters.Empty)
            {
                _spareParameters = old.Parameters;
            }

            _sparePortal = old.Clear();
        }
    }

    private static PgException UnknownStatement(string name) => new(
        PgSqlState.UndefinedPreparedStatement,
        name.Length == 0 ? "unnamed prepared statement does not exist" : $"prepared statement \"{name}\" does not exist");

    private static PgException UnknownPortal(string name) => new(PgSqlState.InvalidCursorName, $"portal \"{name}\" does not exist");

    internal async ValueTask StartCopyInAsync(short columnCount, PgFormat format)
    {
        if (_copyInActive || _copyOutActive)
        {
            throw new InvalidOperationException("COPY already in progress");
        }

        _writer.Write(new CopyResponseMessage(copyIn: true, format, columnCount));
        _copyInActive = true;
        await FlushAsync().ConfigureAwait(false);
    }

    internal async ValueTask<ReadOnlyMemory<byte>> ReadCopyDataAsync(CancellationToken cancellationToken)
    {
        if (!_copyInActive)
        {
            return ReadOnlyMemory<byte>.Empty;
        }

        while (true)
        {
            if (!await ReadMessageAsync(idle: false, cancellationToken).ConfigureAwait(false))
            {
                throw new IOException("client closed the connection during COPY");
            }

            switch ((FrontendMessageCode)_code)
            {
                case FrontendMessageCode.CopyData:
                    if (_message.Written > 0)
                    {
                        return _message.WrittenMemory;
                    }

                    continue;
                case FrontendMessageCode.CopyDone:
                    _copyInActive = false;
                    return ReadOnlyMemory<byte>.Empty;
                case FrontendMessageCode.CopyFail:
                    _copyInActive = false;
                    var r = new MessageReader(_message.WrittenSpan);
                    throw new PgException(PgSqlState.QueryCanceled, $"COPY from stdin failed: {r.ReadCString()}");
                case FrontendMessageCode.Flush or FrontendMessageCode.Sync:
                    continue; // the protocol says to ignore them during COPY IN
                default:
                    _copyInActive = false;
                    throw new PgException(PgSqlState.ProtocolViolation, $"unexpected message type 0x{_code:X2} during COPY from stdin");
            }
        }
    }

    private async ValueTask DrainCopyInAsync(CancellationToken cancellationToken)
    {
        while (_copyInActive)
        {
            await ReadCopyDataAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    internal void StartCopyOut(short columnCount, PgFormat format)
    {
        if (_copyInActive || _copyOutActive)
        {
            throw new InvalidOperationException("COPY already in progress");
        }

        _writer.Write(new CopyResponseMessage(copyIn: false, format, columnCount));
        _copyOutActive = true;
    }

    internal async ValueTask WriteCopyDataAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (!_copyOutActive)
        {
            throw new InvalidOperationException("COPY TO STDOUT not started");
        }

        _writer.Write(new CopyDataMessage(data));
        if (_writer.Unflushed >= CopyFlushThreshold)
        {
            System.IO.Pipelines.FlushResult r = await _writer.FlushAsync(cancellationToken).ConfigureAwait(false);
            if (r.IsCompleted)
            {
                throw new IOException("client closed the connection");
            }
        }
    }

    /// <summary>
    /// A named or unnamed portal: the engine's portal plus what the protocol layer needs to describe it. The holder of
    /// a dropped portal is kept for the next Bind, so a prepared workload binds without allocating one.
    /// </summary>
    private sealed class Portal : IDisposable
    {
        public IPgPortal Inner { get; private set; } = null!;

        public IReadOnlyList<PgColumn>? Columns { get; private set; }

        public PgFormat[] Formats { get; private set; } = [];

        public PgParameters Parameters { get; private set; } = PgParameters.Empty;

        public Portal Set(IPgPortal inner, IReadOnlyList<PgColumn>? columns, PgFormat[] formats, PgParameters parameters)
        {
            Inner = inner;
            Columns = columns;
            Formats = formats;
            Parameters = parameters;
            return this;
        }

        /// <summary>Forgets what it held (after <see cref="Dispose"/>), ready for <see cref="Set"/>.</summary>
        public Portal Clear()
        {
            Inner = null!;
            Columns = null;
            Formats = [];
            Parameters = PgParameters.Empty;
            return this;
        }

        public void Dispose()
        {
            Inner.Dispose();
            Parameters.Dispose();
        }
    }
}
