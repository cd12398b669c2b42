using System.Buffers;
using Kdb.PgWire.Types;

namespace Kdb.PgWire.Session;

/// <summary>
/// The parameter values of a Bind message, kept in a pooled buffer owned by the portal. The typed
/// getters decode text or binary according to what the client sent; a parameter the client sent as
/// text-like (text, varchar, unknown) is parsed with the requested type's text input rules.
/// Invalid input throws <see cref="PgException"/> (22P02, 22P03, 22003), as PostgreSQL reports it.
/// </summary>
public sealed class PgParameters : IDisposable
{
    // Sized for the largest Bind this instance served: the connection reuses a disposed instance for the next Bind.
    private PgTypeOid[] _types;
    private PgFormat[] _formats;
    private int[] _offsets;
    private int[] _lengths;
    private int _count;
    private byte[]? _data;

    /// <summary>No parameters.</summary>
    public static PgParameters Empty { get; } = new(0);

    internal PgParameters(int capacity)
    {
        _types = new PgTypeOid[capacity];
        _formats = new PgFormat[capacity];
        _offsets = new int[capacity];
        _lengths = new int[capacity];
    }

    /// <summary>Number of parameters.</summary>
    public int Count => _count;

    /// <summary>Makes room for <paramref name="count"/> parameters and takes ownership of the rented value buffer.</summary>
    internal void Reset(int count, byte[] rentedData)
    {
        if (_types.Length < count)
        {
            _types = new PgTypeOid[count];
            _formats = new PgFormat[count];
            _offsets = new int[count];
            _lengths = new int[count];
        }

        _count = count;
        _data = rentedData;
    }

    /// <summary>Forgets the value buffer without returning it to the pool (its owner lent it, as binary COPY does).</summary>
    internal void Detach() => _data = null;

    /// <summary>Sets parameter <paramref name="index"/> (after <see cref="Reset"/>).</summary>
    internal void Set(int index, PgTypeOid type, PgFormat format, int offset, int length)
    {
        _types[index] = type;
        _formats[index] = format;
        _offsets[index] = offset;
        _lengths[index] = length;
    }

    /// <summary>The parameter's resolved type (from Parse or from the statement's inference).</summary>
    public PgTypeOid TypeOf(int index) => _types[index];

    /// <summary>The format the client sent the value in.</summary>
    public PgFormat FormatOf(int index) => _formats[index];

    /// <summary>True when the value is SQL NULL.</summary>
    public bool IsNull(int index) => _lengths[index] < 0;

    /// <summary>The raw bytes as received (valid until the portal is disposed).</summary>
    public ReadOnlySpan<byte> GetRaw(int index) =>
        _lengths[index] < 0 ? throw new InvalidOperationException($"parameter ${index + 1} is null") : _data.AsSpan(_offsets[index], _lengths[index]);

    /// <summary>A boolean value.</summary>
    public bool GetBoolean(int index) => PgValueCodec.ReadBool(Fmt(index, PgTypeOid.Bool), GetRaw(index));

    /// <summary>An integer value (int2, int4, int8, or numeric without fraction).</summary>
    public long GetInt64(int index) => PgValueCodec.ReadInteger(Type(index, PgTypeOid.Int8), Fmt(index, PgTypeOid.Int8), GetRaw(index));

    /// <summary>A float4 or float8 value.</summary>
    public double GetDouble(int index)
    {
        PgTypeOid t = Type(index, PgTypeOid.Float8);
        return t is PgTypeOid.Int2 or PgTypeOid.Int4 or PgTypeOid.Int8
            ? PgValueCodec.ReadInteger(t, _formats[index], GetRaw(index))
            : t == PgTypeOid.Numeric ? (double)PgValueCodec.ReadDecimal(_formats[index], GetRaw(index)) : PgValueCodec.ReadFloat(t, Fmt(index, t), GetRaw(index));
    }

    /// <summary>A numeric value (also accepts integer types).</summary>
    public decimal GetDecimal(int index)
    {
        PgTypeOid t = Type(index, PgTypeOid.Numeric);
        return t is PgTypeOid.Int2 or PgTypeOid.Int4 or PgTypeOid.Int8
            ? PgValueCodec.ReadInteger(t, _formats[index], GetRaw(index))
            : PgValueCodec.ReadDecimal(Fmt(index, PgTypeOid.Numeric), GetRaw(index));
    }

    /// <summary>A string value (text, varchar, bpchar, unknown, jsonb).</summary>
    public string GetString(int index) => PgValueCodec.ReadString(_types[index], _formats[index], GetRaw(index));

    /// <summary>A bytea value.</summary>
    public byte[] GetBytes(int index) => PgValueCodec.ReadBytea(Fmt(index, PgTypeOid.Bytea), GetRaw(index));

    /// <summary>A date value.</summary>
    public DateOnly GetDate(int index) => PgValueCodec.ReadDate(Fmt(index, PgTypeOid.Date), GetRaw(index));

    /// <summary>A timestamp (Kind Unspecified) or timestamptz (Kind Utc) value.</summary>
    public DateTime GetDateTime(int index) => PgValueCodec.ReadDateTime(Type(index, PgTypeOid.Timestamp), Fmt(index, PgTypeOid.Timestamp), GetRaw(index));

    /// <summary>An interval value.</summary>
    public PgInterval GetInterval(int index) => PgValueCodec.ReadInterval(Fmt(index, PgTypeOid.Interval), GetRaw(index));

    /// <summary>A uuid value.</summary>
    public Guid GetGuid(int index) => PgValueCodec.ReadUuid(Fmt(index, PgTypeOid.Uuid), GetRaw(index));

    private static bool IsTextLike(PgTypeOid t) => t is PgTypeOid.Text or PgTypeOid.Varchar or PgTypeOid.Bpchar or PgTypeOid.Unknown;

    // A text-like parameter carries UTF-8 text in either format: parse it with the wanted type's text rules.
    private PgFormat Fmt(int index, PgTypeOid wanted) => IsTextLike(_types[index]) && !IsTextLike(wanted) ? PgFormat.Text : _formats[index];

    private PgTypeOid Type(int index, PgTypeOid fallback) => IsTextLike(_types[index]) ? fallback : _types[index];

    /// <summary>Returns the pooled buffer; the portal calls this when it closes.</summary>
    public void Dispose()
    {
        byte[]? data = Interlocked.Exchange(ref _data, null);
        if (data is not null)
        {
            ArrayPool<byte>.Shared.Return(data);
        }
    }
}
