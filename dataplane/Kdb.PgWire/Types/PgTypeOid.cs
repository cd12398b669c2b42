namespace Kdb.PgWire.Types;

/// <summary>
/// OIDs of the PostgreSQL built-in types kdb speaks on the wire (values from pg_type.dat).
/// Wire values: never change, only append.
/// </summary>
public enum PgTypeOid : uint
{
    /// <summary>Not specified: the server infers the type (Parse with OID 0).</summary>
    Unspecified = 0,
    Bool = 16,
    Bytea = 17,
    Int8 = 20,
    Int2 = 21,
    Int4 = 23,
    Text = 25,
    Float4 = 700,
    Float8 = 701,
    Unknown = 705,
    Bpchar = 1042,
    Varchar = 1043,
    Date = 1082,
    Timestamp = 1114,
    TimestampTz = 1184,
    Interval = 1186,
    Numeric = 1700,
    Uuid = 2950,
    Jsonb = 3802,

    // Catalog types (pg_catalog queries of psql, Npgsql and pgbench return them), appended later.
    Char = 18,
    Name = 19,
    Int2Vector = 22,
    Regproc = 24,
    Oid = 26,
    OidVector = 30,
    Json = 114,
    Int2Array = 1005,
    Int4Array = 1007,
    TextArray = 1009,
    Int8Array = 1016,
    OidArray = 1028,
    Regclass = 2205,
    Regtype = 2206,
}

/// <summary>Facts about array and vector types.</summary>
public static class PgArrayTypes
{
    /// <summary>The element type of an array or vector type, or <see cref="PgTypeOid.Unspecified"/> when the type is not one.</summary>
    public static PgTypeOid ElementOf(PgTypeOid oid) => oid switch
    {
        PgTypeOid.Int2Array or PgTypeOid.Int2Vector => PgTypeOid.Int2,
        PgTypeOid.Int4Array => PgTypeOid.Int4,
        PgTypeOid.Int8Array => PgTypeOid.Int8,
        PgTypeOid.OidArray or PgTypeOid.OidVector => PgTypeOid.Oid,
        PgTypeOid.TextArray => PgTypeOid.Text,
        _ => PgTypeOid.Unspecified,
    };

    /// <summary>int2vector and oidvector: text form is space-separated and the binary lower bound is 0, as PostgreSQL sends them.</summary>
    public static bool IsVector(PgTypeOid oid) => oid is PgTypeOid.Int2Vector or PgTypeOid.OidVector;
}

/// <summary>Wire format of one value: 0 text, 1 binary (protocol format codes).</summary>
public enum PgFormat : short
{
    Text = 0,
    Binary = 1,
}

/// <summary>A PostgreSQL interval: months, days and microseconds are kept apart, as PostgreSQL does.</summary>
/// <param name="Microseconds">Time part in microseconds.</param>
/// <param name="Days">Day part.</param>
/// <param name="Months">Month part (years are 12 months).</param>
public readonly record struct PgInterval(long Microseconds, int Days, int Months);

/// <summary>Facts about the supported types.</summary>
public static class PgTypes
{
    /// <summary>The pg_type.typlen of a type: fixed size in bytes, or -1 for variable length.</summary>
    public static short SizeOf(PgTypeOid oid) => oid switch
    {
        PgTypeOid.Bool or PgTypeOid.Char => 1,
        PgTypeOid.Int2 => 2,
        PgTypeOid.Int4 or PgTypeOid.Float4 or PgTypeOid.Date or PgTypeOid.Oid or PgTypeOid.Regproc or PgTypeOid.Regclass or PgTypeOid.Regtype => 4,
        PgTypeOid.Name => 64,
        PgTypeOid.Int8 or PgTypeOid.Float8 or PgTypeOid.Timestamp or PgTypeOid.TimestampTz => 8,
        PgTypeOid.Interval or PgTypeOid.Uuid => 16,
        _ => -1,
    };

    /// <summary>True for the types this library can encode and decode in text and binary.</summary>
    public static bool IsSupported(PgTypeOid oid) => oid switch
    {
        PgTypeOid.Bool or PgTypeOid.Bytea or PgTypeOid.Int8 or PgTypeOid.Int2 or PgTypeOid.Int4 or PgTypeOid.Text
            or PgTypeOid.Float4 or PgTypeOid.Float8 or PgTypeOid.Unknown or PgTypeOid.Bpchar or PgTypeOid.Varchar
            or PgTypeOid.Date or PgTypeOid.Timestamp or PgTypeOid.TimestampTz or PgTypeOid.Interval
            or PgTypeOid.Numeric or PgTypeOid.Uuid or PgTypeOid.Jsonb
            or PgTypeOid.Char or PgTypeOid.Name or PgTypeOid.Int2Vector or PgTypeOid.Regproc or PgTypeOid.Oid or PgTypeOid.OidVector
            or PgTypeOid.Json or PgTypeOid.Int2Array or PgTypeOid.Int4Array or PgTypeOid.TextArray or PgTypeOid.Int8Array
            or PgTypeOid.OidArray or PgTypeOid.Regclass or PgTypeOid.Regtype => true,
        _ => false,
    };

    /// <summary>The SQL name of a type (as format_type prints it), for messages.</summary>
    public static string NameOf(PgTypeOid oid) => oid switch
    {
        PgTypeOid.Bool => "boolean",
        PgTypeOid.Bytea => "bytea",
        PgTypeOid.Int8 => "bigint",
        PgTypeOid.Int2 => "smallint",
        PgTypeOid.Int4 => "integer",
        PgTypeOid.Text => "text",
        PgTypeOid.Float4 => "real",
        PgTypeOid.Float8 => "double precision",
        PgTypeOid.Unknown => "unknown",
        PgTypeOid.Bpchar => "character",
        PgTypeOid.Varchar => "character varying",
        PgTypeOid.Date => "date",
        PgTypeOid.Timestamp => "timestamp without time zone",
        PgTypeOid.TimestampTz => "timestamp with time zone",
        PgTypeOid.Interval => "interval",
        PgTypeOid.Numeric => "numeric",
        PgTypeOid.Uuid => "uuid",
        PgTypeOid.Jsonb => "jsonb",
        PgTypeOid.Char => "\"char\"",
        PgTypeOid.Name => "name",
        PgTypeOid.Int2Vector => "int2vector",
        PgTypeOid.Regproc => "regproc",
        PgTypeOid.Oid => "oid",
        PgTypeOid.OidVector => "oidvector",
        PgTypeOid.Json => "json",
        PgTypeOid.Int2Array => "smallint[]",
        PgTypeOid.Int4Array => "integer[]",
        PgTypeOid.TextArray => "text[]",
        PgTypeOid.Int8Array => "bigint[]",
        PgTypeOid.OidArray => "oid[]",
        PgTypeOid.Regclass => "regclass",
        PgTypeOid.Regtype => "regtype",
        _ => "oid " + ((uint)oid).ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
