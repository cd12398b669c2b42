using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Kdb.PgWire.Session;

namespace Kdb.PgWire.Types;

internal static partial class PgValueCodec
{
    public static bool ReadBool(PgFormat f, ReadOnlySpan<byte> d)
    {
        if (f == PgFormat.Binary)
        {
            Need(d, 1, PgTypeOid.Bool);
            return d[0] != 0;
        }

        string s = Text(d).Trim().ToLowerInvariant();
        return s switch
        {
            "t" or "true" or "y" or "yes" or "on" or "1" => true,
            "f" or "false" or "n" or "no" or "off" or "0" => false,
            _ => throw Invalid(PgTypeOid.Bool, s),
        };
    }

    public static long ReadInteger(PgTypeOid oid, PgFormat f, ReadOnlySpan<byte> d)
    {
        if (f == PgFormat.Binary)
        {
            switch (oid)
            {
                case PgTypeOid.Int2:
                    Need(d, 2, oid);
                    return BinaryPrimitives.ReadInt16BigEndian(d);
                case PgTypeOid.Int4:
                    Need(d, 4, oid);
                    return BinaryPrimitives.ReadInt32BigEndian(d);
                case PgTypeOid.Int8:
                    Need(d, 8, oid);
                    return BinaryPrimitives.ReadInt64BigEndian(d);
                case PgTypeOid.Numeric:
                    decimal m = ReadDecimal(f, d);
                    return m == decimal.Truncate(m) && m >= long.MinValue && m <= long.MaxValue ? (long)m : throw Invalid(oid, m.ToString(Inv));
                default:
                    throw WrongType(oid, "an integer");
            }
        }

        // Drivers that bind integers as text (pgbench, libpq) send plain digits: parse those without a string.
        if (!d.IsEmpty && d[0] is > (byte)' ' and < 0x80 && d[^1] is > (byte)' ' and < 0x80
            && long.TryParse(d, NumberStyles.AllowLeadingSign, Inv, out long plain) && plain >= MinOf(oid) && plain <= MaxOf(oid))
        {
            return plain;
        }

        string s = Text(d).Trim();
        if (!long.TryParse(s, NumberStyles.AllowLeadingSign, Inv, out long v))
        {
            // Digits that overflow even int8 are out of range, as in PostgreSQL, not malformed.
            throw IsSignedDigits(s) ? OutOfRange(oid, s) : Invalid(oid, s);
        }

        return v < MinOf(oid) || v > MaxOf(oid) ? throw OutOfRange(oid, s) : v;
    }

    private static PgException OutOfRange(PgTypeOid oid, string s) =>
        new(PgSqlState.NumericValueOutOfRange, $"value \"{s}\" is out of range for type {PgTypes.NameOf(oid)}");

    private static bool IsSignedDigits(string s)
    {
        ReadOnlySpan<char> digits = s.AsSpan(s.StartsWith('-') || s.StartsWith('+') ? 1 : 0);
        return !digits.IsEmpty && !digits.ContainsAnyExceptInRange('0', '9');
    }

    private static long MinOf(PgTypeOid oid) => oid == PgTypeOid.Int2 ? short.MinValue : oid == PgTypeOid.Int4 ? int.MinValue : long.MinValue;

    private static long MaxOf(PgTypeOid oid) => oid == PgTypeOid.Int2 ? short.MaxValue : oid == PgTypeOid.Int4 ? int.MaxValue : long.MaxValue;

    public static double ReadFloat(PgTypeOid oid, PgFormat f, ReadOnlySpan<byte> d)
    {
        if (f == PgFormat.Binary)
        {
            if (oid == PgTypeOid.Float4)
            {
                Need(d, 4, oid);
                return BinaryPrimitives.ReadSingleBigEndian(d);
            }

            Need(d, 8, oid);
            return BinaryPrimitives.ReadDoubleBigEndian(d);
        }

        string s = Text(d).Trim();
        switch (s.ToLowerInvariant())
        {
            case "nan":
                return double.NaN;
            case "infinity" or "inf" or "+infinity" or "+inf":
                return double.PositiveInfinity;
            case "-infinity" or "-inf":
                return double.NegativeInfinity;
        }

        return double.TryParse(s, NumberStyles.Float, Inv, out double v) ? (oid == PgTypeOid.Float4 ? (float)v : v) : throw Invalid(oid, s);
    }

