using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Kdb.PgWire.Session;
using Kdb.PgWire.Types;

namespace Kdb.PgWire.Protocol;

/// <summary>
/// A backend message whose body length is known before a byte is written, so the frame is written
/// into one span of the pipe with no back-patching (the Npgsql model).
/// </summary>
internal interface IBackendMessage
{
    BackendMessageCode Code { get; }

    /// <summary>Exact body length, excluding the type byte and the length word.</summary>
    int BodyLength { get; }

    void WriteBody(Span<byte> destination);
}

internal static class BackendMessageWriter
{
    /// <summary>Writes a whole frame: type byte, int32 length (self-inclusive), body.</summary>
    public static void Write<T>(this PipeWriterLike writer, in T message)
        where T : struct, IBackendMessage
    {
        int body = message.BodyLength;
        Span<byte> span = writer.GetSpan(5 + body);
        span[0] = (byte)message.Code;
        BinaryPrimitives.WriteInt32BigEndian(span[1..], body + 4);
        message.WriteBody(span.Slice(5, body));
        writer.Advance(5 + body);
    }

    public static int CStringLength(string s) => Encoding.UTF8.GetByteCount(s) + 1;

    public static int WriteCString(Span<byte> destination, string s)
    {
        int n = Encoding.UTF8.GetBytes(s, destination);
        destination[n] = 0;
        return n + 1;
    }
}

/// <summary>Counts bytes written since the last flush so producers can apply backpressure.</summary>
internal sealed class PipeWriterLike(System.IO.Pipelines.PipeWriter inner)
{
    private System.IO.Pipelines.PipeWriter _inner = inner;

    public long Unflushed { get; private set; }

    public System.IO.Pipelines.PipeWriter Inner => _inner;

    public void Replace(System.IO.Pipelines.PipeWriter writer) => _inner = writer;

    public Span<byte> GetSpan(int size) => _inner.GetSpan(size);

    public void Advance(int count)
    {
        _inner.Advance(count);
        Unflushed += count;
    }

    public void Write(ReadOnlySpan<byte> bytes)
    {
        _inner.Write(bytes);
        Unflushed += bytes.Length;
    }

    /// <summary>Flushes; completes only once the transport accepted the data (backpressure).</summary>
    public ValueTask<System.IO.Pipelines.FlushResult> FlushAsync(CancellationToken cancellationToken)
    {
        Unflushed = 0;
        return _inner.FlushAsync(cancellationToken);
    }
}

internal readonly struct AuthenticationMessage(AuthenticationCode code, ReadOnlyMemory<byte> payload = default) : IBackendMessage
{
    public BackendMessageCode Code => BackendMessageCode.Authentication;

    public int BodyLength => 4 + payload.Length;

    public void WriteBody(Span<byte> destination)
    {
        BinaryPrimitives.WriteInt32BigEndian(destination, (int)code);
        payload.Span.CopyTo(destination[4..]);
    }
}

/// <summary>AuthenticationSASL listing SCRAM-SHA-256 only: channel binding (-PLUS) is not offered.</summary>
internal readonly struct AuthenticationSaslMessage : IBackendMessage
{
    private static ReadOnlySpan<byte> Mechanisms => "SCRAM-SHA-256\0\0"u8;

    public BackendMessageCode Code => BackendMessageCode.Authentication;

    public int BodyLength => 4 + Mechanisms.Length;

    public void WriteBody(Span<byte> destination)
    {
        BinaryPrimitives.WriteInt32BigEndian(destination, (int)AuthenticationCode.Sasl);
        Mechanisms.CopyTo(destination[4..]);
    }
}

internal readonly struct BackendKeyDataMessage(int processId, int secretKey) : IBackendMessage
{
    public BackendMessageCode Code => BackendMessageCode.BackendKeyData;

    public int BodyLength => 8;

    public void WriteBody(Span<byte> destination)
    {
        BinaryPrimitives.WriteInt32BigEndian(destination, processId);
        BinaryPrimitives.WriteInt32BigEndian(destination[4..], secretKey);
    }
}

