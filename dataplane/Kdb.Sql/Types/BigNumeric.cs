using System.Globalization;
using System.Numerics;

namespace Kdb.Sql.Types;

/// <summary>
/// A numeric that does not fit .NET's decimal (more than 28-29 digits, or a scale above 28): an arbitrary-precision
/// integer and a decimal scale, value = <see cref="Unscaled"/> × 10^-<see cref="Scale"/>. Values that fit a decimal
/// are always held as one (<see cref="NumericMath.Make"/> normalizes), so the common case keeps the
/// fast path and this type only appears where PostgreSQL's arbitrary precision is actually used.
/// </summary>
public sealed class BigNumeric
{
    /// <summary>PostgreSQL's limits: 131072 digits before the point, 16383 after (beyond them 22003).</summary>
    public const int MaxIntegerDigits = 131072;

    public const int MaxScale = 16383;

    internal BigNumeric(BigInteger unscaled, int scale)
    {
        Unscaled = unscaled;
        Scale = scale;
    }

    public BigInteger Unscaled { get; }

    /// <summary>The display scale: digits after the point (never negative).</summary>
    public int Scale { get; }

    /// <inheritdoc />
    public override string ToString() => NumericMath.Format(Unscaled, Scale);
}

/// <summary>
/// PostgreSQL numeric arithmetic over <see cref="Value"/>s of kind Numeric (decimal or <see cref="BigNumeric"/>) and
/// Int. Each operation tries decimal first and keeps its answer only when it is exact (decimal silently rounds
/// past 28 digits); otherwise it computes with BigInteger. Display scales follow PostgreSQL: + and - keep the larger
/// scale, * adds them, / uses select_div_scale, % keeps the larger.
/// </summary>
public static class NumericMath
{
    private const int MinSignificantDigits = 16;
    private const int MaxDisplayScale = 1000;
    private const int MaxScale = BigNumeric.MaxScale;
    private const int MaxIntegerDigits = BigNumeric.MaxIntegerDigits;
    private static readonly BigInteger DecimalLimit = BigInteger.One << 96;

    /// <summary>The unscaled integer and scale of an Int or Numeric value.</summary>
    public static (BigInteger Unscaled, int Scale) Parts(in Value value)
    {
        switch (value.Kind)
        {
            case ValueKind.Int:
                return (value.AsInt, 0);
            case ValueKind.Numeric when value.IsBigNumeric:
                var big = value.AsBigNumeric;
                return (big.Unscaled, big.Scale);
            case ValueKind.Numeric:
                return DecimalParts(value.AsNumeric);
            default:
                throw new InvalidOperationException("not an exact number");
        }
    }

    public static (BigInteger Unscaled, int Scale) DecimalParts(decimal d)
    {
        Span<int> bits = stackalloc int[4];
        decimal.GetBits(d, bits);
        var magnitude = ((UInt128)(uint)bits[2] << 64) | ((UInt128)(uint)bits[1] << 32) | (uint)bits[0];
        var unscaled = (BigInteger)magnitude;
        return (bits[3] < 0 ? -unscaled : unscaled, (bits[3] >> 16) & 0xFF);
    }

    /// <summary>A numeric value, held as a decimal when it fits exactly with its scale; 22003 past PostgreSQL's limits.</summary>
    public static Value Make(BigInteger unscaled, int scale)
    {
        if (scale < 0)
        {
            unscaled *= BigInteger.Pow(10, -scale);
            scale = 0;
        }

        if (scale <= 28 && BigInteger.Abs(unscaled) < DecimalLimit)
        {
            var negative = unscaled.Sign < 0;
            var magnitude = (UInt128)BigInteger.Abs(unscaled);
            return Value.FromNumeric(new decimal((int)(uint)magnitude, (int)(uint)(magnitude >> 32), (int)(uint)(magnitude >> 64), negative, (byte)scale));
        }

        if (scale > MaxScale || IntegerDigits(unscaled, scale) > MaxIntegerDigits)
        {
            throw Overflow();
        }

        return Value.FromBigNumeric(new BigNumeric(unscaled, scale));
    }

    public static SqlException Overflow() => new(SqlState.NumericValueOutOfRange, "value overflows numeric format");

    public static Value Add(in Value a, in Value b) => AddOrSubtract(a, b, negate: false);

