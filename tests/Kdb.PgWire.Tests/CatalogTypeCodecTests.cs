using System.Buffers.Binary;
using System.Text;
using Kdb.PgWire.Session;
using Kdb.PgWire.Types;

namespace Kdb.PgWire.Tests;

/// <summary>The catalog types psql, Npgsql and pgbench read from pg_catalog: layouts as PostgreSQL 15 sends them.</summary>
public sealed class CatalogTypeCodecTests
{
    private static byte[] Encode(Action<ScratchBuffer> write)
    {
        using var b = new ScratchBuffer(8);
        write(b);
        return b.WrittenSpan.ToArray();
    }

    private static string Text(Action<ScratchBuffer> write) => Encoding.UTF8.GetString(Encode(write));

    [Fact]
    public void WriteOid_BothFormats_UnsignedFourBytesOrDigits()
    {
        Assert.Equal([0xFF, 0xFF, 0xFF, 0xFE], Encode(b => PgValueCodec.WriteOid(b, PgFormat.Binary, 4294967294)));
        Assert.Equal("4294967294", Text(b => PgValueCodec.WriteOid(b, PgFormat.Text, 4294967294)));
    }

    [Fact]
    public void WriteOid_OutOfRange_ThrowsClearError()
    {
        var ex = Assert.Throws<PgException>(() => Encode(b => PgValueCodec.WriteOid(b, PgFormat.Binary, -1)));
        Assert.Equal(PgSqlState.NumericValueOutOfRange, ex.SqlState);
    }

    [Fact]
    public void WriteChar_Binary_OneByteAndZeroForEmpty()
    {
        Assert.Equal([(byte)'r'], Encode(b => PgValueCodec.WriteChar(b, PgFormat.Binary, "r")));
        Assert.Equal([0], Encode(b => PgValueCodec.WriteChar(b, PgFormat.Binary, string.Empty)));
        Assert.Equal("r", Text(b => PgValueCodec.WriteChar(b, PgFormat.Text, "r")));
    }

    [Fact]
    public void WriteIntegerArray_Text_BracesCommasAndNull()
    {
        Assert.Equal("{1,NULL,-3}", Text(b => PgValueCodec.WriteIntegerArray(b, PgTypeOid.Int4Array, PgFormat.Text, [1, 0, -3], [false, true, false])));
        Assert.Equal("{}", Text(b => PgValueCodec.WriteIntegerArray(b, PgTypeOid.Int8Array, PgFormat.Text, [], [])));
    }

    [Fact]
    public void WriteIntegerArray_VectorText_SpaceSeparatedWithoutBraces()
    {
        Assert.Equal("1 3", Text(b => PgValueCodec.WriteIntegerArray(b, PgTypeOid.Int2Vector, PgFormat.Text, [1, 3], [])));
        Assert.Equal(string.Empty, Text(b => PgValueCodec.WriteIntegerArray(b, PgTypeOid.OidVector, PgFormat.Text, [], [])));
    }

    [Fact]
    public void WriteIntegerArray_Binary_ArraySendLayout()
    {
        byte[] bytes = Encode(b => PgValueCodec.WriteIntegerArray(b, PgTypeOid.Int2Array, PgFormat.Binary, [7, 0], [false, true]));
        Assert.Equal(1, BinaryPrimitives.ReadInt32BigEndian(bytes));                 // ndim
        Assert.Equal(1, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(4)));       // has nulls
        Assert.Equal(21u, BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(8)));    // int2
        Assert.Equal(2, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(12)));      // length
        Assert.Equal(1, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)));      // lower bound
        Assert.Equal(2, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));      // element length
        Assert.Equal(7, BinaryPrimitives.ReadInt16BigEndian(bytes.AsSpan(24)));
        Assert.Equal(-1, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(26)));     // NULL
        Assert.Equal(30, bytes.Length);
    }

    [Fact]
    public void WriteIntegerArray_BinaryOidVector_LowerBoundZeroAndUnsignedElements()
    {
        byte[] bytes = Encode(b => PgValueCodec.WriteIntegerArray(b, PgTypeOid.OidVector, PgFormat.Binary, [3000000000], []));
        Assert.Equal(26u, BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(8)));
        Assert.Equal(0, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)));
        Assert.Equal(4, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));
        Assert.Equal(3000000000u, BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(24)));
    }

    [Fact]
    public void WriteIntegerArray_BinaryEmpty_NoDimensions()
    {
        byte[] bytes = Encode(b => PgValueCodec.WriteIntegerArray(b, PgTypeOid.Int4Array, PgFormat.Binary, [], []));
        Assert.Equal(12, bytes.Length);
        Assert.Equal(0, BinaryPrimitives.ReadInt32BigEndian(bytes));
        Assert.Equal(23u, BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(8)));
    }

    [Fact]
    public void WriteStringArray_Text_QuotesLikeArrayOut()
    {
        string text = Text(b => PgValueCodec.WriteStringArray(b, PgFormat.Text, ["a", "b c", string.Empty, "null", "q\"\\", null, "{x}"]));
        Assert.Equal("{a,\"b c\",\"\",\"null\",\"q\\\"\\\\\",NULL,\"{x}\"}", text);
    }

    [Fact]
    public void WriteStringArray_Binary_LengthPrefixedUtf8()
    {
        byte[] bytes = Encode(b => PgValueCodec.WriteStringArray(b, PgFormat.Binary, ["é", null]));
        Assert.Equal(25u, BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(8)));
        Assert.Equal(2, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(12)));
        Assert.Equal(2, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));
        Assert.Equal("é", Encoding.UTF8.GetString(bytes.AsSpan(24, 2)));
        Assert.Equal(-1, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(26)));
    }

    [Theory]
    [InlineData(PgTypeOid.Oid, 4)]
    [InlineData(PgTypeOid.Regclass, 4)]
    [InlineData(PgTypeOid.Name, 64)]
    [InlineData(PgTypeOid.Char, 1)]
    [InlineData(PgTypeOid.TextArray, -1)]
    public void SizeOf_CatalogTypes_MatchesPgType(PgTypeOid oid, short size)
    {
        Assert.Equal(size, PgTypes.SizeOf(oid));
        Assert.True(PgTypes.IsSupported(oid));
    }
}
