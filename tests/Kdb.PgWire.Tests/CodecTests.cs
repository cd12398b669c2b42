using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Kdb.PgWire.Session;
using Kdb.PgWire.Types;

namespace Kdb.PgWire.Tests;

public sealed class CodecTests
{
    private static byte[] Encode(Action<ScratchBuffer> write)
    {
        using var b = new ScratchBuffer(8);
        write(b);
        return b.WrittenSpan.ToArray();
    }

    [Theory]
    [InlineData("0", new short[] { }, 0, 0, 0)]
    [InlineData("12345.6789", new short[] { 1, 2345, 6789 }, 1, 0, 4)]
    [InlineData("0.0001", new short[] { 1 }, -1, 0, 4)]
    [InlineData("-1.5", new short[] { 1, 5000 }, 0, 0x4000, 1)]
    [InlineData("10000", new short[] { 1 }, 1, 0, 0)]
    [InlineData("0.00", new short[] { }, 0, 0, 2)]
    [InlineData("123456789.000000001", new short[] { 1, 2345, 6789, 0, 0, 1000 }, 2, 0, 9)]
    public void Numeric_Binary_MatchesPostgresLayout(string text, short[] digits, short weight, int sign, short dscale)
    {
        decimal value = decimal.Parse(text, CultureInfo.InvariantCulture);
        byte[] bytes = Encode(b => PgValueCodec.WriteDecimal(b, PgFormat.Binary, value));
        Assert.Equal(digits.Length, BinaryPrimitives.ReadInt16BigEndian(bytes));
        Assert.Equal(weight, BinaryPrimitives.ReadInt16BigEndian(bytes.AsSpan(2)));
        Assert.Equal(sign, BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(4)));
        Assert.Equal(dscale, BinaryPrimitives.ReadInt16BigEndian(bytes.AsSpan(6)));
        for (int i = 0; i < digits.Length; i++)
        {
            Assert.Equal(digits[i], BinaryPrimitives.ReadInt16BigEndian(bytes.AsSpan(8 + (2 * i))));
        }

