using System.Buffers.Binary;
using Kdb.Sql.Types;

namespace Kdb.Sql.Codec;

/// <summary>
/// Order-preserving encoding of typed values into keys (DESIGN: <c>[tenant 8][table 4][index 4][key columns]</c>).
/// Comparing encoded keys bytewise gives the SQL order: each column is a tag byte (0x02 value, 0x03 NULL, so
/// NULLs sort last as in PostgreSQL's ASC default) and a self-delimiting payload; a DESC column is the same
/// bytes inverted (so its NULLs come first, PostgreSQL's DESC default).
/// </summary>
internal static class KeyEncoder
{
    public const int PrefixLength = 16;
    private const byte ValueTag = 0x02;
    private const byte NullTag = 0x03;

    public static void WritePrefix(ByteWriter writer, ulong tenant, uint table, uint index)
    {
        writer.WriteUInt64BigEndian(tenant);
        writer.WriteUInt32BigEndian(table);
        writer.WriteUInt32BigEndian(index);
    }

    public static byte[] Prefix(ulong tenant, uint table, uint index)
    {
        var key = new byte[PrefixLength];
        BinaryPrimitives.WriteUInt64BigEndian(key, tenant);
        BinaryPrimitives.WriteUInt32BigEndian(key.AsSpan(8), table);
        BinaryPrimitives.WriteUInt32BigEndian(key.AsSpan(12), index);
        return key;
    }

    /// <summary>The first key after every key that starts with <paramref name="prefix"/>, or null when none exists.</summary>
    public static byte[]? PrefixEnd(ReadOnlySpan<byte> prefix)
    {
        var end = prefix.ToArray();
        for (var i = end.Length - 1; i >= 0; i--)
        {
            if (end[i] != 0xFF)
            {
                end[i]++;
                return end.AsSpan(0, i + 1).ToArray();
            }
        }

        return null;
    }

    public static void WriteValue(ByteWriter writer, in Value value, bool descending)
    {
        var start = writer.Length;
        if (value.IsNull)
        {
            writer.WriteByte(NullTag);
        }
        else
        {
            writer.WriteByte(ValueTag);
            WritePayload(writer, value);
        }

        if (descending)
        {
            Invert(writer, start);
        }
    }

    private static void Invert(ByteWriter writer, int start)
    {
        var written = writer.Length - start;
        writer.Truncate(start);
        var span = writer.GetSpan(written);
        for (var i = 0; i < written; i++)
        {
            span[i] = (byte)~span[i];
        }

        writer.Advance(written);
    }

    private static void WritePayload(ByteWriter writer, in Value value)
    {
        switch (value.Kind)
        {
            case ValueKind.Bool:
                writer.WriteByte(value.AsBool ? (byte)1 : (byte)0);
                break;
            case ValueKind.Int:
            case ValueKind.Timestamp:
                writer.WriteUInt64BigEndian((ulong)value.RawBits() ^ 0x8000_0000_0000_0000UL);
                break;
            case ValueKind.Date:
                writer.WriteUInt32BigEndian((uint)value.AsDate ^ 0x8000_0000U);
                break;
            case ValueKind.Float:
                writer.WriteUInt64BigEndian(OrderedFloatBits(value.AsFloat));
                break;
            case ValueKind.Numeric:
                WriteNumeric(writer, value);
                break;
            case ValueKind.Text:
                WriteEscaped(writer, value.AsText);
                break;
            case ValueKind.Bytes:
                WriteEscaped(writer, value.AsBytes);
                break;
            case ValueKind.Uuid:
                value.AsUuid.TryWriteBytes(writer.GetSpan(16), bigEndian: true, out _);
                writer.Advance(16);
                break;
            case ValueKind.Interval:
                var total = value.AsInterval.TotalMicroseconds;
                writer.WriteUInt64BigEndian((ulong)(long)(total >> 64) ^ 0x8000_0000_0000_0000UL);
                writer.WriteUInt64BigEndian((ulong)total);
                break;
            default:
                throw new SqlException(SqlState.FeatureNotSupported, "values of this type cannot be part of a key");
        }
    }

