using System.Buffers.Binary;
using System.Text;
using Kdb.Sql.Types;

namespace Kdb.Sql.Codec;

/// <summary>
/// The stored form of a row: <c>[format 1][column count varint][null bitmap][payloads]</c>. Columns keep
/// their physical slot for life (a dropped column's slot stays NULL), and a row written before ADD COLUMN
/// simply has fewer columns: readers fill the missing ones with the column's recorded default. The storage
/// engine checksums every value, so the row needs none of its own.
/// </summary>
internal static class RowCodec
{
    public const byte FormatVersion = 1;

    private const int BigNumericFlags = 1;

    public static void Encode(ByteWriter writer, ReadOnlySpan<Value> values)
    {
        writer.WriteByte(FormatVersion);
        writer.WriteVarUInt((ulong)values.Length);
        var bitmapBytes = (values.Length + 7) / 8;
        var bitmap = writer.GetSpan(bitmapBytes);
        bitmap.Clear();
        for (var i = 0; i < values.Length; i++)
        {
            if (values[i].IsNull)
            {
                bitmap[i >> 3] |= (byte)(1 << (i & 7));
            }
        }

        writer.Advance(bitmapBytes);
        for (var i = 0; i < values.Length; i++)
        {
            if (!values[i].IsNull)
            {
                WritePayload(writer, values[i]);
            }
        }
    }

    private static void WritePayload(ByteWriter writer, in Value value)
    {
        switch (value.Kind)
        {
            case ValueKind.Bool:
                writer.WriteByte(value.AsBool ? (byte)1 : (byte)0);
                break;
            case ValueKind.Int:
                var v = value.AsInt;
                writer.WriteVarUInt((ulong)((v << 1) ^ (v >> 63)));
                break;
            case ValueKind.Float:
            case ValueKind.Timestamp:
                writer.WriteInt64LittleEndian(value.RawBits());
                break;
            case ValueKind.Date:
                writer.WriteInt32LittleEndian(value.AsDate);
                break;
            case ValueKind.Numeric when value.IsBigNumeric:
                // Flags 1 is no valid decimal: it marks [byte count, scale, 0, 1] and the unscaled integer's bytes.
                var big = value.AsBigNumeric;
                var magnitude = big.Unscaled.ToByteArray();
                writer.WriteInt32LittleEndian(magnitude.Length);
                writer.WriteInt32LittleEndian(big.Scale);
                writer.WriteInt32LittleEndian(0);
                writer.WriteInt32LittleEndian(BigNumericFlags);
                writer.Write(magnitude);
                break;
            case ValueKind.Numeric:
                Span<int> bits = stackalloc int[4];
                decimal.GetBits(value.AsNumeric, bits);
                foreach (var b in bits)
                {
                    writer.WriteInt32LittleEndian(b);
                }

                break;
            case ValueKind.Text:
                var text = value.AsText;
                var max = Encoding.UTF8.GetByteCount(text);
                writer.WriteVarUInt((ulong)max);
                Encoding.UTF8.GetBytes(text, writer.GetSpan(max));
                writer.Advance(max);
                break;
            case ValueKind.Bytes:
                writer.WriteVarUInt((ulong)value.AsBytes.Length);
                writer.Write(value.AsBytes);
                break;
            case ValueKind.Uuid:
                value.AsUuid.TryWriteBytes(writer.GetSpan(16), bigEndian: true, out _);
                writer.Advance(16);
                break;
            case ValueKind.Interval:
                var interval = value.AsInterval;
                writer.WriteInt32LittleEndian(interval.Months);
                writer.WriteInt32LittleEndian(interval.Days);
                writer.WriteInt64LittleEndian(interval.Microseconds);
                break;
            case ValueKind.Array:
                var items = value.AsArray;
                writer.WriteVarUInt((ulong)items.Length);
                foreach (var item in items)
                {
                    writer.WriteByte((byte)item.Kind);
                    if (!item.IsNull)
                    {
                        WritePayload(writer, item);
                    }
                }

                break;
            default:
                throw new SqlException(SqlState.InternalError, "cannot store a value of kind " + value.Kind);
        }
    }

    /// <summary>Decodes into <paramref name="destination"/> (one slot per physical column); columns the row predates are left for the caller (returns how many were present).</summary>
    public static int Decode(ReadOnlySpan<byte> encoded, ReadOnlySpan<ValueKind> kinds, Span<Value> destination) =>
        Decode(encoded, kinds, destination, null);

