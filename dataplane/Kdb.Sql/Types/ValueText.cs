using System.Globalization;
using System.Text;

namespace Kdb.Sql.Types;

/// <summary>Text input and output of every type, as PostgreSQL 15 prints and reads them.</summary>
public static class ValueText
{
    /// <summary>Formats a value as PostgreSQL's output function does. A default type formats by kind.</summary>
    public static string Format(in Value value, SqlType type)
    {
        switch (value.Kind)
        {
            case ValueKind.Null:
                return "NULL";
            case ValueKind.Bool:
                return value.AsBool ? "t" : "f";
            case ValueKind.Int:
                return value.AsInt.ToString(CultureInfo.InvariantCulture);
            case ValueKind.Float:
                return FormatFloat(value.AsFloat, type.Id == SqlTypeId.Float4);
            case ValueKind.Numeric:
                return value.IsBigNumeric ? value.AsBigNumeric.ToString() : FormatNumeric(value.AsNumeric, type.Scale);
            case ValueKind.Text:
                return type.Id == SqlTypeId.Bpchar && type.MaxLength > 0 ? value.AsText.PadRight(type.MaxLength) : value.AsText;
            case ValueKind.Bytes:
                return "\\x" + Convert.ToHexStringLower(value.AsBytes);
            case ValueKind.Date:
                return DateTimeText.FormatDate(value.AsDate);
            case ValueKind.Timestamp:
                return DateTimeText.FormatTimestamp(value.AsTimestamp, type.Id == SqlTypeId.TimestampTz);
            case ValueKind.Interval:
                return DateTimeText.FormatInterval(value.AsInterval);
            case ValueKind.Uuid:
                return value.AsUuid.ToString("D");
            case ValueKind.Array:
                return type.Id == SqlTypeId.Record ? FormatRecord(value.AsArray) : FormatArray(value.AsArray, type.ElementType ?? SqlType.Text);
            default:
                return string.Empty;
        }
    }