        decimal back = PgValueCodec.ReadDecimal(PgFormat.Binary, bytes);
        Assert.Equal(text, back.ToString(CultureInfo.InvariantCulture));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("12345.6789")]
    [InlineData("0.0001")]
    [InlineData("-1.5")]
    [InlineData("10000")]
    [InlineData("0.00")]
    [InlineData("123456789.000000001")]
    public void Numeric_FromText_EncodesLikeTheDecimalPath(string text)
    {
        decimal value = decimal.Parse(text, CultureInfo.InvariantCulture);
        Assert.Equal(Encode(b => PgValueCodec.WriteDecimal(b, PgFormat.Binary, value)), Encode(b => PgValueCodec.WriteNumericText(b, PgFormat.Binary, text)));
    }

    [Fact]
    public void Numeric_BeyondDecimal_EncodesEveryDigitGroup()
    {
        // 40 integer digits and 45 fraction digits: far past decimal's 28, and past the 256-char stack buffer once padded.
        string integer = "1234567890123456789012345678901234567890";
        string fraction = "000000000000000000000000000000000000000000001";
        string text = "-" + integer + "." + fraction;
        byte[] bytes = Encode(b => PgValueCodec.WriteNumericText(b, PgFormat.Binary, text));
        short ndigits = BinaryPrimitives.ReadInt16BigEndian(bytes);
        Assert.Equal(9, BinaryPrimitives.ReadInt16BigEndian(bytes.AsSpan(2))); // 40 digits = 10 groups: weight 9
        Assert.Equal(0x4000, BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(4)));
        Assert.Equal(45, BinaryPrimitives.ReadInt16BigEndian(bytes.AsSpan(6)));
        var rebuilt = new System.Text.StringBuilder();
        for (int i = 0; i < ndigits; i++)
        {
            rebuilt.Append(BinaryPrimitives.ReadInt16BigEndian(bytes.AsSpan(8 + (2 * i))).ToString("D4", CultureInfo.InvariantCulture));
        }

        // Groups are aligned on the point: 40 integer digits, then the fraction padded to 48 and cut after its last non-zero group.
        Assert.Equal(integer + fraction + "000", rebuilt.ToString());
        Assert.Equal(System.Text.Encoding.ASCII.GetBytes(text), Encode(b => PgValueCodec.WriteNumericText(b, PgFormat.Text, text)));
        string huge = new('7', 1000);
        Assert.Equal(250, BinaryPrimitives.ReadInt16BigEndian(Encode(b => PgValueCodec.WriteNumericText(b, PgFormat.Binary, huge))));
        Assert.Throws<FormatException>(() => Encode(b => PgValueCodec.WriteNumericText(b, PgFormat.Binary, "1e5")));
    }

    [Fact]
    public void Numeric_NaNBinary_Reports22P03()
    {
        byte[] nan = [0, 0, 0, 0, 0xC0, 0, 0, 0];
        PgException e = Assert.Throws<PgException>(() => PgValueCodec.ReadDecimal(PgFormat.Binary, nan));
        Assert.Equal("22P03", e.SqlState);
    }

    [Theory]
    [InlineData(1e20, "1e+20")]
    [InlineData(0.1, "0.1")]
    [InlineData(-0.0, "-0")]
    [InlineData(123456.789, "123456.789")]
    public void Float8_Text_ShortestRoundTrip(double value, string expected)
    {
        Assert.Equal(expected, Encoding.ASCII.GetString(Encode(b => PgValueCodec.WriteFloat(b, PgTypeOid.Float8, PgFormat.Text, value))));
        Assert.Equal(value, PgValueCodec.ReadFloat(PgTypeOid.Float8, PgFormat.Text, Encoding.ASCII.GetBytes(expected)));
    }

    [Theory]
    [InlineData(0L, 0, 0, "00:00:00")]
    [InlineData(3_600_000_000L, 1, 13, "1 year 1 mon 1 day 01:00:00")]
    [InlineData(-1L, 0, 0, "-00:00:00.000001")]
    [InlineData(0L, -3, 24, "2 years -3 days")]
    [InlineData(90_061_000_000L, 0, -25, "-2 years -1 mons +25:01:01")]
    public void Interval_Text_FormatsLikePostgresAndParsesBack(long micros, int days, int months, string expected)
    {
        var value = new PgInterval(micros, days, months);
        Assert.Equal(expected, PgValueCodec.FormatInterval(value));
        Assert.True(PgValueCodec.TryParseInterval(expected, out PgInterval back));
        Assert.Equal(value, back);
    }

    [Theory]
    [InlineData("2024-03-01 12:00:00+05:30", "2024-03-01T06:30:00.0000000Z")]
    [InlineData("2024-03-01 12:00:00.25+00", "2024-03-01T12:00:00.2500000Z")]
    [InlineData("2024-03-01 12:00:00-08", "2024-03-01T20:00:00.0000000Z")]
    public void TimestampTz_TextWithOffsets_ConvertedToUtc(string text, string expectedUtc)
    {
        DateTime v = PgValueCodec.ReadDateTime(PgTypeOid.TimestampTz, PgFormat.Text, Encoding.ASCII.GetBytes(text));
        Assert.Equal(DateTimeKind.Utc, v.Kind);
        Assert.Equal(expectedUtc, v.ToString("O", CultureInfo.InvariantCulture));
    }

    [Theory]
    [InlineData("\\x00ff10", new byte[] { 0, 255, 16 })]
    [InlineData("a\\\\b\\001", new byte[] { 97, 92, 98, 1 })]
    [InlineData("", new byte[] { })]
    public void Bytea_TextHexAndEscape_Decoded(string text, byte[] expected)
    {
        Assert.Equal(expected, PgValueCodec.ReadBytea(PgFormat.Text, Encoding.ASCII.GetBytes(text)));
    }

    [Theory]
    [InlineData(PgTypeOid.Int8, "0", 0L)]
    [InlineData(PgTypeOid.Int8, "+42", 42L)]
    [InlineData(PgTypeOid.Int8, "-9223372036854775808", long.MinValue)]
    [InlineData(PgTypeOid.Int8, "9223372036854775807", long.MaxValue)]
    [InlineData(PgTypeOid.Int4, "-2147483648", (long)int.MinValue)]
    [InlineData(PgTypeOid.Int2, "32767", (long)short.MaxValue)]
    [InlineData(PgTypeOid.Int4, "  17\t", 17L)]
    public void Text_Integer_ParsesPlainAndPaddedDigits(PgTypeOid type, string text, long expected)
    {
        Assert.Equal(expected, PgValueCodec.ReadInteger(type, PgFormat.Text, Encoding.UTF8.GetBytes(text)));
    }

    [Theory]
    [InlineData(PgTypeOid.Int2, "32768", "22003")]
    [InlineData(PgTypeOid.Int4, "2147483648", "22003")]
    [InlineData(PgTypeOid.Int8, "-99999999999999999999", "22003")]
    [InlineData(PgTypeOid.Int8, "", "22P02")]
    [InlineData(PgTypeOid.Int8, "1 2", "22P02")]
    [InlineData(PgTypeOid.Int8, "12a", "22P02")]
    [InlineData(PgTypeOid.Int8, "--1", "22P02")]
    public void Text_Integer_InvalidOrOutOfRange_ReportsSqlState(PgTypeOid type, string text, string sqlState)
    {
        PgException e = Assert.Throws<PgException>(() => PgValueCodec.ReadInteger(type, PgFormat.Text, Encoding.UTF8.GetBytes(text)));
        Assert.Equal(sqlState, e.SqlState);
    }

    [Theory]
    [InlineData(PgTypeOid.Int2, "40000", "22003")]
    [InlineData(PgTypeOid.Int4, "1.5", "22P02")]
    [InlineData(PgTypeOid.Bool, "maybe", "22P02")]
    [InlineData(PgTypeOid.Date, "2024-13-01", "22P02")]
    [InlineData(PgTypeOid.Uuid, "not-a-uuid", "22P02")]
    [InlineData(PgTypeOid.Interval, "3 fortnights", "22P02")]
    public void Text_Invalid_ReportsSqlState(PgTypeOid type, string text, string sqlState)
    {
        byte[] bytes = Encoding.ASCII.GetBytes(text);
        PgException e = Assert.Throws<PgException>(() =>
        {
            switch (type)
            {
                case PgTypeOid.Bool:
                    PgValueCodec.ReadBool(PgFormat.Text, bytes);
                    break;
                case PgTypeOid.Date:
                    PgValueCodec.ReadDate(PgFormat.Text, bytes);
                    break;
                case PgTypeOid.Uuid:
                    PgValueCodec.ReadUuid(PgFormat.Text, bytes);
                    break;
                case PgTypeOid.Interval:
                    PgValueCodec.ReadInterval(PgFormat.Text, bytes);
                    break;
                default:
                    PgValueCodec.ReadInteger(type, PgFormat.Text, bytes);
                    break;
            }
        });
        Assert.Equal(sqlState, e.SqlState);
    }

    [Fact]
    public void Text_InvalidUtf8_Reports22021()
    {
        PgException e = Assert.Throws<PgException>(() => PgValueCodec.ReadString(PgTypeOid.Text, PgFormat.Binary, [0xC3, 0x28]));
        Assert.Equal("22021", e.SqlState);
    }
}
