using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Text;

namespace Kdb.Proxy.Pg;

/// <summary>SQLSTATEs the proxy answers with itself.</summary>
internal static class ProxySqlState
{
    public const string InvalidPassword = "28P01";
    public const string InvalidAuthorization = "28000";
    public const string ProtocolViolation = "08P01";
    public const string FeatureNotSupported = "0A000";
    public const string ConnectionRejected = "08004";
    public const string ConnectionFailure = "08006";
    public const string TooManyConnections = "53300";
    public const string QuotaSuspended = "53400";
    public const string CannotConnectNow = "57P03";
    public const string AdminShutdown = "57P01";
}

/// <summary>Request codes of untyped startup-phase packets.</summary>
internal static class StartupCodes
{
    public const int ProtocolVersion3 = 196608; // 3 << 16
    public const int SslRequest = 80877103;
    public const int GssEncRequest = 80877104;
    public const int CancelRequest = 80877102;

    // PostgreSQL's MAX_STARTUP_PACKET_LENGTH.
    public const int MaxStartupPacket = 10000;
}

/// <summary>Reads and writes the few messages the proxy itself exchanges during startup and authentication.</summary>
internal static class PgFrames
{
    /// <summary>
    /// Reads an untyped startup packet (int32 length, body); returns the body, or null at EOF or when the length is out
    /// of bounds (PostgreSQL closes without a reply then: the peer may not speak protocol 3 at all).
    /// </summary>
    public static async ValueTask<byte[]?> ReadStartupPacketAsync(PipeReader reader, CancellationToken cancellationToken)
    {
        while (true)
        {
            ReadResult r = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = r.Buffer;
            if (buffer.Length >= 4)
            {
                int length = ReadInt32(buffer);
                if (length < 8 || length > StartupCodes.MaxStartupPacket)
                {
                    reader.AdvanceTo(buffer.Start);
                    return null;
                }

                if (buffer.Length >= length)
                {
                    byte[] body = buffer.Slice(4, length - 4).ToArray();
                    reader.AdvanceTo(buffer.GetPosition(length));
                    return body;
                }
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
            if (r.IsCompleted || r.IsCanceled)
            {
                return null;
            }
        }
    }

    /// <summary>Reads one typed message; null at EOF or when its length is outside 4..<paramref name="maxLength"/>.</summary>
    public static async ValueTask<(byte Code, byte[] Body)?> ReadMessageAsync(PipeReader reader, int maxLength, CancellationToken cancellationToken)
    {
        while (true)
        {
            ReadResult r = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = r.Buffer;
            if (buffer.Length >= 5)
            {
                byte code = buffer.FirstSpan[0];
                int length = ReadInt32(buffer.Slice(1));
                if (length < 4 || length > maxLength)
                {
                    reader.AdvanceTo(buffer.Start);
                    return null;
                }

                if (buffer.Length >= length + 1)
                {
                    byte[] body = buffer.Slice(5, length - 4).ToArray();
                    reader.AdvanceTo(buffer.GetPosition(length + 1));
                    return (code, body);
                }
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
            if (r.IsCompleted || r.IsCanceled)
            {
                return null;
            }
        }
    }

    /// <summary>Parses the name/value pairs of a startup packet body (after the protocol version); null when malformed.</summary>
    public static Dictionary<string, string>? ParseStartupParameters(ReadOnlySpan<byte> body)
    {
        var parameters = new Dictionary<string, string>(StringComparer.Ordinal);
        var utf8 = new UTF8Encoding(false, true);
        try
        {
            while (true)
            {
                int end = body.IndexOf((byte)0);
                if (end < 0)
                {
                    return null;
                }

                if (end == 0)
                {
                    return body.Length == 1 ? parameters : null;
                }

                string name = utf8.GetString(body[..end]);
                body = body[(end + 1)..];
                end = body.IndexOf((byte)0);
                if (end < 0)
                {
                    return null;
                }

                parameters[name] = utf8.GetString(body[..end]);
                body = body[(end + 1)..];
            }
        }
        catch (DecoderFallbackException)
        {
            return null;
        }
    }

    /// <summary>Writes an ErrorResponse.</summary>
    public static void WriteError(IBufferWriter<byte> writer, string severity, string sqlState, string message, string? hint = null)
    {
        int length = 4 + Field(severity) + Field(severity) + Field(sqlState) + Field(message) + (hint is null ? 0 : Field(hint)) + 1;
        Span<byte> span = writer.GetSpan(length + 1);
        span[0] = (byte)'E';
        BinaryPrimitives.WriteInt32BigEndian(span[1..], length);
        int at = 5;
        at = PutField(span, at, (byte)'S', severity);
        at = PutField(span, at, (byte)'V', severity);
        at = PutField(span, at, (byte)'C', sqlState);
        at = PutField(span, at, (byte)'M', message);
        if (hint is not null)
        {
            at = PutField(span, at, (byte)'H', hint);
        }

        span[at++] = 0;
        writer.Advance(at);
    }

    /// <summary>Writes an Authentication message with sub-code <paramref name="code"/> and optional data.</summary>
    public static void WriteAuthentication(IBufferWriter<byte> writer, int code, ReadOnlySpan<byte> data = default)
    {
        Span<byte> span = writer.GetSpan(9 + data.Length);
        span[0] = (byte)'R';
        BinaryPrimitives.WriteInt32BigEndian(span[1..], 8 + data.Length);
        BinaryPrimitives.WriteInt32BigEndian(span[5..], code);
        data.CopyTo(span[9..]);
        writer.Advance(9 + data.Length);
    }

    /// <summary>AuthenticationSASL offering SCRAM-SHA-256 only.</summary>
    public static void WriteSaslOffer(IBufferWriter<byte> writer) => WriteAuthentication(writer, 10, "SCRAM-SHA-256\0\0"u8);

    /// <summary>Writes a BackendKeyData message.</summary>
    public static void WriteBackendKeyData(IBufferWriter<byte> writer, int processId, int secretKey)
    {
        Span<byte> span = writer.GetSpan(13);
        span[0] = (byte)'K';
        BinaryPrimitives.WriteInt32BigEndian(span[1..], 12);
        BinaryPrimitives.WriteInt32BigEndian(span[5..], processId);
        BinaryPrimitives.WriteInt32BigEndian(span[9..], secretKey);
        writer.Advance(13);
    }

    /// <summary>Reads the SQLSTATE and message of an ErrorResponse body.</summary>
    public static (string Code, string Message) ParseError(ReadOnlySpan<byte> body)
    {
        string code = "XX000";
        string message = string.Empty;
        while (body.Length > 1)
        {
            byte field = body[0];
            int end = body[1..].IndexOf((byte)0);
            if (end < 0)
            {
                break;
            }

            string value = Encoding.UTF8.GetString(body.Slice(1, end));
            if (field == (byte)'C')
            {
                code = value;
            }
            else if (field == (byte)'M')
            {
                message = value;
            }

            body = body[(end + 2)..];
        }

        return (code, message);
    }

    public static int ReadInt32(ReadOnlySequence<byte> buffer)
    {
        Span<byte> header = stackalloc byte[4];
        buffer.Slice(0, 4).CopyTo(header);
        return BinaryPrimitives.ReadInt32BigEndian(header);
    }

    private static int Field(string value) => 1 + Encoding.UTF8.GetByteCount(value) + 1;

    private static int PutField(Span<byte> span, int at, byte code, string value)
    {
        span[at++] = code;
        at += Encoding.UTF8.GetBytes(value, span[at..]);
        span[at++] = 0;
        return at;
    }
}
