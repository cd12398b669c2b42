using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Kdb.PgWire.Types;

/// <summary>
/// Encodes and decodes values of the supported types in PostgreSQL's text and binary formats. Text
/// output follows PostgreSQL 15 with DateStyle ISO, MDY, IntervalStyle postgres and TimeZone UTC,
/// which are the ParameterStatus values this server reports.
/// </summary>
internal static partial class PgValueCodec
{
    /// <summary>DateTime ticks of 2000-01-01, PostgreSQL's epoch for dates and timestamps.</summary>
    public const long EpochTicks = 630822816000000000;

    /// <summary>DateOnly.DayNumber of 2000-01-01.</summary>
    public const int EpochDayNumber = 730119;

    private static CultureInfo Inv => CultureInfo.InvariantCulture;

    public static void WriteBool(ScratchBuffer b, PgFormat f, bool v)
    {
        b.GetSpan(1)[0] = f == PgFormat.Binary ? (byte)(v ? 1 : 0) : (byte)(v ? 't' : 'f');
        b.Advance(1);
    }

    public static void WriteInteger(ScratchBuffer b, PgTypeOid oid, PgFormat f, long v)
    {
        if (f == PgFormat.Text)
        {
            v.TryFormat(b.GetSpan(20), out int n, default, Inv);
            b.Advance(n);
            return;
        }

        switch (oid)
        {
            case PgTypeOid.Int2:
                BinaryPrimitives.WriteInt16BigEndian(b.GetSpan(2), checked((short)v));
                b.Advance(2);
                break;
            case PgTypeOid.Int4:
                BinaryPrimitives.WriteInt32BigEndian(b.GetSpan(4), checked((int)v));
                b.Advance(4);
                break;
            default:
                BinaryPrimitives.WriteInt64BigEndian(b.GetSpan(8), v);
                b.Advance(8);
                break;
        }
    }

    public static void WriteFloat(ScratchBuffer b, PgTypeOid oid, PgFormat f, double v)
    {
        if (f == PgFormat.Binary)
        {
            if (oid == PgTypeOid.Float4)
            {
                BinaryPrimitives.WriteSingleBigEndian(b.GetSpan(4), (float)v);
                b.Advance(4);
            }
            else
            {
                BinaryPrimitives.WriteDoubleBigEndian(b.GetSpan(8), v);
                b.Advance(8);
            }

            return;
        }

        Span<byte> s = b.GetSpan(32);
        int n;
        if (double.IsNaN(v))
        {
            n = Ascii("NaN", s);
        }
        else if (double.IsInfinity(v))
        {
            n = Ascii(v > 0 ? "Infinity" : "-Infinity", s);
        }
        else
        {
            // Shortest round-trip digits, as PostgreSQL 12+ prints with extra_float_digits = 1 (Npgsql's default).
            bool ok = oid == PgTypeOid.Float4 ? ((float)v).TryFormat(s, out n, "R", Inv) : v.TryFormat(s, out n, "R", Inv);
            _ = ok;
            for (int i = 0; i < n; i++)
            {
                if (s[i] == (byte)'E')
                {
                    s[i] = (byte)'e';
                }
            }
        }

        b.Advance(n);
    }

    public static void WriteDecimal(ScratchBuffer b, PgFormat f, decimal v)
    {
        if (f == PgFormat.Text)
        {
            v.TryFormat(b.GetSpan(40), out int n, default, Inv);
            b.Advance(n);
            return;
        }

        Span<int> bits = stackalloc int[4];
        decimal.GetBits(v, bits);
        UInt128 mantissa = ((UInt128)(uint)bits[2] << 64) | ((ulong)(uint)bits[1] << 32) | (uint)bits[0];
        int scale = (bits[3] >> 16) & 0xFF;
        Span<char> digits = stackalloc char[40];
        mantissa.TryFormat(digits, out int len, default, Inv);
        if (len >= scale)
        {
            WriteNumericBinary(b, bits[3] < 0, digits[..(len - scale)], digits[(len - scale)..len]);
            return;
        }

        // Fewer digits than the scale: the fraction starts with zeros.
        Span<char> fraction = stackalloc char[scale];
        fraction.Fill('0');
        digits[..len].CopyTo(fraction[(scale - len)..]);
        WriteNumericBinary(b, bits[3] < 0, [], fraction);
    }

    /// <summary>
    /// A numeric given as PostgreSQL prints it (<c>[-]digits[.digits]</c>): values beyond decimal's 28 digits, which
    /// the engine carries as text-convertible arbitrary-precision numbers. NaN and infinities never reach here.
    /// </summary>
    public static void WriteNumericText(ScratchBuffer b, PgFormat f, ReadOnlySpan<char> text)
    {
        if (f == PgFormat.Text)
        {
            int n = Encoding.ASCII.GetBytes(text, b.GetSpan(text.Length));
            b.Advance(n);
            return;
        }

        bool negative = text.Length > 0 && text[0] == '-';
        ReadOnlySpan<char> unsigned = negative || (text.Length > 0 && text[0] == '+') ? text[1..] : text;
        int dot = unsigned.IndexOf('.');
        ReadOnlySpan<char> integer = dot < 0 ? unsigned : unsigned[..dot];
        ReadOnlySpan<char> fraction = dot < 0 ? [] : unsigned[(dot + 1)..];
        if (integer.ContainsAnyExcept("0123456789") || fraction.ContainsAnyExcept("0123456789"))
        {
            throw new FormatException("not a plain numeric: " + text.ToString());
        }

        WriteNumericBinary(b, negative, integer, fraction);
    }

