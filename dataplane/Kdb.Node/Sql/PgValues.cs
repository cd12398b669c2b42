using System.Text;
using Kdb.PgWire.Session;
using Kdb.PgWire.Types;
using Kdb.Sql.Types;

namespace Kdb.Node.Sql;

/// <summary>
/// Maps SQL engine types and values onto the wire: type OIDs are the same numbers on both sides, so the
/// mapping only decides which <see cref="PgRowWriter"/> call encodes a value and which <see cref="PgParameters"/>
/// getter decodes one. A type the protocol library cannot encode travels as text.
/// </summary>
internal static class PgValues
{
    // PostgreSQL's epoch, 2000-01-01: the engine's dates count days and its timestamps microseconds from it.
    private static readonly long EpochTicks = new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc).Ticks;
    private static readonly int EpochDayNumber = new DateOnly(2000, 1, 1).DayNumber;

    /// <summary>The OID a column or parameter of <paramref name="type"/> is described with.</summary>
    public static PgTypeOid WireType(SqlType type)
    {
        var oid = (PgTypeOid)(uint)type.Id;
        return oid == PgTypeOid.Unknown ? PgTypeOid.Text : PgTypes.IsSupported(oid) ? oid : PgTypeOid.Text;
    }

    /// <summary>RowDescription fields of a result column.</summary>
    public static PgColumn Column(Kdb.Sql.Planning.ResultColumn column)
    {
        var wire = WireType(column.Type);
        var typmod = (uint)wire == (uint)column.Type.Id ? column.Type.Modifier : -1;
        return new PgColumn(column.Name, wire, typmod, column.TableOid, column.AttNum);
    }

    /// <summary>Writes one value of a column whose wire type is <paramref name="wire"/>.</summary>
    public static void Write(PgRowWriter rows, in Value value, SqlType type, PgTypeOid wire)
    {
        if (value.IsNull)
        {
            rows.WriteNull();
            return;
        }

        if (value.Kind != SqlType.KindOf(type.Id) && wire != PgTypeOid.Text)
        {
            // The engine produced a value of another kind than it described: a bug below us, reported as such.
            throw new PgException(PgSqlState.InternalError, $"column of type {type} produced a {value.Kind} value");
        }

        switch (wire)
        {
            case PgTypeOid.Bool:
                rows.WriteBoolean(value.AsBool);
                break;
            case PgTypeOid.Int2 or PgTypeOid.Int4 or PgTypeOid.Int8 or PgTypeOid.Oid or PgTypeOid.Regclass or PgTypeOid.Regtype or PgTypeOid.Regproc:
                rows.WriteInt64(value.AsInt);
                break;
            case PgTypeOid.Float4 or PgTypeOid.Float8:
                rows.WriteDouble(value.AsFloat);
                break;
            case PgTypeOid.Numeric when value.IsBigNumeric:
                rows.WriteNumericText(ValueText.Format(value, type));
                break;
            case PgTypeOid.Numeric:
                rows.WriteDecimal(WithScale(value.AsNumeric, type.Scale));
                break;
            case PgTypeOid.Bpchar:
                rows.WriteString(ValueText.Format(value, type));
                break;
            case PgTypeOid.Varchar or PgTypeOid.Name or PgTypeOid.Char or PgTypeOid.Json or PgTypeOid.Jsonb:
                rows.WriteString(value.AsText);
                break;
            case PgTypeOid.Text:
                rows.WriteString(value.Kind == ValueKind.Text ? value.AsText : ValueText.Format(value, type));
                break;
            case PgTypeOid.Bytea:
                rows.WriteBytes(value.AsBytes);
                break;
            case PgTypeOid.Date:
                rows.WriteDate(DateOnly.FromDayNumber(EpochDayNumber + value.AsDate));
                break;
            case PgTypeOid.Timestamp:
                rows.WriteDateTime(new DateTime(EpochTicks + (value.AsTimestamp * 10), DateTimeKind.Unspecified));
                break;
            case PgTypeOid.TimestampTz:
                rows.WriteDateTime(new DateTime(EpochTicks + (value.AsTimestamp * 10), DateTimeKind.Utc));
                break;
            case PgTypeOid.Interval:
                var interval = value.AsInterval;
                rows.WriteInterval(new PgInterval(interval.Microseconds, interval.Days, interval.Months));
                break;
            case PgTypeOid.Uuid:
                rows.WriteGuid(value.AsUuid);
                break;
            case PgTypeOid.TextArray:
                WriteTextArray(rows, value.AsArray);
                break;
            case PgTypeOid.Int2Array or PgTypeOid.Int4Array or PgTypeOid.Int8Array or PgTypeOid.OidArray or PgTypeOid.Int2Vector or PgTypeOid.OidVector:
                WriteIntegerArray(rows, value.AsArray);
                break;
            default:
                rows.WriteString(ValueText.Format(value, type));
                break;
        }
    }

    /// <summary>Writes the text form of a regclass, regtype or regnamespace value (its name) in a text-format column.</summary>
    public static void WriteName(PgRowWriter rows, string name, PgTypeOid wire)
    {
        if (wire == PgTypeOid.Text)
        {
            rows.WriteString(name);
            return;
        }

        // The wire type is regclass/regtype, which PgRowWriter encodes only as oids: the text form goes through raw.
        Span<byte> utf8 = name.Length <= 128 ? stackalloc byte[Encoding.UTF8.GetMaxByteCount(name.Length)] : new byte[Encoding.UTF8.GetMaxByteCount(name.Length)];
        rows.WriteRaw(utf8[..Encoding.UTF8.GetBytes(name, utf8)]);
    }

    /// <summary>numeric(p,s) prints every digit of its scale: 1.5 in a numeric(10,2) column is 1.50.</summary>
    private static decimal WithScale(decimal value, int scale)
    {
        if (scale is < 0 or > 28)
        {
            return value;
        }

        // Adding a zero of scale s raises a decimal's scale to s without changing its value (and without allocating).
        return Math.Round(value, scale, MidpointRounding.AwayFromZero) + new decimal(0, 0, 0, false, (byte)scale);
    }

    private static void WriteTextArray(PgRowWriter rows, Value[] elements)
    {
        var texts = new string?[elements.Length];
        for (var i = 0; i < elements.Length; i++)
        {
            texts[i] = elements[i].IsNull ? null : elements[i].Kind == ValueKind.Text ? elements[i].AsText : ValueText.Format(elements[i], default);
        }

        rows.WriteStringArray(texts);
    }

    private static void WriteIntegerArray(PgRowWriter rows, Value[] elements)
    {
        Span<long> values = elements.Length <= 64 ? stackalloc long[elements.Length] : new long[elements.Length];
        Span<bool> nulls = elements.Length <= 64 ? stackalloc bool[elements.Length] : new bool[elements.Length];
        for (var i = 0; i < elements.Length; i++)
        {
            nulls[i] = elements[i].IsNull;
            values[i] = elements[i].IsNull ? 0 : elements[i].AsInt;
        }

        rows.WriteIntegerArray(values, nulls);
    }

    /// <summary>Decodes parameter <paramref name="index"/> as a value of <paramref name="type"/> (its resolved type).</summary>
    public static Value Read(PgParameters parameters, int index, SqlType type)
    {
        if (parameters.IsNull(index))
        {
            return Value.Null;
        }

        switch (type.Id)
        {
            case SqlTypeId.Bool:
                return Value.FromBool(parameters.GetBoolean(index));
            case SqlTypeId.Int2 or SqlTypeId.Int4 or SqlTypeId.Int8:
                return Value.FromInt(parameters.GetInt64(index));
            case SqlTypeId.Float4 or SqlTypeId.Float8:
                return Value.FromFloat(parameters.GetDouble(index));
            case SqlTypeId.Numeric:
                return Value.FromNumeric(parameters.GetDecimal(index));
            case SqlTypeId.Text or SqlTypeId.Varchar or SqlTypeId.Bpchar or SqlTypeId.Unknown or SqlTypeId.Name:
                return Value.FromText(parameters.GetString(index));
            case SqlTypeId.Bytea:
                return Value.FromBytes(parameters.GetBytes(index));
            case SqlTypeId.Date:
                return Value.FromDate(parameters.GetDate(index).DayNumber - EpochDayNumber);
            case SqlTypeId.Timestamp or SqlTypeId.TimestampTz:
                var dateTime = parameters.GetDateTime(index);
                if (type.Id == SqlTypeId.TimestampTz && dateTime.Kind == DateTimeKind.Local)
                {
                    dateTime = dateTime.ToUniversalTime();
                }

                return Value.FromTimestamp((dateTime.Ticks - EpochTicks) / 10);
            case SqlTypeId.Interval:
                var interval = parameters.GetInterval(index);
                return Value.FromInterval(new Interval(interval.Months, interval.Days, interval.Microseconds));
            case SqlTypeId.Uuid:
                return Value.FromUuid(parameters.GetGuid(index));
            case SqlTypeId.Jsonb or SqlTypeId.Json:
                // The engine validates and normalizes jsonb on input.
                return ParseText(parameters.GetString(index), type);
            case SqlTypeId.Oid or SqlTypeId.Regclass or SqlTypeId.Regtype or SqlTypeId.Regproc when parameters.FormatOf(index) == PgFormat.Binary:
                var raw = parameters.GetRaw(index);
                return raw.Length == 4
                    ? Value.FromInt(System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(raw))
                    : throw new PgException(PgSqlState.InvalidBinaryRepresentation, $"incorrect binary data format for type {type}");
            default:
                if (parameters.FormatOf(index) == PgFormat.Binary)
                {
                    throw new PgException(PgSqlState.FeatureNotSupported, $"binary parameters of type {type} are not supported; send them as text");
                }

                return ParseText(Utf8(parameters.GetRaw(index)), type);
        }
    }

    private static Value ParseText(string text, SqlType type)
    {
        try
        {
            return ValueText.Parse(text, type);
        }
        catch (Kdb.Sql.SqlException e)
        {
            throw SqlErrors.ToPg(e);
        }
    }

    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    private static string Utf8(ReadOnlySpan<byte> bytes)
    {
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw new PgException("22021", "invalid byte sequence for encoding \"UTF8\"");
        }
    }
}