    /// <summary>As <see cref="Decode(ReadOnlySpan{byte}, ReadOnlySpan{ValueKind}, Span{Value})"/>, skipping (as NULL) the slots <paramref name="needed"/> marks false: a query reading one column of a wide row allocates nothing for the others.</summary>
    public static int Decode(ReadOnlySpan<byte> encoded, ReadOnlySpan<ValueKind> kinds, Span<Value> destination, bool[]? needed)
    {
        var reader = new ByteReader(encoded);
        if (reader.ReadByte() != FormatVersion)
        {
            throw new SqlException("XX001", "stored row has an unknown format version");
        }

        var count = (int)reader.ReadVarUInt();
        if (count > kinds.Length || count < 0)
        {
            throw ByteReader.Corrupt();
        }

        var bitmap = reader.ReadBytes((count + 7) / 8);
        for (var i = 0; i < count; i++)
        {
            if ((bitmap[i >> 3] & (1 << (i & 7))) != 0)
            {
                destination[i] = Value.Null;
                continue;
            }

            if (needed is not null && !needed[i])
            {
                SkipPayload(ref reader, kinds[i]);
                destination[i] = Value.Null;
                continue;
            }

            destination[i] = ReadPayload(ref reader, kinds[i]);
        }

        return count;
    }

    private static void SkipPayload(ref ByteReader reader, ValueKind kind)
    {
        switch (kind)
        {
            case ValueKind.Bool:
                reader.ReadByte();
                break;
            case ValueKind.Int:
                reader.ReadVarUInt();
                break;
            case ValueKind.Float or ValueKind.Timestamp:
                reader.ReadBytes(8);
                break;
            case ValueKind.Date:
                reader.ReadBytes(4);
                break;
            case ValueKind.Numeric:
                var head = reader.ReadBytes(16);
                if (BinaryPrimitives.ReadInt32LittleEndian(head[12..]) == BigNumericFlags)
                {
                    reader.ReadBytes(BinaryPrimitives.ReadInt32LittleEndian(head));
                }

                break;
            case ValueKind.Uuid or ValueKind.Interval:
                reader.ReadBytes(16);
                break;
            case ValueKind.Text or ValueKind.Bytes:
                reader.ReadBytes((int)reader.ReadVarUInt());
                break;
            default:
                ReadPayload(ref reader, kind);
                break;
        }
    }

    private static Value ReadPayload(ref ByteReader reader, ValueKind kind)
    {
        switch (kind)
        {
            case ValueKind.Bool:
                return Value.FromBool(reader.ReadByte() != 0);
            case ValueKind.Int:
                var z = reader.ReadVarUInt();
                return Value.FromInt((long)(z >> 1) ^ -(long)(z & 1));
            case ValueKind.Float:
                return Value.FromFloat(BitConverter.Int64BitsToDouble(reader.ReadInt64LittleEndian()));
            case ValueKind.Timestamp:
                return Value.FromTimestamp(reader.ReadInt64LittleEndian());
            case ValueKind.Date:
                return Value.FromDate(reader.ReadInt32LittleEndian());
            case ValueKind.Numeric:
                Span<int> bits = stackalloc int[4];
                for (var i = 0; i < 4; i++)
                {
                    bits[i] = reader.ReadInt32LittleEndian();
                }

                if (bits[3] == BigNumericFlags)
                {
                    if (bits[0] is < 1 or > 1 << 20 || bits[1] is < 0 or > BigNumeric.MaxScale)
                    {
                        throw ByteReader.Corrupt();
                    }

                    return NumericMath.Make(new System.Numerics.BigInteger(reader.ReadBytes(bits[0])), bits[1]);
                }

                try
                {
                    return Value.FromNumeric(new decimal(bits));
                }
                catch (ArgumentException)
                {
                    throw ByteReader.Corrupt();
                }

            case ValueKind.Text:
                var length = (int)reader.ReadVarUInt();
                return Value.FromText(Encoding.UTF8.GetString(reader.ReadBytes(length)));
            case ValueKind.Bytes:
                var n = (int)reader.ReadVarUInt();
                return Value.FromBytes(reader.ReadBytes(n).ToArray());
            case ValueKind.Uuid:
                return Value.FromUuid(new Guid(reader.ReadBytes(16), bigEndian: true));
            case ValueKind.Interval:
                var months = reader.ReadInt32LittleEndian();
                var days = reader.ReadInt32LittleEndian();
                return Value.FromInterval(new Interval(months, days, reader.ReadInt64LittleEndian()));
            case ValueKind.Array:
                var count = (int)reader.ReadVarUInt();
                if (count > 1_000_000)
                {
                    throw ByteReader.Corrupt();
                }

                var items = new Value[count];
                for (var i = 0; i < count; i++)
                {
                    var itemKind = (ValueKind)reader.ReadByte();
                    items[i] = itemKind == ValueKind.Null ? Value.Null : ReadPayload(ref reader, itemKind);
                }

                return Value.FromArray(items);
            default:
                throw ByteReader.Corrupt();
        }
    }

    /// <summary>Approximate UTF-8 size of a text for limit checks.</summary>
    public static int Utf8Length(string text) => Encoding.UTF8.GetByteCount(text);
}