    public static decimal ReadDecimal(PgFormat f, ReadOnlySpan<byte> d)
    {
        if (f == PgFormat.Text)
        {
            string t = Text(d).Trim();
            return decimal.TryParse(t, NumberStyles.Float, Inv, out decimal v) ? v : throw Invalid(PgTypeOid.Numeric, t);
        }

        if (d.Length < 8)
        {
            throw BadBinary(PgTypeOid.Numeric, $"expected at least 8 bytes, got {d.Length}");
        }

        int ndigits = BinaryPrimitives.ReadInt16BigEndian(d);
        int weight = BinaryPrimitives.ReadInt16BigEndian(d[2..]);
        ushort sign = BinaryPrimitives.ReadUInt16BigEndian(d[4..]);
        int dscale = BinaryPrimitives.ReadInt16BigEndian(d[6..]);
        if (ndigits < 0 || d.Length != 8 + (2 * ndigits) || dscale < 0 || (sign != 0 && sign != 0x4000))
        {
            throw BadBinary(PgTypeOid.Numeric, sign == 0xC000 ? "NaN cannot be represented" : "malformed numeric");
        }

        // Rebuild the decimal text PostgreSQL's numeric_out would print, then parse it: decimal keeps the scale.
        var sb = new StringBuilder(16 + (4 * ndigits) + dscale);
        if (sign == 0x4000)
        {
            sb.Append('-');
        }

        if (weight < 0)
        {
            sb.Append('0');
        }

        for (int i = 0; i <= weight; i++)
        {
            int digit = i < ndigits ? BinaryPrimitives.ReadInt16BigEndian(d[(8 + (2 * i))..]) : 0;
            sb.Append(i == 0 ? digit.ToString(Inv) : digit.ToString("0000", Inv));
        }

        if (dscale > 0)
        {
            sb.Append('.');
            int fracStart = sb.Length;
            for (int i = weight + 1; sb.Length - fracStart < dscale; i++)
            {
                int digit = i >= 0 && i < ndigits ? BinaryPrimitives.ReadInt16BigEndian(d[(8 + (2 * i))..]) : 0;
                sb.Append(digit.ToString("0000", Inv));
            }

            sb.Length = fracStart + dscale;
        }

        string text = sb.ToString();
        return decimal.TryParse(text, NumberStyles.Float, Inv, out decimal r)
            ? r
            : throw new PgException(PgSqlState.NumericValueOutOfRange, $"numeric value {text} does not fit in 28 significant digits");
    }

    public static string ReadString(PgTypeOid oid, PgFormat f, ReadOnlySpan<byte> d)
    {
        if (oid == PgTypeOid.Jsonb && f == PgFormat.Binary)
        {
            if (d.Length < 1 || d[0] != 1)
            {
                throw BadBinary(oid, "unsupported jsonb version number");
            }

            d = d[1..];
        }

        try
        {
            return Strict.GetString(d);
        }
        catch (DecoderFallbackException)
        {
            throw new PgException("22021", "invalid byte sequence for encoding \"UTF8\"");
        }
    }

    public static byte[] ReadBytea(PgFormat f, ReadOnlySpan<byte> d)
    {
        if (f == PgFormat.Binary)
        {
            return d.ToArray();
        }

        if (d.Length >= 2 && d[0] == '\\' && d[1] == 'x')
        {
            try
            {
                return Convert.FromHexString(Encoding.ASCII.GetString(d[2..]));
            }
            catch (FormatException)
            {
                throw Invalid(PgTypeOid.Bytea, Text(d));
            }
        }

        // Escape format: \\ is a backslash, \ooo an octal byte, anything else literal.
        var result = new List<byte>(d.Length);
        for (int i = 0; i < d.Length; i++)
        {
            if (d[i] != '\\')
            {
                result.Add(d[i]);
            }
            else if (i + 1 < d.Length && d[i + 1] == '\\')
            {
                result.Add((byte)'\\');
                i++;
            }
            else if (i + 3 < d.Length + 0 && IsOctal(d[i + 1]) && IsOctal(d[i + 2]) && IsOctal(d[i + 3]))
            {
                result.Add((byte)(((d[i + 1] - '0') << 6) | ((d[i + 2] - '0') << 3) | (d[i + 3] - '0')));
                i += 3;
            }
            else
            {
                throw Invalid(PgTypeOid.Bytea, Text(d));
            }
        }

        return [.. result];
    }

