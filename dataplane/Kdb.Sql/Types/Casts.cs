using System.Globalization;

namespace Kdb.Sql.Types;

/// <summary>Conversions between types, with PostgreSQL's rounding, range checks and error codes.</summary>
public static class Casts
{
    /// <summary>Rank in the numeric promotion order (int2 &lt; int4 &lt; int8 &lt; numeric &lt; float4 &lt; float8).</summary>
    public static int NumericRank(SqlTypeId id) => id switch
    {
        SqlTypeId.Int2 => 1,
        SqlTypeId.Int4 => 2,
        SqlTypeId.Int8 => 3,
        SqlTypeId.Numeric => 4,
        SqlTypeId.Float4 => 5,
        SqlTypeId.Float8 => 6,
        SqlTypeId.Oid or SqlTypeId.Regclass or SqlTypeId.Regtype or SqlTypeId.Regproc or SqlTypeId.Regnamespace => 3,
        _ => 0,
    };

    /// <summary>True when a value of <paramref name="from"/> converts to <paramref name="to"/> without an explicit cast (operator and function argument resolution).</summary>
    public static bool IsImplicit(SqlType from, SqlType to)
    {
        if (from.Id == to.Id || from.Id == SqlTypeId.Unknown)
        {
            return true;
        }

        if (from.IsNumeric && to.IsNumeric)
        {
            return NumericRank(from.Id) <= NumericRank(to.Id) || to.Id is SqlTypeId.Oid or SqlTypeId.Regclass or SqlTypeId.Regtype;
        }

        if (from.IsString && to.IsString)
        {
            return true;
        }

        return (from.Id, to.Id) switch
        {
            (SqlTypeId.Date, SqlTypeId.Timestamp or SqlTypeId.TimestampTz) => true,
            (SqlTypeId.Timestamp, SqlTypeId.TimestampTz) => true,
            (SqlTypeId.Int2Vector, SqlTypeId.Int2Array) => true,
            (SqlTypeId.OidVector, SqlTypeId.OidArray) => true,
            _ => false,
        };
    }

    /// <summary>True when an assignment (INSERT/UPDATE target) may convert <paramref name="from"/> to <paramref name="to"/>.</summary>
    public static bool IsAssignable(SqlType from, SqlType to) =>
        IsImplicit(from, to)
        || (from.IsNumeric && to.IsNumeric)
        || to.IsString
        || (from.Id is SqlTypeId.Timestamp or SqlTypeId.TimestampTz && to.Id is SqlTypeId.Date or SqlTypeId.Timestamp or SqlTypeId.TimestampTz)
        || (from.Id == SqlTypeId.Jsonb && to.Id == SqlTypeId.Json) || (from.Id == SqlTypeId.Json && to.Id == SqlTypeId.Jsonb);

    /// <summary>True when an explicit CAST exists.</summary>
    public static bool IsExplicit(SqlType from, SqlType to) =>
        IsAssignable(from, to)
        || from.IsString || from.Id == SqlTypeId.Unknown
        || (from.Id == SqlTypeId.Bool && to.Id == SqlTypeId.Int4) || (from.Id == SqlTypeId.Int4 && to.Id == SqlTypeId.Bool)
        || (from.Id == SqlTypeId.Jsonb && to.Id is SqlTypeId.Bool or SqlTypeId.Numeric or SqlTypeId.Int2 or SqlTypeId.Int4 or SqlTypeId.Int8 or SqlTypeId.Float4 or SqlTypeId.Float8);