    // PostgreSQL's binary numeric: base-10000 digit groups aligned on the decimal point, leading and trailing zero
    // groups dropped, the weight of the first group and the display scale (the fraction's digit count).
    private static void WriteNumericBinary(ScratchBuffer b, bool negative, ReadOnlySpan<char> integer, ReadOnlySpan<char> fraction)
    {
        int scale = fraction.Length;
        int padLeft = (4 - (integer.Length % 4)) % 4;
        int padRight = (4 - (scale % 4)) % 4;
        int total = padLeft + integer.Length + scale + padRight;
        char[]? rented = total > 256 ? System.Buffers.ArrayPool<char>.Shared.Rent(total) : null;
        Span<char> all = (rented ?? stackalloc char[256])[..total];
        all.Fill('0');
        integer.CopyTo(all[padLeft..]);
        fraction.CopyTo(all[(padLeft + integer.Length)..]);

        int groups = total / 4;
        int weight = ((padLeft + integer.Length) / 4) - 1;
        int first = 0;
        while (first < groups && Group(all, first) == 0)
        {
            first++;
            weight--;
        }

        int last = groups;
        while (last > first && Group(all, last - 1) == 0)
        {
            last--;
        }

        int ndigits = last - first;
        if (ndigits == 0)
        {
            weight = 0;
            negative = false;
        }

        Span<byte> s = b.GetSpan(8 + (2 * ndigits));
        BinaryPrimitives.WriteInt16BigEndian(s, (short)ndigits);
        BinaryPrimitives.WriteInt16BigEndian(s[2..], (short)weight);
        BinaryPrimitives.WriteUInt16BigEndian(s[4..], negative ? (ushort)0x4000 : (ushort)0);
        BinaryPrimitives.WriteInt16BigEndian(s[6..], (short)scale);
        for (int i = 0; i < ndigits; i++)
        {
            BinaryPrimitives.WriteInt16BigEndian(s[(8 + (2 * i))..], Group(all, first + i));
        }

        b.Advance(8 + (2 * ndigits));
        if (rented is not null)
        {
            System.Buffers.ArrayPool<char>.Shared.Return(rented);
        }
    }

    private static short Group(ReadOnlySpan<char> all, int index) =>
        (short)(((all[4 * index] - '0') * 1000) + ((all[(4 * index) + 1] - '0') * 100) + ((all[(4 * index) + 2] - '0') * 10) + (all[(4 * index) + 3] - '0'));

    /// <summary>text, varchar, bpchar, unknown (UTF-8 in both formats) and jsonb (binary: version 1 then the text).</summary>
    public static void WriteString(ScratchBuffer b, PgTypeOid oid, PgFormat f, ReadOnlySpan<char> v)
    {
        int offset = 0;
        Span<byte> s = b.GetSpan(Encoding.UTF8.GetMaxByteCount(v.Length) + 1);
        if (oid == PgTypeOid.Jsonb && f == PgFormat.Binary)
        {
            s[0] = 1;
            offset = 1;
        }

        int n = Encoding.UTF8.GetBytes(v, s[offset..]);
        b.Advance(offset + n);
    }

    public static void WriteBytea(ScratchBuffer b, PgFormat f, ReadOnlySpan<byte> v)
    {
        if (f == PgFormat.Binary)
        {
            b.Write(v);
            return;
        }

        Span<byte> s = b.GetSpan(2 + (2 * v.Length));
        s[0] = (byte)'\\';
        s[1] = (byte)'x';
        Convert.TryToHexStringLower(v, s[2..], out int n);
        b.Advance(2 + n);
    }

    /// <summary>DateOnly.MinValue and MaxValue stand for -infinity and infinity, as Npgsql maps them.</summary>
    public static void WriteDate(ScratchBuffer b, PgFormat f, DateOnly v)
    {
        bool infinite = v == DateOnly.MinValue || v == DateOnly.MaxValue;
        if (f == PgFormat.Binary)
        {
            int days = infinite ? (v == DateOnly.MinValue ? int.MinValue : int.MaxValue) : v.DayNumber - EpochDayNumber;
            BinaryPrimitives.WriteInt32BigEndian(b.GetSpan(4), days);
            b.Advance(4);
            return;
        }

        if (infinite)
        {
            b.Advance(Ascii(v == DateOnly.MinValue ? "-infinity" : "infinity", b.GetSpan(16)));
            return;
        }

        v.TryFormat(b.GetSpan(16), out int n, "yyyy-MM-dd", Inv);
        b.Advance(n);
    }