    public static DateOnly ReadDate(PgFormat f, ReadOnlySpan<byte> d)
    {
        if (f == PgFormat.Binary)
        {
            Need(d, 4, PgTypeOid.Date);
            int days = BinaryPrimitives.ReadInt32BigEndian(d);
            if (days is int.MinValue or int.MaxValue)
            {
                return days == int.MinValue ? DateOnly.MinValue : DateOnly.MaxValue;
            }

            long dayNumber = (long)days + EpochDayNumber;
            return dayNumber < DateOnly.MinValue.DayNumber || dayNumber > DateOnly.MaxValue.DayNumber
                ? throw BadBinary(PgTypeOid.Date, "date out of range")
                : DateOnly.FromDayNumber((int)dayNumber);
        }

        string s = Text(d).Trim();
        if (s is "infinity" or "-infinity")
        {
            return s[0] == '-' ? DateOnly.MinValue : DateOnly.MaxValue;
        }

        return DateOnly.TryParseExact(s, "yyyy-MM-dd", Inv, DateTimeStyles.None, out DateOnly v) ? v : throw Invalid(PgTypeOid.Date, s);
    }

    /// <summary>timestamp → Kind Unspecified; timestamptz → Kind Utc.</summary>
    public static DateTime ReadDateTime(PgTypeOid oid, PgFormat f, ReadOnlySpan<byte> d)
    {
        DateTimeKind kind = oid == PgTypeOid.TimestampTz ? DateTimeKind.Utc : DateTimeKind.Unspecified;
        if (f == PgFormat.Binary)
        {
            Need(d, 8, oid);
            long micros = BinaryPrimitives.ReadInt64BigEndian(d);
            if (micros is long.MinValue or long.MaxValue)
            {
                return new DateTime(micros == long.MinValue ? DateTime.MinValue.Ticks : DateTime.MaxValue.Ticks, kind);
            }

            long ticks = EpochTicks + (micros * 10);
            return micros > (DateTime.MaxValue.Ticks - EpochTicks) / 10 || micros < -EpochTicks / 10
                ? throw BadBinary(oid, "timestamp out of range")
                : new DateTime(ticks, kind);
        }

        string s = Text(d).Trim();
        if (s is "infinity" or "-infinity")
        {
            return new DateTime(s[0] == '-' ? DateTime.MinValue.Ticks : DateTime.MaxValue.Ticks, kind);
        }

        if (oid == PgTypeOid.TimestampTz)
        {
            // PostgreSQL prints offsets as +HH or +HH:MM; .NET wants +HH:MM.
            string normalized = s.Length > 3 && (s[^3] == '+' || s[^3] == '-') ? s + ":00" : s;
            return DateTimeOffset.TryParse(normalized, Inv, DateTimeStyles.AssumeUniversal, out DateTimeOffset dto)
                ? dto.UtcDateTime
                : throw Invalid(oid, s);
        }

        return DateTime.TryParse(s, Inv, DateTimeStyles.None, out DateTime v)
            ? DateTime.SpecifyKind(v, kind)
            : throw Invalid(oid, s);
    }

    public static PgInterval ReadInterval(PgFormat f, ReadOnlySpan<byte> d)
    {
        if (f == PgFormat.Binary)
        {
            Need(d, 16, PgTypeOid.Interval);
            return new PgInterval(BinaryPrimitives.ReadInt64BigEndian(d), BinaryPrimitives.ReadInt32BigEndian(d[8..]), BinaryPrimitives.ReadInt32BigEndian(d[12..]));
        }

        string s = Text(d).Trim();
        return TryParseInterval(s, out PgInterval v) ? v : throw Invalid(PgTypeOid.Interval, s);
    }