    /// <summary>numeric prints the digits of its own display scale (1.50 stays 1.50), as PostgreSQL does.</summary>
    public static string FormatNumeric(decimal value, int scale)
    {
        _ = scale;
        return value.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>PostgreSQL 12+ prints the shortest text that reads back exactly, switching to exponent form below 1e-4 and from 1e15 (1e6 for real).</summary>
    public static string FormatFloat(double value, bool single)
    {
        if (double.IsNaN(value))
        {
            return "NaN";
        }

        if (double.IsInfinity(value))
        {
            return value > 0 ? "Infinity" : "-Infinity";
        }

        if (value == 0)
        {
            return double.IsNegative(value) ? "-0" : "0";
        }

        var r = single ? ((float)value).ToString("E8", CultureInfo.InvariantCulture) : value.ToString("R", CultureInfo.InvariantCulture);
        if (single)
        {
            // Shortest round-trip digits of the float, not the double.
            r = ((float)value).ToString("R", CultureInfo.InvariantCulture);
        }

        // Decompose the shortest representation into digits and a decimal exponent.
        var negative = r[0] == '-';
        if (negative)
        {
            r = r[1..];
        }

        int exponent;
        string mantissa;
        var e = r.IndexOfAny(['E', 'e']);
        if (e >= 0)
        {
            exponent = int.Parse(r.AsSpan(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            mantissa = r[..e];
        }
        else
        {
            exponent = 0;
            mantissa = r;
        }

        var dot = mantissa.IndexOf('.', StringComparison.Ordinal);
        var intPart = dot >= 0 ? mantissa[..dot] : mantissa;
        var fracPart = dot >= 0 ? mantissa[(dot + 1)..] : string.Empty;
        var digits = (intPart + fracPart).TrimStart('0');
        var leadingZeros = (intPart + fracPart).Length - digits.Length;
        var pointPos = intPart.Length + exponent - leadingZeros; // digits before the decimal point
        digits = digits.TrimEnd('0');
        if (digits.Length == 0)
        {
            return "0";
        }

        var sciExponent = pointPos - 1;
        var sb = new StringBuilder();
        if (negative)
        {
            sb.Append('-');
        }

        var maxExponent = single ? 6 : 15;
        if (sciExponent < -4 || sciExponent >= maxExponent)
        {
            sb.Append(digits[0]);
            if (digits.Length > 1)
            {
                sb.Append('.').Append(digits, 1, digits.Length - 1);
            }

            sb.Append('e').Append(sciExponent < 0 ? '-' : '+').Append(Math.Abs(sciExponent).ToString("D2", CultureInfo.InvariantCulture));
        }
        else if (pointPos <= 0)
        {
            sb.Append("0.").Append('0', -pointPos).Append(digits);
        }
        else if (pointPos >= digits.Length)
        {
            sb.Append(digits).Append('0', pointPos - digits.Length);
        }
        else
        {
            sb.Append(digits, 0, pointPos).Append('.').Append(digits, pointPos, digits.Length - pointPos);
        }

        return sb.ToString();
    }

    /// <summary>record_out: <c>(a,b)</c>; a field is quoted when empty or holding quotes, backslashes, parentheses, commas or spaces.</summary>
    private static string FormatRecord(Value[] fields)
    {
        var sb = new StringBuilder("(");
        for (var i = 0; i < fields.Length; i++)
        {
            if (i > 0)
            {
                sb.Append(',');
            }

            if (fields[i].IsNull)
            {
                continue;
            }

            var text = Format(fields[i], default);
            if (text.Length > 0 && text.AsSpan().IndexOfAny("\"\\(),") < 0 && !text.Any(char.IsWhiteSpace))
            {
                sb.Append(text);
                continue;
            }

            sb.Append('"');
            foreach (var c in text)
            {
                if (c is '"' or '\\')
                {
                    sb.Append(c);
                }

                sb.Append(c);
            }

            sb.Append('"');
        }

        return sb.Append(')').ToString();
    }

    private static string FormatArray(Value[] items, SqlType elementType)
    {
        var sb = new StringBuilder("{");
        for (var i = 0; i < items.Length; i++)
        {
            if (i > 0)
            {
                sb.Append(',');
            }

            if (items[i].IsNull)
            {
                sb.Append("NULL");
                continue;
            }

            var text = Format(items[i], elementType);
            var needsQuotes = text.Length == 0 || text.Equals("NULL", StringComparison.OrdinalIgnoreCase);
            foreach (var c in text)
            {
                if (c is '{' or '}' or ',' or '"' or '\\' or ' ' or '\t' or '\n')
                {
                    needsQuotes = true;
                    break;
                }
            }

            if (needsQuotes)
            {
                sb.Append('"').Append(text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal)).Append('"');
            }
            else
            {
                sb.Append(text);
            }
        }

        return sb.Append('}').ToString();
    }

    /// <summary>Reads text as a value of <paramref name="type"/>; bad input is SQLSTATE 22P02 (or 22007/22008/22003) with PostgreSQL's message.</summary>
    public static Value Parse(string text, SqlType type)
    {
        switch (type.Id)
        {
            case SqlTypeId.Bool:
                return ParseBool(text);
            case SqlTypeId.Int2:
                return Value.FromInt(ParseInteger(text, short.MinValue, short.MaxValue, "smallint"));
            case SqlTypeId.Int4:
                return Value.FromInt(ParseInteger(text, int.MinValue, int.MaxValue, "integer"));
            case SqlTypeId.Int8:
                return Value.FromInt(ParseInteger(text, long.MinValue, long.MaxValue, "bigint"));
            case SqlTypeId.Oid or SqlTypeId.Regclass or SqlTypeId.Regtype or SqlTypeId.Regproc or SqlTypeId.Regnamespace:
                return Value.FromInt(ParseInteger(text, 0, uint.MaxValue, "oid"));
            case SqlTypeId.Float4 or SqlTypeId.Float8:
                return Value.FromFloat(ParseFloat(text, type));
            case SqlTypeId.Numeric:
                return Casts.ApplyNumericModifier(NumericMath.Parse(text), type);
            case SqlTypeId.Bytea:
                return Value.FromBytes(ParseBytea(text));
            case SqlTypeId.Date:
                return DateTimeText.TryParseDate(text, out var days)
                    ? Value.FromDate(days)
                    : throw new SqlException(SqlState.InvalidDatetimeFormat, $"invalid input syntax for type date: \"{text}\"");
            case SqlTypeId.Timestamp or SqlTypeId.TimestampTz:
                return DateTimeText.TryParseTimestamp(text, type.Id == SqlTypeId.TimestampTz, out var micros)
                    ? Value.FromTimestamp(micros)
                    : throw new SqlException(SqlState.InvalidDatetimeFormat, $"invalid input syntax for type {type.DisplayName}: \"{text}\"");
            case SqlTypeId.Interval:
                return DateTimeText.TryParseInterval(text, out var interval)
                    ? Value.FromInterval(interval)
                    : throw new SqlException(SqlState.InvalidDatetimeFormat, $"invalid input syntax for type interval: \"{text}\"");
            case SqlTypeId.Uuid:
                return Guid.TryParse(text.Trim(), out var guid)
                    ? Value.FromUuid(guid)
                    : throw new SqlException(SqlState.InvalidTextRepresentation, $"invalid input syntax for type uuid: \"{text}\"");
            case SqlTypeId.Jsonb or SqlTypeId.Json:
                return Value.FromText(type.Id == SqlTypeId.Jsonb ? Jsonb.Normalize(text) : Jsonb.Validate(text));
            case SqlTypeId.Varchar or SqlTypeId.Bpchar:
                return Value.FromText(Casts.ApplyLengthModifier(text, type, explicitCast: false));
            case SqlTypeId.Int2Array or SqlTypeId.Int4Array or SqlTypeId.Int8Array or SqlTypeId.TextArray or SqlTypeId.OidArray or SqlTypeId.Int2Vector or SqlTypeId.OidVector:
                return ParseArray(text, type);
            default:
                return Value.FromText(text);
        }
    }

    private static Value ParseBool(string text)
    {
        var t = text.Trim().ToLowerInvariant();
        return t switch
        {
            "t" or "tr" or "tru" or "true" or "y" or "ye" or "yes" or "on" or "1" => Value.True,
            "f" or "fa" or "fal" or "fals" or "false" or "n" or "no" or "off" or "of" or "0" => Value.False,
            _ => throw new SqlException(SqlState.InvalidTextRepresentation, $"invalid input syntax for type boolean: \"{text}\""),
        };
    }

    private static long ParseInteger(string text, long min, long max, string typeName)
    {
        var t = text.Trim();
        if (!long.TryParse(t, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v))
        {
            if (t.Length > 0 && decimal.TryParse(t, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _))
            {
                throw new SqlException(SqlState.NumericValueOutOfRange, $"value \"{text}\" is out of range for type {typeName}");
            }

            throw new SqlException(SqlState.InvalidTextRepresentation, $"invalid input syntax for type {typeName}: \"{text}\"");
        }

        if (v < min || v > max)
        {
            throw new SqlException(SqlState.NumericValueOutOfRange, $"value \"{text}\" is out of range for type {typeName}");
        }

        return v;
    }

    private static double ParseFloat(string text, SqlType type)
    {
        var t = text.Trim();
        switch (t.ToLowerInvariant())
        {
            case "nan":
                return double.NaN;
            case "infinity" or "inf" or "+infinity" or "+inf":
                return double.PositiveInfinity;
            case "-infinity" or "-inf":
                return double.NegativeInfinity;
        }

        if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
        {
            throw new SqlException(SqlState.InvalidTextRepresentation, $"invalid input syntax for type {type.DisplayName}: \"{text}\"");
        }

        if (double.IsInfinity(v) || (type.Id == SqlTypeId.Float4 && float.IsInfinity((float)v)))
        {
            throw new SqlException(SqlState.NumericValueOutOfRange, $"\"{text}\" is out of range for type {type.DisplayName}");
        }

        return type.Id == SqlTypeId.Float4 ? (float)v : v;
    }

    private static byte[] ParseBytea(string text)
    {
        if (text.StartsWith("\\x", StringComparison.OrdinalIgnoreCase))
        {
            var hex = text[2..].Replace(" ", string.Empty, StringComparison.Ordinal);
            try
            {
                return Convert.FromHexString(hex);
            }
            catch (FormatException)
            {
                throw new SqlException(SqlState.InvalidTextRepresentation, $"invalid hexadecimal data: \"{text}\"");
            }
        }

        // Escape format: backslash-octal and doubled backslashes.
        var bytes = new List<byte>(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c != '\\')
            {
                foreach (var b in Encoding.UTF8.GetBytes(c.ToString()))
                {
                    bytes.Add(b);
                }

                continue;
            }

            if (i + 1 < text.Length && text[i + 1] == '\\')
            {
                bytes.Add((byte)'\\');
                i++;
            }
            else if (i + 3 < text.Length + 0 && i + 3 <= text.Length - 1 + 1 && IsOctal(text, i + 1))
            {
                bytes.Add((byte)Convert.ToInt32(text.Substring(i + 1, 3), 8));
                i += 3;
            }
            else
            {
                throw new SqlException(SqlState.InvalidTextRepresentation, "invalid input syntax for type bytea");
            }
        }

        return [.. bytes];
    }

    private static bool IsOctal(string s, int at) =>
        at + 2 < s.Length && s[at] is >= '0' and <= '3' && s[at + 1] is >= '0' and <= '7' && s[at + 2] is >= '0' and <= '7';

    private static Value ParseArray(string text, SqlType type)
    {
        var element = type.ElementType ?? SqlType.Text;
        var t = text.Trim();
        if (type.Id is SqlTypeId.Int2Vector or SqlTypeId.OidVector)
        {
            var parts = t.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var values = new Value[parts.Length];
            for (var i = 0; i < parts.Length; i++)
            {
                values[i] = Parse(parts[i], element);
            }

            return Value.FromArray(values);
        }

        if (t.Length < 2 || t[0] != '{' || t[^1] != '}')
        {
            throw new SqlException(SqlState.InvalidTextRepresentation, $"malformed array literal: \"{text}\"", detail: "Array value must start with \"{\" or dimension information.");
        }

        var items = new List<Value>();
        var body = t[1..^1];
        var i2 = 0;
        while (i2 < body.Length)
        {
            var sb = new StringBuilder();
            var quoted = false;
            while (i2 < body.Length && body[i2] == ' ')
            {
                i2++;
            }

            if (i2 < body.Length && body[i2] == '"')
            {
                quoted = true;
                i2++;
                while (i2 < body.Length && body[i2] != '"')
                {
                    if (body[i2] == '\\' && i2 + 1 < body.Length)
                    {
                        i2++;
                    }

                    sb.Append(body[i2++]);
                }

                i2++;
            }
            else
            {
                while (i2 < body.Length && body[i2] != ',')
                {
                    sb.Append(body[i2++]);
                }
            }

            var itemText = quoted ? sb.ToString() : sb.ToString().Trim();
            items.Add(!quoted && itemText.Equals("NULL", StringComparison.OrdinalIgnoreCase) ? Value.Null : Parse(itemText, element));
            while (i2 < body.Length && body[i2] != ',')
            {
                i2++;
            }

            i2++;
        }

        return Value.FromArray([.. items]);
    }
}
