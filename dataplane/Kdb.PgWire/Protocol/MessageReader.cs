using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Text;
using Kdb.PgWire.Session;

namespace Kdb.PgWire.Protocol;

/// <summary>Reads the fields of one frontend message body; any underflow or stray byte is 08P01.</summary>
internal ref struct MessageReader(ReadOnlySpan<byte> body)
{
    private static readonly UTF8Encoding Strict = new(false, true);
    private readonly ReadOnlySpan<byte> _body = body;
    private int _position;

    public readonly int Remaining => _body.Length - _position;

    public byte ReadByte()
    {
        Need(1);
        return _body[_position++];
    }

    public short ReadInt16()
    {
        Need(2);
        short v = BinaryPrimitives.ReadInt16BigEndian(_body[_position..]);
        _position += 2;
        return v;
    }

    public int ReadInt32()
    {
        Need(4);
        int v = BinaryPrimitives.ReadInt32BigEndian(_body[_position..]);
        _position += 4;
        return v;
    }

    public uint ReadUInt32() => (uint)ReadInt32();

    public ReadOnlySpan<byte> ReadBytes(int count)
    {
        if (count < 0)
        {
            Throw("invalid length in message");
        }

        Need(count);
        ReadOnlySpan<byte> s = _body.Slice(_position, count);
        _position += count;
        return s;
    }

    public string ReadCString() => DecodeName(ReadCStringBytes());

    /// <summary>The bytes of a NUL-terminated string (without the NUL), not yet decoded.</summary>
    public ReadOnlySpan<byte> ReadCStringBytes()
    {
        int end = _body[_position..].IndexOf((byte)0);
        if (end < 0)
        {
            Throw("invalid string in message");
        }

        ReadOnlySpan<byte> bytes = _body.Slice(_position, end);
        _position += end + 1;
        return bytes;
    }

    /// <summary>Decodes UTF-8 strictly: invalid bytes are 22021, as in PostgreSQL.</summary>
    public static string DecodeName(ReadOnlySpan<byte> utf8)
    {
        try
        {
            return Strict.GetString(utf8);
        }
        catch (DecoderFallbackException)
        {
            throw new PgException("22021", "invalid byte sequence for encoding \"UTF8\"");
        }
    }

    public readonly void EnsureEnd()
    {
        if (_position != _body.Length)
        {
            Throw("invalid message format");
        }
    }

    private readonly void Need(int count)
    {
        if (_body.Length - _position < count)
        {
            Throw("insufficient data left in message");
        }
    }

    [DoesNotReturn]
    private static void Throw(string message) => throw new PgException(PgSqlState.ProtocolViolation, message);
}