    /// <summary>Converts <paramref name="value"/> of type <paramref name="from"/> to <paramref name="to"/>; NULL stays NULL.</summary>
    public static Value Convert(in Value value, SqlType from, SqlType to, bool explicitCast = true)
    {
        if (value.IsNull)
        {
            return Value.Null;
        }

        if (from.Id == to.Id && to.Modifier < 0)
        {
            return value;
        }

        switch (to.Id)
        {
            case SqlTypeId.Text or SqlTypeId.Name or SqlTypeId.Char or SqlTypeId.Unknown:
                // bool's cast to text spells the word out (booltext), unlike its output function ('t').
                return Value.FromText(value.Kind switch
                {
                    ValueKind.Text => from.Id == SqlTypeId.Bpchar ? value.AsText.TrimEnd(' ') : value.AsText,
                    ValueKind.Bool => value.AsBool ? "true" : "false",
                    _ => ValueText.Format(value, from),
                });
            case SqlTypeId.Varchar or SqlTypeId.Bpchar:
                var text = value.Kind switch
                {
                    ValueKind.Text => value.AsText,
                    ValueKind.Bool => value.AsBool ? "true" : "false",
                    _ => ValueText.Format(value, from),
                };
                if (from.Id == SqlTypeId.Bpchar)
                {
                    text = text.TrimEnd(' ');
                }

                return Value.FromText(ApplyLengthModifier(text, to, explicitCast));
        }

        if (value.Kind == ValueKind.Text && from.Id != SqlTypeId.Jsonb)
        {
            return ValueText.Parse(from.Id == SqlTypeId.Bpchar ? value.AsText.TrimEnd(' ') : value.AsText, to);
        }

        switch (to.Id)
        {
            case SqlTypeId.Int2:
                return Value.FromInt(ToInteger(value, from, short.MinValue, short.MaxValue, "smallint"));
            case SqlTypeId.Int4:
                return value.Kind == ValueKind.Bool
                    ? Value.FromInt(value.AsBool ? 1 : 0)
                    : Value.FromInt(ToInteger(value, from, int.MinValue, int.MaxValue, "integer"));
            case SqlTypeId.Int8:
                return Value.FromInt(ToInteger(value, from, long.MinValue, long.MaxValue, "bigint"));
            case SqlTypeId.Oid or SqlTypeId.Regclass or SqlTypeId.Regtype or SqlTypeId.Regproc or SqlTypeId.Regnamespace:
                return Value.FromInt(ToInteger(value, from, 0, uint.MaxValue, "oid"));
            case SqlTypeId.Float4:
                return Value.FromFloat(CheckFloat((float)ToDouble(value, from), "real"));
            case SqlTypeId.Float8:
                return Value.FromFloat(ToDouble(value, from));
            case SqlTypeId.Numeric:
                return ApplyNumericModifier(ToNumeric(value, from), to);
            case SqlTypeId.Bool:
                if (value.Kind == ValueKind.Int)
                {
                    return Value.FromBool(value.AsInt != 0);
                }

                if (from.Id == SqlTypeId.Jsonb)
                {
                    return JsonScalar(value, to);
                }

                break;
            case SqlTypeId.Date:
                if (value.Kind == ValueKind.Timestamp)
                {
                    return Value.FromDate((int)Math.Floor(value.AsTimestamp / (double)DateTimeText.MicrosPerDay));
                }

                break;
            case SqlTypeId.Timestamp or SqlTypeId.TimestampTz:
                if (value.Kind == ValueKind.Date)
                {
                    return Value.FromTimestamp(value.AsDate * DateTimeText.MicrosPerDay);
                }

                if (value.Kind == ValueKind.Timestamp)
                {
                    return value;
                }

                break;
            case SqlTypeId.Jsonb or SqlTypeId.Json:
                if (value.Kind == ValueKind.Text)
                {
                    return ValueText.Parse(value.AsText, to);
                }

                break;
            case SqlTypeId.Uuid or SqlTypeId.Interval or SqlTypeId.Bytea:
                if (value.Kind == SqlType.KindOf(to.Id))
                {
                    return value;
                }

                break;
            default:
                if (value.Kind == SqlType.KindOf(to.Id))
                {
                    return value;
                }

                break;
        }

        throw new SqlException(SqlState.CannotCoerce, $"cannot cast type {from.DisplayName} to {to.DisplayName}");
    }

    private static Value JsonScalar(in Value value, SqlType to)
    {
        var text = value.AsText;
        if (to.Id == SqlTypeId.Bool && text is "true" or "false")
        {
            return Value.FromBool(text == "true");
        }

        if (to.Id != SqlTypeId.Bool && text.Length > 0 && (char.IsDigit(text[0]) || text[0] == '-'))
        {
            return ValueText.Parse(text, to);
        }

        throw new SqlException(SqlState.InvalidParameterValue, $"cannot cast jsonb value to type {to.DisplayName}");
    }

