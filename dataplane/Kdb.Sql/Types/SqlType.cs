namespace Kdb.Sql.Types;

/// <summary>
/// The SQL types kdb knows, numbered by their PostgreSQL type OIDs (so the wire layer and pg_catalog need
/// no mapping). Persisted in catalog entries: values are PostgreSQL's and never change.
/// </summary>
public enum SqlTypeId : uint
{
    Bool = 16,
    Bytea = 17,
    Char = 18,
    Name = 19,
    Int8 = 20,
    Int2 = 21,
    Int2Vector = 22,
    Int4 = 23,
    Regproc = 24,
    Text = 25,
    Oid = 26,
    OidVector = 30,
    Json = 114,
    Float4 = 700,
    Float8 = 701,
    Unknown = 705,
    Int2Array = 1005,
    Int4Array = 1007,
    TextArray = 1009,
    Int8Array = 1016,
    OidArray = 1028,
    Bpchar = 1042,
    Varchar = 1043,
    Date = 1082,
    Time = 1083,
    Timestamp = 1114,
    TimestampTz = 1184,
    Interval = 1186,
    Numeric = 1700,
    Regclass = 2205,
    Regtype = 2206,
    Regnamespace = 4089,
    Record = 2249,

    /// <summary>record[]: the SEARCH DEPTH FIRST and CYCLE path columns of a recursive CTE.</summary>
    RecordArray = 2287,
    Void = 2278,
    Uuid = 2950,
    Jsonb = 3802,
}

/// <summary>How values of a type are held in <see cref="Value"/>.</summary>
public enum ValueKind : byte
{
    Null = 0,
    Bool = 1,

    /// <summary>int2, int4, int8, oid and the reg* types: a long.</summary>
    Int = 2,

    /// <summary>float4 and float8: a double.</summary>
    Float = 3,

    /// <summary>numeric: a decimal (28-29 significant digits; kdb's documented limit).</summary>
    Numeric = 4,

    /// <summary>text, varchar, bpchar, name, "char", json(b) text.</summary>
    Text = 5,

    Bytes = 6,

    /// <summary>date: days since 2000-01-01 (PostgreSQL's epoch).</summary>
    Date = 7,

    /// <summary>timestamp and timestamptz: microseconds since 2000-01-01 00:00 (UTC for timestamptz).</summary>
    Timestamp = 8,

    Interval = 9,
    Uuid = 10,

    /// <summary>An array of values (text[], int4[], oid[] in catalog queries).</summary>
    Array = 11,
}