internal readonly struct ParameterStatusMessage(string name, string value) : IBackendMessage
{
    public BackendMessageCode Code => BackendMessageCode.ParameterStatus;

    public int BodyLength => BackendMessageWriter.CStringLength(name) + BackendMessageWriter.CStringLength(value);

    public void WriteBody(Span<byte> destination)
    {
        int n = BackendMessageWriter.WriteCString(destination, name);
        BackendMessageWriter.WriteCString(destination[n..], value);
    }
}

internal readonly struct ReadyForQueryMessage(PgTransactionStatus status) : IBackendMessage
{
    public BackendMessageCode Code => BackendMessageCode.ReadyForQuery;

    public int BodyLength => 1;

    public void WriteBody(Span<byte> destination) => destination[0] = (byte)status;
}

/// <summary>A message with an empty body: ParseComplete, BindComplete, CloseComplete, NoData, EmptyQueryResponse, PortalSuspended, CopyDone.</summary>
internal readonly struct EmptyMessage(BackendMessageCode code) : IBackendMessage
{
    public BackendMessageCode Code => code;

    public int BodyLength => 0;

    public void WriteBody(Span<byte> destination)
    {
    }
}

internal readonly struct CommandCompleteMessage(string tag) : IBackendMessage
{
    public BackendMessageCode Code => BackendMessageCode.CommandComplete;

    public int BodyLength => BackendMessageWriter.CStringLength(tag);

    public void WriteBody(Span<byte> destination) => BackendMessageWriter.WriteCString(destination, tag);
}

/// <summary>ErrorResponse or NoticeResponse: the fields kdb reports (severity, SQLSTATE, message, detail, hint, position).</summary>
internal readonly struct ErrorOrNoticeMessage(bool isError, string severity, string sqlState, string message, string? detail, string? hint, int position) : IBackendMessage
{
    public BackendMessageCode Code => isError ? BackendMessageCode.ErrorResponse : BackendMessageCode.NoticeResponse;

    public int BodyLength
    {
        get
        {
            int n = 2 * (1 + BackendMessageWriter.CStringLength(severity))
                + 1 + BackendMessageWriter.CStringLength(sqlState)
                + 1 + BackendMessageWriter.CStringLength(message)
                + 1; // terminator
            if (detail is not null)
            {
                n += 1 + BackendMessageWriter.CStringLength(detail);
            }

            if (hint is not null)
            {
                n += 1 + BackendMessageWriter.CStringLength(hint);
            }

            if (position > 0)
            {
                n += 1 + BackendMessageWriter.CStringLength(PositionText);
            }

            return n;
        }
    }

    private string PositionText => position.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public void WriteBody(Span<byte> destination)
    {
        int o = 0;
        o += Field(destination[o..], ErrorFieldCode.Severity, severity);
        o += Field(destination[o..], ErrorFieldCode.SeverityNonLocalized, severity);
        o += Field(destination[o..], ErrorFieldCode.Code, sqlState);
        o += Field(destination[o..], ErrorFieldCode.Message, message);
        if (detail is not null)
        {
            o += Field(destination[o..], ErrorFieldCode.Detail, detail);
        }

        if (hint is not null)
        {
            o += Field(destination[o..], ErrorFieldCode.Hint, hint);
        }

        if (position > 0)
        {
            o += Field(destination[o..], ErrorFieldCode.Position, PositionText);
        }

        destination[o] = 0;
    }

    private static int Field(Span<byte> destination, ErrorFieldCode code, string value)
    {
        destination[0] = (byte)code;
        return 1 + BackendMessageWriter.WriteCString(destination[1..], value);
    }
}

