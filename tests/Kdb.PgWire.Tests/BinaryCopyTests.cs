using System.Buffers.Binary;
using Kdb.PgWire.Session;
using Kdb.PgWire.Types;

namespace Kdb.PgWire.Tests;

/// <summary>
/// COPY's binary format: tuples written by <see cref="PgBinaryCopyWriter"/> read back by
/// <see cref="PgBinaryCopyReader"/> however the stream is cut into CopyData chunks; every truncation, a bad header
/// and random bytes give 22P04 (or another PgException), never a crash.
/// </summary>
public sealed class BinaryCopyTests
{
    private static readonly PgColumn[] Columns = [new("id", PgTypeOid.Int4), new("name", PgTypeOid.Text), new("ok", PgTypeOid.Bool), new("big", PgTypeOid.Int8)];
    private static readonly PgTypeOid[] Types = [PgTypeOid.Int4, PgTypeOid.Text, PgTypeOid.Bool, PgTypeOid.Int8];

    private static byte[] Stream(int rows, bool trailer = true)
    {
        var bytes = new List<byte>(PgBinaryCopy.Header());
        using var writer = new PgBinaryCopyWriter(Columns);
        for (var i = 0; i < rows; i++)
        {
            writer.Row.BeginRow();
            writer.Row.WriteInt64(i);
            if (i % 3 == 1)
            {
                writer.Row.WriteNull();
            }
            else
            {
                writer.Row.WriteString("name é " + i);
            }

            writer.Row.WriteBoolean(i % 2 == 0);
            writer.Row.WriteInt64(long.MaxValue - i);
            bytes.AddRange(writer.EndRow().ToArray());
        }

        if (trailer)
        {
            bytes.AddRange(PgBinaryCopy.Trailer());
        }

        return [.. bytes];
    }

    private static List<string> Read(byte[] data, int chunkSize)
    {
        var rows = new List<string>();
        using var reader = new PgBinaryCopyReader(Types);
        for (var at = 0; at < data.Length; at += chunkSize)
        {
            reader.Feed(data.AsSpan(at, Math.Min(chunkSize, data.Length - at)), f =>
                rows.Add($"{f.GetInt64(0)}|{(f.IsNull(1) ? "<null>" : f.GetString(1))}|{f.GetBoolean(2)}|{f.GetInt64(3)}"));
        }

        reader.Finish();
        Assert.Equal(rows.Count, reader.Rows);
        return rows;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(4096)]
    public void RoundTrip_AnyChunking_ReadsEveryRow(int chunkSize)
    {
        var rows = Read(Stream(5), chunkSize);

        Assert.Equal(5, rows.Count);
        Assert.Equal($"0|name é 0|True|{long.MaxValue}", rows[0]);
        Assert.Equal($"1|<null>|False|{long.MaxValue - 1}", rows[1]);
    }

    [Fact]
    public void NoTrailer_OnTupleBoundary_IsAccepted_AsPostgresDoes()
    {
        Assert.Equal(2, Read(Stream(2, trailer: false), 5).Count);
        Assert.Empty(Read(PgBinaryCopy.Header(), 1));
    }

    [Fact]
    public void EveryTruncation_IsAnErrorOrAWholeTuplePrefix()
    {
        var data = Stream(3);
        var boundaries = 0;
        for (var length = 0; length < data.Length; length++)
        {
            try
            {
                var rows = Read(data[..length], 4);
                boundaries++;
                Assert.InRange(rows.Count, 0, 3);
            }
            catch (PgException e)
            {
                Assert.Equal("22P04", e.SqlState);
            }
        }

        // The header alone and each whole tuple (without the trailer) are valid streams.
        Assert.Equal(4, boundaries);
    }

    [Theory]
    [InlineData("PGCOPX\n\u00ff\r\n\0")]
    [InlineData("hello, world, this is text")]
    public void BadSignature_Is22P04(string text)
    {
        var data = text.Select(c => (byte)c).Concat(new byte[8]).ToArray();
        using var reader = new PgBinaryCopyReader(Types);

        var e = Assert.Throws<PgException>(() => reader.Feed(data, _ => { }));

        Assert.Equal("22P04", e.SqlState);
        Assert.Contains("signature", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HeaderFlagsFieldCountsSizesAndTrailingData_AreChecked()
    {
        static PgException Fails(byte[] data)
        {
            using var reader = new PgBinaryCopyReader(Types);
            return Assert.Throws<PgException>(() =>
            {
                reader.Feed(data, _ => { });
                reader.Finish();
            });
        }

        var withOids = PgBinaryCopy.Header();
        BinaryPrimitives.WriteInt32BigEndian(withOids.AsSpan(11), 1 << 16);
        Assert.Contains("WITH OIDS", Fails(withOids).Message, StringComparison.Ordinal);

        var critical = PgBinaryCopy.Header();
        BinaryPrimitives.WriteInt32BigEndian(critical.AsSpan(11), 1 << 20);
        Assert.Contains("critical flags", Fails(critical).Message, StringComparison.Ordinal);

        var wrongCount = PgBinaryCopy.Header().Concat(new byte[] { 0, 2 }).ToArray();
        Assert.Equal("row field count is 2, expected 4", Fails(wrongCount).Message);

        var badSize = PgBinaryCopy.Header().Concat(new byte[] { 0, 4, 0xFF, 0xFF, 0xFF, 0xFE }).ToArray();
        Assert.Equal("invalid field size", Fails(badSize).Message);

        var afterTrailer = Stream(1).Concat(new byte[] { 0 }).ToArray();
        Assert.Equal("received copy data after EOF marker", Fails(afterTrailer).Message);

        var huge = PgBinaryCopy.Header().Concat(new byte[] { 0, 4, 0x7F, 0xFF, 0xFF, 0xFF }).ToArray();
        Assert.Equal("54000", Fails(huge).SqlState);

        Assert.All(new[] { withOids, critical, wrongCount, badSize, afterTrailer }, d => Assert.Equal("22P04", Fails(d).SqlState));
    }

    [Fact]
    public void RandomAndMutatedInput_OnlyPgExceptions()
    {
        var random = new Random(20261202);
        var valid = Stream(4);
        for (var round = 0; round < 2000; round++)
        {
            var data = round % 2 == 0 ? valid.ToArray() : new byte[random.Next(0, 64)];
            if (round % 2 == 0)
            {
                for (var flips = random.Next(1, 4); flips > 0; flips--)
                {
                    data[random.Next(data.Length)] = (byte)random.Next(256);
                }
            }
            else
            {
                random.NextBytes(data);
            }

            try
            {
                Read(data, random.Next(1, 16));
            }
            catch (PgException)
            {
                // A clear error is the expected outcome for damaged input.
            }
        }
    }
}