    private static long ToInteger(in Value value, SqlType from, long min, long max, string typeName)
    {
        long result;
        switch (value.Kind)
        {
            case ValueKind.Int:
                result = value.AsInt;
                break;
            case ValueKind.Float:
                var d = value.AsFloat;
                if (double.IsNaN(d) || double.IsInfinity(d))
                {
                    throw OutOfRange(typeName);
                }

                // PostgreSQL rounds float to integer with rint: half to even.
                d = Math.Round(d, MidpointRounding.ToEven);
                if (d < min || d > max || d >= 9.2233720368547758E18)
                {
                    throw OutOfRange(typeName);
                }

                result = (long)d;
                break;
            case ValueKind.Numeric:
                var integral = NumericMath.Round(value, 0);
                if (integral.IsBigNumeric)
                {
                    throw OutOfRange(typeName);
                }

                var n = integral.AsNumeric;
                if (n < min || n > max)
                {
                    throw OutOfRange(typeName);
                }

                result = (long)n;
                break;
            case ValueKind.Text when from.Id == SqlTypeId.Jsonb:
                return JsonScalar(value, new SqlType(SqlTypeId.Int8)).AsInt;
            default:
                throw new SqlException(SqlState.CannotCoerce, $"cannot cast type {from.DisplayName} to {typeName}");
        }

        if (result < min || result > max)
        {
            throw OutOfRange(typeName);
        }

        return result;
    }

    private static double ToDouble(in Value value, SqlType from) => value.Kind switch
    {
        ValueKind.Int => value.AsInt,
        ValueKind.Float => value.AsFloat,
        ValueKind.Numeric => value.ToDouble(),
        ValueKind.Text when from.Id == SqlTypeId.Jsonb => JsonScalar(value, SqlType.Float8).AsFloat,
        _ => throw new SqlException(SqlState.CannotCoerce, $"cannot cast type {from.DisplayName} to double precision"),
    };

    private static Value ToNumeric(in Value value, SqlType from)
    {
        switch (value.Kind)
        {
            case ValueKind.Int:
                return Value.FromNumeric(value.AsInt);
            case ValueKind.Numeric:
                return value;
            case ValueKind.Float:
                var d = value.AsFloat;
                if (double.IsNaN(d) || double.IsInfinity(d))
                {
                    throw new SqlException(SqlState.FeatureNotSupported, $"cannot convert {ValueText.FormatFloat(d, false)} to kdb's numeric");
                }

                // Through the shortest text so 0.1::float8::numeric is 0.1, as PostgreSQL prints it.
                return NumericMath.Parse(d.ToString("R", CultureInfo.InvariantCulture));
            case ValueKind.Text when from.Id == SqlTypeId.Jsonb:
                return JsonScalar(value, SqlType.Numeric);
            default:
                throw new SqlException(SqlState.CannotCoerce, $"cannot cast type {from.DisplayName} to numeric");
        }
    }

    private static float CheckFloat(float value, string typeName) =>
        float.IsInfinity(value) ? throw new SqlException(SqlState.NumericValueOutOfRange, $"value out of range: overflow") : value;

    private static SqlException OutOfRange(string typeName) => new(SqlState.NumericValueOutOfRange, $"{typeName} out of range");

    /// <summary>Rounds to numeric(p,s)'s scale and checks its precision (22003 "numeric field overflow").</summary>
    public static Value ApplyNumericModifier(in Value value, SqlType type) =>
        type.Modifier < 4 ? value : NumericMath.ApplyModifier(value, type.Precision, type.Scale);

    /// <summary>varchar(n)/char(n): too long is 22001 unless the excess is spaces or the cast is explicit (then truncated).</summary>
    public static string ApplyLengthModifier(string text, SqlType type, bool explicitCast)
    {
        var max = type.MaxLength;
        if (type.Id == SqlTypeId.Bpchar)
        {
            if (max < 0)
            {
                return text;
            }

            if (text.Length > max)
            {
                if (!explicitCast && text.AsSpan(max).Trim(' ').Length != 0)
                {
                    throw new SqlException(SqlState.StringDataRightTruncation, $"value too long for type character({max})");
                }

                text = text[..max];
            }

            // Stored without trailing blanks: bpchar compares and stores space-insensitively; output pads.
            return text.TrimEnd(' ');
        }

        if (max >= 0 && text.Length > max)
        {
            if (!explicitCast && text.AsSpan(max).Trim(' ').Length != 0)
            {
                throw new SqlException(SqlState.StringDataRightTruncation, $"value too long for type character varying({max})");
            }

            return text[..max];
        }

        return text;
    }
}