/// <summary>A type with its modifier (typmod): varchar(n) has n + 4, numeric(p,s) has ((p &lt;&lt; 16) | s) + 4, -1 when none.</summary>
public readonly record struct SqlType(SqlTypeId Id, int Modifier = -1)
{
    public static readonly SqlType Bool = new(SqlTypeId.Bool);
    public static readonly SqlType Int2 = new(SqlTypeId.Int2);
    public static readonly SqlType Int4 = new(SqlTypeId.Int4);
    public static readonly SqlType Int8 = new(SqlTypeId.Int8);
    public static readonly SqlType Float4 = new(SqlTypeId.Float4);
    public static readonly SqlType Float8 = new(SqlTypeId.Float8);
    public static readonly SqlType Numeric = new(SqlTypeId.Numeric);
    public static readonly SqlType Text = new(SqlTypeId.Text);
    public static readonly SqlType Varchar = new(SqlTypeId.Varchar);
    public static readonly SqlType Bytea = new(SqlTypeId.Bytea);
    public static readonly SqlType Date = new(SqlTypeId.Date);
    public static readonly SqlType Timestamp = new(SqlTypeId.Timestamp);
    public static readonly SqlType TimestampTz = new(SqlTypeId.TimestampTz);
    public static readonly SqlType Interval = new(SqlTypeId.Interval);
    public static readonly SqlType Uuid = new(SqlTypeId.Uuid);
    public static readonly SqlType Jsonb = new(SqlTypeId.Jsonb);
    public static readonly SqlType Unknown = new(SqlTypeId.Unknown);
    public static readonly SqlType Oid = new(SqlTypeId.Oid);
    public static readonly SqlType Name = new(SqlTypeId.Name);
    public static readonly SqlType TextArray = new(SqlTypeId.TextArray);

    /// <summary>How values of this type are held.</summary>
    public ValueKind Kind => KindOf(Id);

    /// <summary>The type category PostgreSQL uses for implicit-cast resolution.</summary>
    public char Category => Id switch
    {
        SqlTypeId.Bool => 'B',
        SqlTypeId.Int2 or SqlTypeId.Int4 or SqlTypeId.Int8 or SqlTypeId.Float4 or SqlTypeId.Float8 or SqlTypeId.Numeric
            or SqlTypeId.Oid or SqlTypeId.Regclass or SqlTypeId.Regtype or SqlTypeId.Regproc or SqlTypeId.Regnamespace => 'N',
        SqlTypeId.Text or SqlTypeId.Varchar or SqlTypeId.Bpchar or SqlTypeId.Name or SqlTypeId.Char => 'S',
        SqlTypeId.Date or SqlTypeId.Timestamp or SqlTypeId.TimestampTz or SqlTypeId.Time => 'D',
        SqlTypeId.Interval => 'T',
        SqlTypeId.Unknown => 'X',
        SqlTypeId.Int2Array or SqlTypeId.Int4Array or SqlTypeId.Int8Array or SqlTypeId.TextArray or SqlTypeId.OidArray
            or SqlTypeId.Int2Vector or SqlTypeId.OidVector => 'A',
        _ => 'U',
    };

    /// <summary>True for the types of the numeric category.</summary>
    public bool IsNumeric => Category == 'N';

    /// <summary>True for the string category.</summary>
    public bool IsString => Category == 'S';

    /// <summary>Element type of an array type, or null.</summary>
    public SqlType? ElementType => Id switch
    {
        SqlTypeId.Int2Array or SqlTypeId.Int2Vector => Int2,
        SqlTypeId.Int4Array => Int4,
        SqlTypeId.Int8Array => Int8,
        SqlTypeId.TextArray => Text,
        SqlTypeId.OidArray or SqlTypeId.OidVector => Oid,
        SqlTypeId.RecordArray => new SqlType(SqlTypeId.Record),
        _ => null,
    };

    /// <summary>The array type whose elements are this type, or null when kdb has none.</summary>
    public SqlType? ArrayType => Id switch
    {
        SqlTypeId.Int2 => new SqlType(SqlTypeId.Int2Array),
        SqlTypeId.Int4 => new SqlType(SqlTypeId.Int4Array),
        SqlTypeId.Int8 => new SqlType(SqlTypeId.Int8Array),
        SqlTypeId.Text or SqlTypeId.Varchar or SqlTypeId.Name or SqlTypeId.Unknown => TextArray,
        SqlTypeId.Oid => new SqlType(SqlTypeId.OidArray),
        _ => null,
    };

    /// <summary>varchar(n)/char(n) length limit, or -1.</summary>
    public int MaxLength => Modifier >= 4 && Id is SqlTypeId.Varchar or SqlTypeId.Bpchar ? Modifier - 4 : -1;

    /// <summary>numeric precision, or -1.</summary>
    public int Precision => Id == SqlTypeId.Numeric && Modifier >= 4 ? ((Modifier - 4) >> 16) & 0xFFFF : -1;

    /// <summary>numeric scale (-1000..1000, from the typmod's signed 11-bit field), or -1 without a typmod (check Modifier to tell).</summary>
    public int Scale => Id == SqlTypeId.Numeric && Modifier >= 4 ? (((Modifier - 4) & 0x7FF) ^ 0x400) - 0x400 : -1;

    /// <summary>pg_type.typlen.</summary>
    public short Length => Id switch
    {
        SqlTypeId.Bool or SqlTypeId.Char => 1,
        SqlTypeId.Int2 => 2,
        SqlTypeId.Int4 or SqlTypeId.Float4 or SqlTypeId.Date or SqlTypeId.Oid or SqlTypeId.Regclass or SqlTypeId.Regtype or SqlTypeId.Regproc => 4,
        SqlTypeId.Int8 or SqlTypeId.Float8 or SqlTypeId.Timestamp or SqlTypeId.TimestampTz or SqlTypeId.Time => 8,
        SqlTypeId.Interval or SqlTypeId.Uuid => 16,
        SqlTypeId.Name => 64,
        _ => -1,
    };

    /// <summary>The value kind of a type id.</summary>
    public static ValueKind KindOf(SqlTypeId id) => id switch
    {
        SqlTypeId.Bool => ValueKind.Bool,
        SqlTypeId.Int2 or SqlTypeId.Int4 or SqlTypeId.Int8 or SqlTypeId.Oid or SqlTypeId.Regclass or SqlTypeId.Regtype or SqlTypeId.Regproc or SqlTypeId.Regnamespace => ValueKind.Int,
        SqlTypeId.Float4 or SqlTypeId.Float8 => ValueKind.Float,
        SqlTypeId.Numeric => ValueKind.Numeric,
        SqlTypeId.Bytea => ValueKind.Bytes,
        SqlTypeId.Date => ValueKind.Date,
        SqlTypeId.Timestamp or SqlTypeId.TimestampTz => ValueKind.Timestamp,
        SqlTypeId.Interval => ValueKind.Interval,
        SqlTypeId.Uuid => ValueKind.Uuid,
        SqlTypeId.Int2Array or SqlTypeId.Int4Array or SqlTypeId.Int8Array or SqlTypeId.TextArray or SqlTypeId.OidArray
            or SqlTypeId.Int2Vector or SqlTypeId.OidVector => ValueKind.Array,
        SqlTypeId.Record or SqlTypeId.RecordArray => ValueKind.Array, // a row is held as the array of its fields
        _ => ValueKind.Text,
    };

    /// <summary>The name PostgreSQL's format_type prints.</summary>
    public string DisplayName => Id switch
    {
        SqlTypeId.Bool => "boolean",
        SqlTypeId.Int2 => "smallint",
        SqlTypeId.Int4 => "integer",
        SqlTypeId.Int8 => "bigint",
        SqlTypeId.Float4 => "real",
        SqlTypeId.Float8 => "double precision",
        SqlTypeId.Numeric => Modifier >= 4 ? $"numeric({Precision},{Scale})" : "numeric",
        SqlTypeId.Text => "text",
        SqlTypeId.Varchar => Modifier >= 4 ? $"character varying({MaxLength})" : "character varying",
        SqlTypeId.Bpchar => Modifier >= 4 ? $"character({MaxLength})" : "bpchar",
        SqlTypeId.Bytea => "bytea",
        SqlTypeId.Date => "date",
        SqlTypeId.Time => "time without time zone",
        SqlTypeId.Timestamp => "timestamp without time zone",
        SqlTypeId.TimestampTz => "timestamp with time zone",
        SqlTypeId.Interval => "interval",
        SqlTypeId.Uuid => "uuid",
        SqlTypeId.Jsonb => "jsonb",
        SqlTypeId.Json => "json",
        SqlTypeId.Name => "name",
        SqlTypeId.Char => "\"char\"",
        SqlTypeId.Oid => "oid",
        SqlTypeId.Regclass => "regclass",
        SqlTypeId.Regtype => "regtype",
        SqlTypeId.Regproc => "regproc",
        SqlTypeId.Regnamespace => "regnamespace",
        SqlTypeId.Unknown => "unknown",
        SqlTypeId.TextArray => "text[]",
        SqlTypeId.Int2Array => "smallint[]",
        SqlTypeId.Int4Array => "integer[]",
        SqlTypeId.Int8Array => "bigint[]",
        SqlTypeId.OidArray => "oid[]",
        SqlTypeId.Int2Vector => "int2vector",
        SqlTypeId.OidVector => "oidvector",
        SqlTypeId.Void => "void",
        SqlTypeId.Record => "record",
        SqlTypeId.RecordArray => "record[]",
        _ => ((uint)Id).ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>pg_type.typname.</summary>
    public string InternalName => Id switch
    {
        SqlTypeId.Bool => "bool",
        SqlTypeId.Int2 => "int2",
        SqlTypeId.Int4 => "int4",
        SqlTypeId.Int8 => "int8",
        SqlTypeId.Float4 => "float4",
        SqlTypeId.Float8 => "float8",
        SqlTypeId.Numeric => "numeric",
        SqlTypeId.Varchar => "varchar",
        SqlTypeId.Bpchar => "bpchar",
        SqlTypeId.Time => "time",
        SqlTypeId.Timestamp => "timestamp",
        SqlTypeId.TimestampTz => "timestamptz",
        SqlTypeId.Char => "char",
        SqlTypeId.TextArray => "_text",
        SqlTypeId.Int2Array => "_int2",
        SqlTypeId.Int4Array => "_int4",
        SqlTypeId.Int8Array => "_int8",
        SqlTypeId.OidArray => "_oid",
        SqlTypeId.RecordArray => "_record",
        _ => DisplayName,
    };

    /// <inheritdoc />
    public override string ToString() => DisplayName;
}