    public static Guid ReadUuid(PgFormat f, ReadOnlySpan<byte> d)
    {
        if (f == PgFormat.Binary)
        {
            Need(d, 16, PgTypeOid.Uuid);
            return new Guid(d, bigEndian: true);
        }

        string s = Text(d).Trim();
        return Guid.TryParse(s, out Guid g) ? g : throw Invalid(PgTypeOid.Uuid, s);
    }

    /// <summary>Parses PostgreSQL's postgres-style interval output ("1 year 2 mons -3 days +04:05:06.5") and unit words.</summary>
    public static bool TryParseInterval(string s, out PgInterval value)
    {
        value = default;
        long micros = 0;
        long days = 0;
        long months = 0;
        string[] tokens = s.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        for (int i = 0; i < tokens.Length; i++)
        {
            string t = tokens[i];
            if (t == "@")
            {
                continue;
            }

            if (t.Contains(':', StringComparison.Ordinal))
            {
                bool negative = t[0] == '-';
                string[] parts = t.TrimStart('+', '-').Split(':');
                if (parts.Length is < 2 or > 3
                    || !long.TryParse(parts[0], NumberStyles.None, Inv, out long h)
                    || !long.TryParse(parts[1], NumberStyles.None, Inv, out long m))
                {
                    return false;
                }

                decimal sec = 0;
                if (parts.Length == 3 && !decimal.TryParse(parts[2], NumberStyles.AllowDecimalPoint, Inv, out sec))
                {
                    return false;
                }

                long total = (h * 3_600_000_000) + (m * 60_000_000) + (long)Math.Round(sec * 1_000_000m);
                micros += negative ? -total : total;
                continue;
            }

            if (i + 1 >= tokens.Length || !decimal.TryParse(t, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, Inv, out decimal n))
            {
                return false;
            }

            string unit = tokens[++i].ToLowerInvariant().TrimEnd('s');
            switch (unit)
            {
                case "year" or "yr" or "y":
                    months += (long)(n * 12);
                    break;
                case "mon" or "month":
                    months += (long)n;
                    break;
                case "week" or "w":
                    days += (long)(n * 7);
                    break;
                case "day" or "d":
                    days += (long)n;
                    break;
                case "hour" or "hr" or "h":
                    micros += (long)(n * 3_600_000_000m);
                    break;
                case "min" or "minute" or "m":
                    micros += (long)(n * 60_000_000m);
                    break;
                case "sec" or "second" or "":
                    micros += (long)(n * 1_000_000m);
                    break;
                default:
                    return false;
            }
        }

        if (months is > int.MaxValue or < int.MinValue || days is > int.MaxValue or < int.MinValue)
        {
            return false;
        }

        value = new PgInterval(micros, (int)days, (int)months);
        return true;
    }

    private static readonly UTF8Encoding Strict = new(false, true);

    private static bool IsOctal(byte b) => b is >= (byte)'0' and <= (byte)'7';

    private static string Text(ReadOnlySpan<byte> d) => Encoding.UTF8.GetString(d);

    private static void Need(ReadOnlySpan<byte> d, int length, PgTypeOid oid)
    {
        if (d.Length != length)
        {
            throw BadBinary(oid, $"expected {length} bytes, got {d.Length}");
        }
    }

    private static PgException Invalid(PgTypeOid oid, string text) =>
        new(PgSqlState.InvalidTextRepresentation, $"invalid input syntax for type {PgTypes.NameOf(oid)}: \"{text}\"");

    private static PgException BadBinary(PgTypeOid oid, string detail) =>
        new(PgSqlState.InvalidBinaryRepresentation, $"incorrect binary data format for type {PgTypes.NameOf(oid)}", detail);

    public static PgException WrongType(PgTypeOid oid, string wanted) =>
        new(PgSqlState.InternalError, $"a value of type {PgTypes.NameOf(oid)} cannot be read or written as {wanted}");
}