    public static Value Subtract(in Value a, in Value b) => AddOrSubtract(a, b, negate: true);

    private static Value AddOrSubtract(in Value a, in Value b, bool negate)
    {
        if (!a.IsBigNumeric && !b.IsBigNumeric)
        {
            var x = a.ToDecimal();
            var y = b.ToDecimal();
            try
            {
                var r = negate ? x - y : x + y;
                if (r.Scale == Math.Max(x.Scale, y.Scale))
                {
                    return Value.FromNumeric(r);
                }
            }
            catch (OverflowException)
            {
            }
        }

        var (ua, sa) = Parts(a);
        var (ub, sb) = Parts(b);
        var scale = Math.Max(sa, sb);
        var left = Rescale(ua, sa, scale);
        var right = Rescale(ub, sb, scale);
        return Make(negate ? left - right : left + right, scale);
    }

    public static Value Multiply(in Value a, in Value b)
    {
        if (!a.IsBigNumeric && !b.IsBigNumeric)
        {
            var x = a.ToDecimal();
            var y = b.ToDecimal();
            try
            {
                var r = x * y;
                if (r.Scale == x.Scale + y.Scale)
                {
                    return Value.FromNumeric(r);
                }
            }
            catch (OverflowException)
            {
            }
        }

        var (ua, sa) = Parts(a);
        var (ub, sb) = Parts(b);
        if (sa + sb > MaxScale)
        {
            throw Overflow();
        }

        return Make(ua * ub, sa + sb);
    }

    /// <summary>PostgreSQL's numeric division: select_div_scale's result scale, rounded half away from zero.</summary>
    public static Value Divide(in Value a, in Value b)
    {
        var (ua, sa) = Parts(a);
        var (ub, sb) = Parts(b);
        if (ub.IsZero)
        {
            throw new SqlException(SqlState.DivisionByZero, "division by zero");
        }

        var (w1, d1) = Base10000Head(ua, sa);
        var (w2, d2) = Base10000Head(ub, sb);
        var qweight = w1 - w2;
        if (d1 <= d2)
        {
            qweight--;
        }

        var rscale = MinSignificantDigits - (qweight * 4);
        rscale = Math.Clamp(Math.Max(rscale, Math.Max(sa, sb)), 0, MaxDisplayScale);
        return Make(DivideRounded(ua, sa, ub, sb, rscale), rscale);
    }

    /// <summary>round(a / b, scale) half away from zero, as an unscaled integer of that scale.</summary>
    private static BigInteger DivideRounded(BigInteger ua, int sa, BigInteger ub, int sb, int scale)
    {
        var shift = sb + scale - sa;
        var numerator = shift >= 0 ? ua * BigInteger.Pow(10, shift) : ua;
        var denominator = shift >= 0 ? ub : ub * BigInteger.Pow(10, -shift);
        var quotient = BigInteger.DivRem(numerator, denominator, out var remainder);
        if (!remainder.IsZero && BigInteger.Abs(remainder) * 2 >= BigInteger.Abs(denominator))
        {
            quotient += numerator.Sign == denominator.Sign ? 1 : -1;
        }

        return quotient;
    }

    /// <summary>Remainder of truncating division, with the dividend's sign and the larger scale.</summary>
    public static Value Modulo(in Value a, in Value b)
    {
        var (ua, sa) = Parts(a);
        var (ub, sb) = Parts(b);
        if (ub.IsZero)
        {
            throw new SqlException(SqlState.DivisionByZero, "division by zero");
        }

        var scale = Math.Max(sa, sb);
        return Make(BigInteger.Remainder(Rescale(ua, sa, scale), Rescale(ub, sb, scale)), scale);
    }

    public static Value Negate(in Value a)
    {
        if (!a.IsBigNumeric)
        {
            return Value.FromNumeric(-a.AsNumeric);
        }

        var big = a.AsBigNumeric;
        return Value.FromBigNumeric(new BigNumeric(-big.Unscaled, big.Scale));
    }

    public static Value Abs(in Value a) => Sign(a) < 0 ? Negate(a) : a;

    public static int Sign(in Value a) => a.IsBigNumeric ? a.AsBigNumeric.Unscaled.Sign : Math.Sign(a.ToDecimal());

    /// <summary>round(a, digits) half away from zero (digits may be negative); the result's scale is max(digits, 0).</summary>
    public static Value Round(in Value a, int digits) => RoundTo(a, digits, MidpointRounding.AwayFromZero);