    /// <summary>
    /// timestamp (the DateTime as is) or timestamptz (converted to UTC, printed with +00). DateTime.MinValue
    /// and MaxValue stand for -infinity and infinity, as Npgsql maps them.
    /// </summary>
    public static void WriteDateTime(ScratchBuffer b, PgTypeOid oid, PgFormat f, DateTime v)
    {
        if (oid == PgTypeOid.TimestampTz && v.Kind == DateTimeKind.Local)
        {
            v = v.ToUniversalTime();
        }

        bool infinite = v.Ticks == DateTime.MinValue.Ticks || v.Ticks == DateTime.MaxValue.Ticks;
        if (f == PgFormat.Binary)
        {
            long micros = infinite ? (v.Ticks == 0 ? long.MinValue : long.MaxValue) : (v.Ticks - EpochTicks) / 10;
            BinaryPrimitives.WriteInt64BigEndian(b.GetSpan(8), micros);
            b.Advance(8);
            return;
        }

        if (infinite)
        {
            b.Advance(Ascii(v.Ticks == 0 ? "-infinity" : "infinity", b.GetSpan(16)));
            return;
        }

        Span<byte> s = b.GetSpan(40);
        v.TryFormat(s, out int n, "yyyy-MM-dd HH:mm:ss", Inv);
        n += WriteFraction(s[n..], (int)(v.Ticks % TimeSpan.TicksPerSecond / 10));
        if (oid == PgTypeOid.TimestampTz)
        {
            n += Ascii("+00", s[n..]);
        }

        b.Advance(n);
    }

    public static void WriteInterval(ScratchBuffer b, PgFormat f, PgInterval v)
    {
        if (f == PgFormat.Binary)
        {
            Span<byte> s = b.GetSpan(16);
            BinaryPrimitives.WriteInt64BigEndian(s, v.Microseconds);
            BinaryPrimitives.WriteInt32BigEndian(s[8..], v.Days);
            BinaryPrimitives.WriteInt32BigEndian(s[12..], v.Months);
            b.Advance(16);
            return;
        }

        string text = FormatInterval(v);
        b.Write(Encoding.ASCII.GetBytes(text));
    }

    public static void WriteUuid(ScratchBuffer b, PgFormat f, Guid v)
    {
        if (f == PgFormat.Binary)
        {
            v.TryWriteBytes(b.GetSpan(16), bigEndian: true, out _);
            b.Advance(16);
            return;
        }

        v.TryFormat(b.GetSpan(36), out int n, "D");
        b.Advance(n);
    }

    /// <summary>IntervalStyle postgres, exactly as PostgreSQL's EncodeInterval prints it.</summary>
    public static string FormatInterval(PgInterval v)
    {
        var sb = new StringBuilder(48);
        bool isZero = true;
        bool isBefore = false;
        AddPart(sb, v.Months / 12, "year", ref isZero, ref isBefore);
        AddPart(sb, v.Months % 12, "mon", ref isZero, ref isBefore);
        AddPart(sb, v.Days, "day", ref isZero, ref isBefore);
        long time = v.Microseconds;
        long hour = time / 3_600_000_000;
        long min = time / 60_000_000 % 60;
        long sec = time / 1_000_000 % 60;
        long frac = time % 1_000_000;
        if (isZero || time != 0)
        {
            bool minus = time < 0;
            sb.Append(isZero ? string.Empty : " ");
            sb.Append(minus ? "-" : (isBefore ? "+" : string.Empty));
            sb.Append(Math.Abs(hour).ToString("00", Inv)).Append(':').Append(Math.Abs(min).ToString("00", Inv)).Append(':')
                .Append(Math.Abs(sec).ToString("00", Inv));
            if (frac != 0)
            {
                sb.Append('.').Append(Math.Abs(frac).ToString("000000", Inv).TrimEnd('0'));
            }
        }

        return sb.ToString();
    }

    private static void AddPart(StringBuilder sb, int value, string unit, ref bool isZero, ref bool isBefore)
    {
        if (value == 0)
        {
            return;
        }

        if (!isZero)
        {
            sb.Append(' ');
        }

        if (isBefore && value > 0)
        {
            sb.Append('+');
        }

        sb.Append(value.ToString(Inv)).Append(' ').Append(unit);
        if (value != 1)
        {
            sb.Append('s');
        }

        isBefore = value < 0;
        isZero = false;
    }

    private static int WriteFraction(Span<byte> s, int micros)
    {
        if (micros == 0)
        {
            return 0;
        }

        s[0] = (byte)'.';
        int digits = 6;
        while (micros % 10 == 0)
        {
            micros /= 10;
            digits--;
        }

        for (int i = digits; i >= 1; i--)
        {
            s[i] = (byte)('0' + (micros % 10));
            micros /= 10;
        }

        return digits + 1;
    }

    private static int Ascii(string text, Span<byte> destination) => Encoding.ASCII.GetBytes(text, destination);
}