    private static ulong OrderedFloatBits(double d)
    {
        if (double.IsNaN(d))
        {
            return ulong.MaxValue;
        }

        if (d == 0)
        {
            d = 0; // -0 and 0 are equal
        }

        var bits = (ulong)BitConverter.DoubleToInt64Bits(d);
        return (bits & 0x8000_0000_0000_0000UL) != 0 ? ~bits : bits | 0x8000_0000_0000_0000UL;
    }

    /// <summary>
    /// Sign class, then a biased decimal exponent and the significant digits; negatives inverted. Exponents in
    /// [-63, 190] take one byte (1..254); beyond, 0x00 or 0xFF escapes to four bytes, so the order holds across them.
    /// </summary>
    private static void WriteNumeric(ByteWriter writer, in Value value)
    {
        var sign = NumericMath.Sign(value);
        if (sign == 0)
        {
            writer.WriteByte(0x02);
            return;
        }

        var negative = sign < 0;
        var text = NumericMath.Abs(value).ToString();
        var dot = text.IndexOf('.', StringComparison.Ordinal);
        var intPart = dot >= 0 ? text[..dot] : text;
        var digits = (intPart + (dot >= 0 ? text[(dot + 1)..] : string.Empty)).TrimStart('0');
        var exponent = intPart.TrimStart('0').Length;
        if (exponent == 0)
        {
            // 0.00123: the exponent counts the zeros after the point, negatively.
            var frac = dot >= 0 ? text[(dot + 1)..] : string.Empty;
            exponent = -(frac.Length - frac.TrimStart('0').Length);
        }

        digits = digits.TrimEnd('0');
        writer.WriteByte(negative ? (byte)0x01 : (byte)0x03);
        var bodyStart = writer.Length;
        if (exponent is >= -63 and <= 190)
        {
            writer.WriteByte((byte)(exponent + 64));
        }
        else
        {
            writer.WriteByte(exponent < 0 ? (byte)0x00 : (byte)0xFF);
            writer.WriteUInt32BigEndian((uint)exponent ^ 0x8000_0000U);
        }

        foreach (var c in digits)
        {
            writer.WriteByte((byte)(c - '0' + 1));
        }

        writer.WriteByte(0);
        if (negative)
        {
            var len = writer.Length - bodyStart;
            writer.Truncate(bodyStart);
            var span = writer.GetSpan(len);
            for (var i = 0; i < len; i++)
            {
                span[i] = (byte)~span[i];
            }

            writer.Advance(len);
        }
    }

    private static void WriteEscaped(ByteWriter writer, string text)
    {
        var max = System.Text.Encoding.UTF8.GetMaxByteCount(text.Length);
        if (max <= 512)
        {
            Span<byte> buffer = stackalloc byte[max];
            var n = System.Text.Encoding.UTF8.GetBytes(text, buffer);
            WriteEscaped(writer, buffer[..n]);
        }
        else
        {
            WriteEscaped(writer, System.Text.Encoding.UTF8.GetBytes(text));
        }
    }

    /// <summary>0x00 inside the value becomes 0x00 0xFF; the terminator is 0x00 0x01, so prefixes sort first.</summary>
    private static void WriteEscaped(ByteWriter writer, ReadOnlySpan<byte> bytes)
    {
        while (true)
        {
            var zero = bytes.IndexOf((byte)0);
            if (zero < 0)
            {
                writer.Write(bytes);
                break;
            }

            writer.Write(bytes[..zero]);
            writer.WriteByte(0);
            writer.WriteByte(0xFF);
            bytes = bytes[(zero + 1)..];
        }

        writer.WriteByte(0);
        writer.WriteByte(1);
    }
}
