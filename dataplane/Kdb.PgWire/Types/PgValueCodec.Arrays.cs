using System.Buffers.Binary;
using System.Text;

namespace Kdb.PgWire.Types;

/// <summary>
/// Arrays and the catalog scalar types (oid, reg*, name, "char"): psql, Npgsql's type loading and pgbench
/// read them from pg_catalog, Npgsql in binary.
/// </summary>
internal static partial class PgValueCodec
{
    /// <summary>oid and the reg* types: an unsigned 32-bit number (binary) or its decimal digits (text).</summary>
    public static void WriteOid(ScratchBuffer b, PgFormat f, long v)
    {
        if (v is < 0 or > uint.MaxValue)
        {
            throw new Session.PgException(Session.PgSqlState.NumericValueOutOfRange, $"OID out of range: {v}");
        }

        if (f == PgFormat.Binary)
        {
            BinaryPrimitives.WriteUInt32BigEndian(b.GetSpan(4), (uint)v);
            b.Advance(4);
            return;
        }

        ((uint)v).TryFormat(b.GetSpan(10), out int n, default, Inv);
        b.Advance(n);
    }

    /// <summary>"char": one byte in binary (0 for the empty value, as PostgreSQL stores it), the character in text.</summary>
    public static void WriteChar(ScratchBuffer b, PgFormat f, ReadOnlySpan<char> v)
    {
        if (f == PgFormat.Binary)
        {
            b.GetSpan(1)[0] = v.IsEmpty ? (byte)0 : (byte)v[0];
            b.Advance(1);
            return;
        }

        WriteString(b, PgTypeOid.Text, f, v);
    }

    /// <summary>
    /// An array (or int2vector / oidvector) of integers. Binary: PostgreSQL's array_send layout (ndim, has-null
    /// flag, element OID, dimension and lower bound, then length-prefixed elements). Text: <c>{1,2,NULL}</c>,
    /// or <c>1 2</c> for the vector types.
    /// </summary>
    public static void WriteIntegerArray(ScratchBuffer b, PgTypeOid arrayType, PgFormat f, ReadOnlySpan<long> values, ReadOnlySpan<bool> nulls)
    {
        PgTypeOid element = PgArrayTypes.ElementOf(arrayType);
        bool vector = PgArrayTypes.IsVector(arrayType);
        if (f == PgFormat.Binary)
        {
            WriteArrayHeader(b, element, values.Length, HasNull(nulls), vector ? 0 : 1);
            for (int i = 0; i < values.Length; i++)
            {
                if (IsNull(nulls, i))
                {
                    WriteNullElement(b);
                    continue;
                }

                int size = PgTypes.SizeOf(element);
                BinaryPrimitives.WriteInt32BigEndian(b.GetSpan(4), size);
                b.Advance(4);
                if (element == PgTypeOid.Oid)
                {
                    WriteOid(b, PgFormat.Binary, values[i]);
                }
                else
                {
                    WriteInteger(b, element, PgFormat.Binary, values[i]);
                }
            }

            return;
        }

        if (!vector)
        {
            b.GetSpan(1)[0] = (byte)'{';
            b.Advance(1);
        }

        for (int i = 0; i < values.Length; i++)
        {
            if (i > 0)
            {
                b.GetSpan(1)[0] = vector ? (byte)' ' : (byte)',';
                b.Advance(1);
            }

            if (IsNull(nulls, i))
            {
                b.Write("NULL"u8);
            }
            else
            {
                values[i].TryFormat(b.GetSpan(20), out int n, default, Inv);
                b.Advance(n);
            }
        }

        if (!vector)
        {
            b.GetSpan(1)[0] = (byte)'}';
            b.Advance(1);
        }
    }

    /// <summary>A text[] value: binary as array_send does, text as array_out quotes (<c>{a,"b c",NULL}</c>).</summary>
    public static void WriteStringArray(ScratchBuffer b, PgFormat f, IReadOnlyList<string?> values)
    {
        if (f == PgFormat.Binary)
        {
            bool hasNull = false;
            for (int i = 0; i < values.Count; i++)
            {
                hasNull |= values[i] is null;
            }

            WriteArrayHeader(b, PgTypeOid.Text, values.Count, hasNull, 1);
            for (int i = 0; i < values.Count; i++)
            {
                if (values[i] is not { } s)
                {
                    WriteNullElement(b);
                    continue;
                }

                int lengthAt = b.Written;
                b.GetSpan(4);
                b.Advance(4);
                WriteString(b, PgTypeOid.Text, PgFormat.Binary, s);
                BinaryPrimitives.WriteInt32BigEndian(b.WrittenMutable(lengthAt, 4), b.Written - lengthAt - 4);
            }

            return;
        }

        var sb = new StringBuilder(2 + (values.Count * 8));
        sb.Append('{');
        for (int i = 0; i < values.Count; i++)
        {
            if (i > 0)
            {
                sb.Append(',');
            }

            AppendArrayElement(sb, values[i]);
        }

        sb.Append('}');
        WriteString(b, PgTypeOid.Text, PgFormat.Text, sb.ToString());
    }

    /// <summary>array_out's quoting: quote empty strings, "NULL", and anything with a delimiter, brace, quote, backslash or space.</summary>
    internal static void AppendArrayElement(StringBuilder sb, string? value)
    {
        if (value is null)
        {
            sb.Append("NULL");
            return;
        }

        bool quote = value.Length == 0 || value.Equals("NULL", StringComparison.OrdinalIgnoreCase);
        foreach (char c in value)
        {
            if (c is '{' or '}' or ',' or '"' or '\\' || char.IsWhiteSpace(c))
            {
                quote = true;
                break;
            }
        }

        if (!quote)
        {
            sb.Append(value);
            return;
        }

        sb.Append('"');
        foreach (char c in value)
        {
            if (c is '"' or '\\')
            {
                sb.Append('\\');
            }

            sb.Append(c);
        }

        sb.Append('"');
    }

    private static void WriteArrayHeader(ScratchBuffer b, PgTypeOid element, int count, bool hasNull, int lowerBound)
    {
        int size = count == 0 ? 12 : 20;
        Span<byte> s = b.GetSpan(size);
        BinaryPrimitives.WriteInt32BigEndian(s, count == 0 ? 0 : 1);
        BinaryPrimitives.WriteInt32BigEndian(s[4..], hasNull ? 1 : 0);
        BinaryPrimitives.WriteUInt32BigEndian(s[8..], (uint)element);
        if (count != 0)
        {
            BinaryPrimitives.WriteInt32BigEndian(s[12..], count);
            BinaryPrimitives.WriteInt32BigEndian(s[16..], lowerBound);
        }

        b.Advance(size);
    }

    private static void WriteNullElement(ScratchBuffer b)
    {
        BinaryPrimitives.WriteInt32BigEndian(b.GetSpan(4), -1);
        b.Advance(4);
    }

    private static bool HasNull(ReadOnlySpan<bool> nulls) => nulls.Contains(true);

    private static bool IsNull(ReadOnlySpan<bool> nulls, int i) => i < nulls.Length && nulls[i];
}
