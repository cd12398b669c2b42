using System.Runtime.CompilerServices;

namespace Kdb.Sql.Types;

/// <summary>A PostgreSQL interval: months, days and microseconds kept apart, as PostgreSQL keeps them.</summary>
public readonly record struct Interval(int Months, int Days, long Microseconds) : IComparable<Interval>
{
    /// <summary>The span PostgreSQL compares intervals by (a month is 30 days, a day 24 hours).</summary>
    public Int128 TotalMicroseconds => ((Int128)Months * 30 + Days) * 86_400_000_000L + Microseconds;

    /// <inheritdoc />
    public int CompareTo(Interval other) => TotalMicroseconds.CompareTo(other.TotalMicroseconds);
}

/// <summary>
/// One SQL value. A small struct so that rows are arrays of values without a box per column for the common
/// scalar kinds (bool, integers, floats, dates, timestamps). The static type lives in the plan; the value
/// only knows how it is held (<see cref="Kind"/>).
/// </summary>
public readonly struct Value
{
    private readonly object? _ref;
    private readonly long _bits;

    private Value(ValueKind kind, long bits, object? reference)
    {
        Kind = kind;
        _bits = bits;
        _ref = reference;
    }

    /// <summary>How the value is held; <see cref="ValueKind.Null"/> for SQL NULL.</summary>
    public ValueKind Kind { get; }

    /// <summary>SQL NULL.</summary>
    public static Value Null => default;

    public static readonly Value True = new(ValueKind.Bool, 1, null);
    public static readonly Value False = new(ValueKind.Bool, 0, null);

    public bool IsNull => Kind == ValueKind.Null;

    public static Value FromBool(bool value) => value ? True : False;

    public static Value FromInt(long value) => new(ValueKind.Int, value, null);

    public static Value FromFloat(double value) => new(ValueKind.Float, BitConverter.DoubleToInt64Bits(value), null);

    public static Value FromNumeric(decimal value) => new(ValueKind.Numeric, 0, value);

    /// <summary>A numeric beyond decimal; callers go through <see cref="NumericMath.Make"/>, which keeps values that fit as decimals.</summary>
    internal static Value FromBigNumeric(BigNumeric value) => new(ValueKind.Numeric, 0, value);

    public static Value FromText(string? value) => value is null ? Null : new(ValueKind.Text, 0, value);

    public static Value FromBytes(byte[]? value) => value is null ? Null : new(ValueKind.Bytes, 0, value);

    /// <summary>A date as days since 2000-01-01.</summary>
    public static Value FromDate(int days) => new(ValueKind.Date, days, null);

    /// <summary>A timestamp as microseconds since 2000-01-01 00:00.</summary>
    public static Value FromTimestamp(long micros) => new(ValueKind.Timestamp, micros, null);

    public static Value FromInterval(Interval value) => new(ValueKind.Interval, 0, value);

    public static Value FromUuid(Guid value) => new(ValueKind.Uuid, 0, value);

    public static Value FromArray(Value[]? value) => value is null ? Null : new(ValueKind.Array, 0, value);

    public bool AsBool => _bits != 0;

    public long AsInt => _bits;

    public double AsFloat => BitConverter.Int64BitsToDouble(_bits);

    /// <summary>The numeric as a decimal; a numeric beyond decimal's 28 digits gives 22003 here (see <see cref="IsBigNumeric"/>).</summary>
    public decimal AsNumeric => _ref is decimal d ? d : throw new SqlException(SqlState.NumericValueOutOfRange, "numeric value " + _ref + " does not fit in 28 digits here");

    /// <summary>True for a numeric held as a <see cref="BigNumeric"/> (beyond decimal's range or scale).</summary>
    public bool IsBigNumeric => _ref is BigNumeric;

    public BigNumeric AsBigNumeric => (BigNumeric)_ref!;

    public string AsText => (string)_ref!;

    public byte[] AsBytes => (byte[])_ref!;

    public int AsDate => (int)_bits;

    public long AsTimestamp => _bits;

    public Interval AsInterval => (Interval)_ref!;

    public Guid AsUuid => (Guid)_ref!;

    public Value[] AsArray => (Value[])_ref!;

    /// <summary>The value as a double, for any numeric kind.</summary>
    public double ToDouble() => Kind switch
    {
        ValueKind.Int => _bits,
        ValueKind.Float => AsFloat,
        ValueKind.Numeric => _ref is decimal d ? (double)d : NumericMath.ToDouble(this),
        _ => throw new InvalidOperationException("not a number"),
    };

    /// <summary>The value as a decimal, for int and numeric kinds (and finite floats).</summary>
    public decimal ToDecimal() => Kind switch
    {
        ValueKind.Int => _bits,
        ValueKind.Numeric => AsNumeric,
        ValueKind.Float => (decimal)AsFloat,
        _ => throw new InvalidOperationException("not a number"),
    };

    /// <summary>
    /// Total order used by sorting, grouping, indexes and comparisons: NULL sorts after everything (as
    /// PostgreSQL's default ASC NULLS LAST). Numeric kinds compare across kinds; floats order NaN above
    /// every other number, as PostgreSQL does.
    /// </summary>
    public static int Compare(in Value a, in Value b)
    {
        if (a.Kind == ValueKind.Null)
        {
            return b.Kind == ValueKind.Null ? 0 : 1;
        }

        if (b.Kind == ValueKind.Null)
        {
            return -1;
        }

        if (a.Kind != b.Kind)
        {
            return CompareMixed(a, b);
        }

        switch (a.Kind)
        {
            case ValueKind.Bool:
            case ValueKind.Int:
            case ValueKind.Date:
            case ValueKind.Timestamp:
                return a._bits.CompareTo(b._bits);
            case ValueKind.Float:
                return CompareFloat(a.AsFloat, b.AsFloat);
            case ValueKind.Numeric:
                return a._ref is decimal x && b._ref is decimal y ? x.CompareTo(y) : NumericMath.Compare(a, b);
            case ValueKind.Text:
                return string.CompareOrdinal(a.AsText, b.AsText);
            case ValueKind.Bytes:
                return a.AsBytes.AsSpan().SequenceCompareTo(b.AsBytes);
            case ValueKind.Interval:
                return a.AsInterval.CompareTo(b.AsInterval);
            case ValueKind.Uuid:
                return CompareUuid(a.AsUuid, b.AsUuid);
            case ValueKind.Array:
                return CompareArrays(a.AsArray, b.AsArray);
            default:
                return 0;
        }
    }

    /// <summary>SQL equality of two non-null values (NULL handling is the caller's).</summary>
    public static bool Equal(in Value a, in Value b) => Compare(a, b) == 0;

    private static int CompareMixed(in Value a, in Value b)
    {
        if (IsNumber(a.Kind) && IsNumber(b.Kind))
        {
            if (a.Kind == ValueKind.Float || b.Kind == ValueKind.Float)
            {
                return CompareFloat(a.ToDouble(), b.ToDouble());
            }

            return NumericMath.Compare(a, b);
        }

        if (a.Kind == ValueKind.Date && b.Kind == ValueKind.Timestamp)
        {
            return ((long)a.AsDate * 86_400_000_000L).CompareTo(b._bits);
        }

        if (a.Kind == ValueKind.Timestamp && b.Kind == ValueKind.Date)
        {
            return a._bits.CompareTo((long)b.AsDate * 86_400_000_000L);
        }

        return ((byte)a.Kind).CompareTo((byte)b.Kind);
    }

    private static bool IsNumber(ValueKind kind) => kind is ValueKind.Int or ValueKind.Float or ValueKind.Numeric;

    private static int CompareFloat(double x, double y)
    {
        if (double.IsNaN(x))
        {
            return double.IsNaN(y) ? 0 : 1;
        }

        return double.IsNaN(y) ? -1 : x.CompareTo(y);
    }

    /// <summary>PostgreSQL orders uuids by their bytes in text order, not by .NET's mixed-endian layout.</summary>
    private static int CompareUuid(Guid x, Guid y)
    {
        Span<byte> a = stackalloc byte[16];
        Span<byte> b = stackalloc byte[16];
        x.TryWriteBytes(a, bigEndian: true, out _);
        y.TryWriteBytes(b, bigEndian: true, out _);
        return a.SequenceCompareTo(b);
    }

    private static int CompareArrays(Value[] x, Value[] y)
    {
        var n = Math.Min(x.Length, y.Length);
        for (var i = 0; i < n; i++)
        {
            var c = Compare(x[i], y[i]);
            if (c != 0)
            {
                return c;
            }
        }

        return x.Length.CompareTo(y.Length);
    }

    /// <summary>A hash consistent with <see cref="Compare"/> for values of the same static type.</summary>
    public int GetStableHash() => Kind switch
    {
        ValueKind.Null => 0,
        ValueKind.Bool or ValueKind.Int or ValueKind.Date or ValueKind.Timestamp => _bits.GetHashCode(),
        ValueKind.Float => AsFloat == 0 ? 0 : double.IsNaN(AsFloat) ? 1 : AsFloat.GetHashCode(),
        ValueKind.Numeric => _ref is decimal d ? NumericHash(d) : NumericMath.Hash(AsBigNumeric),
        ValueKind.Text => string.GetHashCode(AsText, StringComparison.Ordinal),
        ValueKind.Bytes => BytesHash(AsBytes),
        ValueKind.Interval => AsInterval.TotalMicroseconds.GetHashCode(),
        ValueKind.Uuid => AsUuid.GetHashCode(),
        ValueKind.Array => ArrayHash(AsArray),
        _ => 0,
    };

    // 1.0 and 1.00 are equal numerics, so the hash must not see the scale.
    private static int NumericHash(decimal value) => (value / 1.0000000000000000000000000000m).GetHashCode();

    private static int BytesHash(byte[] bytes)
    {
        var hash = new HashCode();
        hash.AddBytes(bytes);
        return hash.ToHashCode();
    }

    private static int ArrayHash(Value[] values)
    {
        var hash = new HashCode();
        foreach (var v in values)
        {
            hash.Add(v.GetStableHash());
        }

        return hash.ToHashCode();
    }

    /// <inheritdoc />
    public override string ToString() => ValueText.Format(this, default);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal long RawBits() => _bits;
}

/// <summary>Equality comparer for rows (arrays of values) used by hashing operators: NULLs compare equal here, as GROUP BY and DISTINCT need.</summary>
public sealed class RowComparer : IEqualityComparer<Value[]>
{
    public static readonly RowComparer Instance = new();

    public bool Equals(Value[]? x, Value[]? y)
    {
        if (x is null || y is null)
        {
            return x == y;
        }

        if (x.Length != y.Length)
        {
            return false;
        }

        for (var i = 0; i < x.Length; i++)
        {
            if (Value.Compare(x[i], y[i]) != 0)
            {
                return false;
            }
        }

        return true;
    }

    public int GetHashCode(Value[] obj)
    {
        var hash = new HashCode();
        foreach (var v in obj)
        {
            hash.Add(v.GetStableHash());
        }

        return hash.ToHashCode();
    }
}