    /// <summary>trunc(a, digits): toward zero.</summary>
    public static Value Truncate(in Value a, int digits) => RoundTo(a, digits, MidpointRounding.ToZero);

    /// <summary>floor or ceil: an integral numeric.</summary>
    public static Value Floor(in Value a, bool ceiling) => RoundTo(a, 0, ceiling ? MidpointRounding.ToPositiveInfinity : MidpointRounding.ToNegativeInfinity);

    private static Value RoundTo(in Value a, int digits, MidpointRounding mode)
    {
        var (u, s) = Parts(a);
        digits = Math.Clamp(digits, -MaxIntegerDigits, MaxScale);
        var resultScale = Math.Max(digits, 0);
        if (digits >= s)
        {
            return Make(Rescale(u, s, resultScale), resultScale);
        }

        var divisor = BigInteger.Pow(10, s - digits);
        var q = BigInteger.DivRem(u, divisor, out var rem);
        if (!rem.IsZero)
        {
            var adjust = mode switch
            {
                MidpointRounding.AwayFromZero => BigInteger.Abs(rem) * 2 >= divisor,
                MidpointRounding.ToPositiveInfinity => rem.Sign > 0,
                MidpointRounding.ToNegativeInfinity => rem.Sign < 0,
                _ => false,
            };
            if (adjust)
            {
                q += mode == MidpointRounding.AwayFromZero ? rem.Sign : mode == MidpointRounding.ToPositiveInfinity ? 1 : -1;
            }
        }

        // q counts units of 10^-digits; a negative digits count puts the zeros back.
        return digits >= 0 ? Make(q, digits) : Make(q * BigInteger.Pow(10, -digits), 0);
    }

    /// <summary>Total order of two exact numbers (Int or Numeric).</summary>
    public static int Compare(in Value a, in Value b)
    {
        if (!a.IsBigNumeric && !b.IsBigNumeric)
        {
            return a.ToDecimal().CompareTo(b.ToDecimal());
        }

        var (ua, sa) = Parts(a);
        var (ub, sb) = Parts(b);
        var scale = Math.Max(sa, sb);
        return Rescale(ua, sa, scale).CompareTo(Rescale(ub, sb, scale));
    }

    /// <summary>A hash equal for equal values whatever their scales (1.0 = 1.000).</summary>
    public static int Hash(BigNumeric value)
    {
        var (u, s) = (value.Unscaled, value.Scale);
        while (s > 0 && BigInteger.Remainder(u, 10).IsZero)
        {
            u /= 10;
            s--;
        }

        var reduced = Make(u, s);
        return reduced.IsBigNumeric ? HashCode.Combine(u, s) : reduced.GetStableHash();
    }

    public static double ToDouble(in Value a) =>
        a.IsBigNumeric ? double.Parse(a.AsBigNumeric.ToString(), NumberStyles.Float, CultureInfo.InvariantCulture) : (double)a.ToDecimal();

    /// <summary>Rounds to numeric(p,s)'s scale and checks its precision (22003 "numeric field overflow").</summary>
    public static Value ApplyModifier(in Value value, int precision, int scale)
    {
        var rounded = Round(value, scale);
        var (u, s) = Parts(rounded);
        // PostgreSQL 15 allows scale < 0 and scale > precision, so the limit on the leading digit's place may be negative.
        var integerDigits = precision - scale;
        if (!u.IsZero && DigitCount(u) - s > integerDigits)
        {
            throw new SqlException(
                SqlState.NumericValueOutOfRange,
                "numeric field overflow",
                detail: $"A field with precision {precision}, scale {scale} must round to an absolute value less than {(integerDigits == 0 ? "1" : "10^" + integerDigits.ToString(CultureInfo.InvariantCulture))}.");
        }

        return rounded;
    }

    /// <summary>Digits before the decimal point (0 for |x| &lt; 1).</summary>
    private static int IntegerDigits(BigInteger unscaled, int scale)
    {
        if (unscaled.IsZero)
        {
            return 0;
        }

        return Math.Max(0, DigitCount(unscaled) - scale);
    }