internal readonly struct RowDescriptionMessage(IReadOnlyList<PgColumn> columns, ReadOnlyMemory<PgFormat> formats) : IBackendMessage
{
    public BackendMessageCode Code => BackendMessageCode.RowDescription;

    public int BodyLength
    {
        get
        {
            int n = 2;
            for (int i = 0; i < columns.Count; i++)
            {
                n += BackendMessageWriter.CStringLength(columns[i].Name) + 18;
            }

            return n;
        }
    }

    public void WriteBody(Span<byte> destination)
    {
        BinaryPrimitives.WriteInt16BigEndian(destination, (short)columns.Count);
        int o = 2;
        ReadOnlySpan<PgFormat> f = formats.Span;
        for (int i = 0; i < columns.Count; i++)
        {
            PgColumn c = columns[i];
            o += BackendMessageWriter.WriteCString(destination[o..], c.Name);
            BinaryPrimitives.WriteUInt32BigEndian(destination[o..], c.TableOid);
            BinaryPrimitives.WriteInt16BigEndian(destination[(o + 4)..], c.ColumnAttributeNumber);
            BinaryPrimitives.WriteUInt32BigEndian(destination[(o + 6)..], (uint)c.Type);
            BinaryPrimitives.WriteInt16BigEndian(destination[(o + 10)..], PgTypes.SizeOf(c.Type));
            BinaryPrimitives.WriteInt32BigEndian(destination[(o + 12)..], c.TypeModifier);
            BinaryPrimitives.WriteInt16BigEndian(destination[(o + 16)..], (short)(f.IsEmpty ? PgFormat.Text : f[i]));
            o += 18;
        }
    }
}

internal readonly struct ParameterDescriptionMessage(ReadOnlyMemory<PgTypeOid> types) : IBackendMessage
{
    public BackendMessageCode Code => BackendMessageCode.ParameterDescription;

    public int BodyLength => 2 + (4 * types.Length);

    public void WriteBody(Span<byte> destination)
    {
        BinaryPrimitives.WriteInt16BigEndian(destination, (short)types.Length);
        ReadOnlySpan<PgTypeOid> t = types.Span;
        for (int i = 0; i < t.Length; i++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(destination[(2 + (4 * i))..], (uint)t[i]);
        }
    }
}

/// <summary>CopyInResponse or CopyOutResponse: overall format and one format per column.</summary>
internal readonly struct CopyResponseMessage(bool copyIn, PgFormat format, short columnCount) : IBackendMessage
{
    public BackendMessageCode Code => copyIn ? BackendMessageCode.CopyInResponse : BackendMessageCode.CopyOutResponse;

    public int BodyLength => 3 + (2 * columnCount);

    public void WriteBody(Span<byte> destination)
    {
        destination[0] = (byte)format;
        BinaryPrimitives.WriteInt16BigEndian(destination[1..], columnCount);
        for (int i = 0; i < columnCount; i++)
        {
            BinaryPrimitives.WriteInt16BigEndian(destination[(3 + (2 * i))..], (short)format);
        }
    }
}

internal readonly struct CopyDataMessage(ReadOnlyMemory<byte> data) : IBackendMessage
{
    public BackendMessageCode Code => BackendMessageCode.CopyData;

    public int BodyLength => data.Length;

    public void WriteBody(Span<byte> destination) => data.Span.CopyTo(destination);
}

/// <summary>NegotiateProtocolVersion: the newest minor version served and the options not recognized.</summary>
internal readonly struct NegotiateProtocolVersionMessage(int newestMinor, IReadOnlyList<string> unrecognized) : IBackendMessage
{
    public BackendMessageCode Code => BackendMessageCode.NegotiateProtocolVersion;

    public int BodyLength
    {
        get
        {
            int n = 8;
            for (int i = 0; i < unrecognized.Count; i++)
            {
                n += BackendMessageWriter.CStringLength(unrecognized[i]);
            }

            return n;
        }
    }

    public void WriteBody(Span<byte> destination)
    {
        BinaryPrimitives.WriteInt32BigEndian(destination, newestMinor);
        BinaryPrimitives.WriteInt32BigEndian(destination[4..], unrecognized.Count);
        int o = 8;
        for (int i = 0; i < unrecognized.Count; i++)
        {
            o += BackendMessageWriter.WriteCString(destination[o..], unrecognized[i]);
        }
    }
}