    private static int DigitCount(BigInteger value)
    {
        value = BigInteger.Abs(value);
        if (value.IsZero)
        {
            return 1;
        }

        // An estimate from the bit length, corrected by one comparison each way.
        var digits = (int)Math.Floor((double)(value.GetBitLength() - 1) * 0.30102999566398119521) + 1;
        var pow = BigInteger.Pow(10, digits - 1);
        if (value < pow)
        {
            return digits - 1;
        }

        return value >= pow * 10 ? digits + 1 : digits;
    }

    /// <summary>The weight and first digit of |u × 10^-s| in PostgreSQL's base-10000 form.</summary>
    private static (int Weight, int FirstDigit) Base10000Head(BigInteger u, int s)
    {
        u = BigInteger.Abs(u);
        if (u.IsZero)
        {
            return (0, 0);
        }

        var exponent = DigitCount(u) - 1 - s; // the value lies in [10^exponent, 10^(exponent+1))
        var weight = (int)Math.Floor(exponent / 4.0);
        var shift = -s - (4 * weight);
        var first = shift >= 0 ? u * BigInteger.Pow(10, shift) : u / BigInteger.Pow(10, -shift);
        return (weight, (int)first);
    }

    private static BigInteger Rescale(BigInteger unscaled, int from, int to) => to == from ? unscaled : unscaled * BigInteger.Pow(10, to - from);

    public static string Format(BigInteger unscaled, int scale)
    {
        var digits = BigInteger.Abs(unscaled).ToString(CultureInfo.InvariantCulture);
        var sign = unscaled.Sign < 0 ? "-" : string.Empty;
        if (scale == 0)
        {
            return sign + digits;
        }

        if (digits.Length <= scale)
        {
            digits = new string('0', scale - digits.Length + 1) + digits;
        }

        return sign + digits[..^scale] + "." + digits[^scale..];
    }

    /// <summary>PostgreSQL's numeric_in: optional sign, digits with one point, optional exponent; 22P02 otherwise.</summary>
    public static Value Parse(string text)
    {
        var t = text.AsSpan().Trim();
        if (t.Equals("NaN", StringComparison.OrdinalIgnoreCase) || t.TrimStart("+-").StartsWith("inf", StringComparison.OrdinalIgnoreCase))
        {
            throw new SqlException(SqlState.FeatureNotSupported, $"numeric \"{text}\" is not supported: kdb's numeric holds finite values only");
        }

        if (decimal.TryParse(t, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var fast)
            && t.Length <= 28)
        {
            return Value.FromNumeric(fast);
        }

        var i = 0;
        var negative = false;
        if (i < t.Length && (t[i] == '+' || t[i] == '-'))
        {
            negative = t[i] == '-';
            i++;
        }

        var digits = new System.Text.StringBuilder();
        var scale = 0;
        var seenPoint = false;
        var seenDigit = false;
        for (; i < t.Length; i++)
        {
            var c = t[i];
            if (c is >= '0' and <= '9')
            {
                digits.Append(c);
                seenDigit = true;
                scale += seenPoint ? 1 : 0;
            }
            else if (c == '.' && !seenPoint)
            {
                seenPoint = true;
            }
            else
            {
                break;
            }
        }

        if (!seenDigit)
        {
            throw InvalidInput(text);
        }

        if (i < t.Length)
        {
            if (t[i] is not ('e' or 'E') || !long.TryParse(t[(i + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var exponent))
            {
                throw InvalidInput(text);
            }

            if (exponent is > MaxIntegerDigits + MaxScale or < -(MaxIntegerDigits + MaxScale))
            {
                throw Overflow();
            }

            scale -= (int)exponent;
        }

        // Checked before any digit is materialized, so a huge exponent never allocates.
        var significant = digits.Length - CountLeadingZeros(digits);
        if (scale > MaxScale || (significant > 0 && significant - scale > MaxIntegerDigits))
        {
            throw Overflow();
        }

        var unscaled = BigInteger.Parse(digits.ToString(), NumberStyles.None, CultureInfo.InvariantCulture);
        return Make(negative ? -unscaled : unscaled, scale);
    }

    private static int CountLeadingZeros(System.Text.StringBuilder digits)
    {
        var n = 0;
        while (n < digits.Length && digits[n] == '0')
        {
            n++;
        }

        return n;
    }

    private static SqlException InvalidInput(string text) => new(SqlState.InvalidTextRepresentation, $"invalid input syntax for type numeric: \"{text}\"");
}
