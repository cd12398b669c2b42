using Google.Protobuf;
using Kdb.Node.Admin.Wire;
using Kdb.Node.Cluster;

namespace Kdb.Node.Tests.Cluster;

/// <summary>The import reads backup frames in place (<see cref="ChunkFrame"/>) instead of through the generated parser:
/// both must agree on every frame, cut-short ones included, or a corrupt stream could be staged.</summary>
public sealed class ChunkFrameTests
{
    [Fact]
    public void Reads_the_same_fields_as_the_generated_parser()
    {
        var pairs = new byte[3000];
        new Random(7).NextBytes(pairs);
        foreach (var chunk in Samples(pairs))
        {
            var bytes = chunk.ToByteArray();
            var read = ChunkFrame.Read(bytes);
            Assert.NotNull(read);
            AssertSame(chunk, read.Value);
        }
    }

    [Fact]
    public void Steps_over_unknown_fields_and_keeps_the_last_occurrence()
    {
        var chunk = new BackupChunk { Sequence = 3, Data = ByteString.CopyFrom(1, 2, 3), Crc32C = 99, Last = true, TotalRows = 5 };
        using var extra = new MemoryStream();
        var output = new CodedOutputStream(extra);
        output.WriteTag(40, WireFormat.WireType.Varint);
        output.WriteUInt64(ulong.MaxValue);
        output.WriteTag(41, WireFormat.WireType.Fixed64);
        output.WriteFixed64(1);
        output.WriteTag(42, WireFormat.WireType.Fixed32);
        output.WriteFixed32(2);
        output.WriteTag(43, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(ByteString.CopyFrom(new byte[300]));
        output.WriteTag(1, WireFormat.WireType.LengthDelimited); // a known number with another wire type: unknown
        output.WriteBytes(ByteString.CopyFrom(9));
        output.WriteTag(BackupChunk.SequenceFieldNumber, WireFormat.WireType.Varint);
        output.WriteUInt32(4); // repeated scalar: the last one wins
        output.Flush();
        var bytes = chunk.ToByteArray().Concat(extra.ToArray()).ToArray();

        var read = ChunkFrame.Read(bytes);

        Assert.NotNull(read);
        AssertSame(BackupChunk.Parser.ParseFrom(bytes), read.Value);
        Assert.Equal(4u, read.Value.Sequence);
        Assert.Equal(new byte[] { 1, 2, 3 }, read.Value.Data.ToArray());
    }

    [Fact]
    public void Every_cut_short_frame_is_refused_exactly_when_the_generated_parser_refuses_it()
    {
        var pairs = new byte[700];
        new Random(11).NextBytes(pairs);
        foreach (var chunk in Samples(pairs))
        {
            var bytes = chunk.ToByteArray();
            for (var cut = 0; cut <= bytes.Length; cut++)
            {
                var prefix = bytes.AsMemory(0, cut);
                BackupChunk? parsed;
                try
                {
                    parsed = BackupChunk.Parser.ParseFrom(prefix.Span);
                }
                catch (InvalidProtocolBufferException)
                {
                    parsed = null;
                }
                var read = ChunkFrame.Read(prefix);
                Assert.Equal(parsed is null, read is null);
                if (parsed is not null)
                {
                    AssertSame(parsed, read!.Value);
                }
            }
        }
    }

    [Theory]
    [InlineData(new byte[] { 0x00, 0x01 })]                    // field number 0
    [InlineData(new byte[] { 0x0B, 0x0C })]                    // a group
    [InlineData(new byte[] { 0x0E, 0x01 })]                    // wire type 6
    [InlineData(new byte[] { 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 })] // varint over 10 bytes
    [InlineData(new byte[] { 0x12, 0x05, 0x01 })]              // pairs longer than the frame
    public void Refuses_malformed_frames(byte[] bytes) => Assert.Null(ChunkFrame.Read(bytes));

    private static IEnumerable<BackupChunk> Samples(byte[] pairs)
    {
        yield return new BackupChunk();
        yield return new BackupChunk { Sequence = 1, Data = ByteString.CopyFrom(pairs), Crc32C = 0xDEADBEEF };
        yield return new BackupChunk { Sequence = 300_000, Data = ByteString.CopyFrom(pairs), Crc32C = 1, Last = true, RaftIndex = 1UL << 40, TotalCrc32C = 0xFFFF_FFFF, TotalRows = 129_032 };
        yield return new BackupChunk { Sequence = 2, Data = ByteString.CopyFrom(pairs, 0, 10), Crc32C = 5, Changes = true, ChangesSince = 77 };
        yield return new BackupChunk { Last = true, TotalRows = -1, TotalCrc32C = ulong.MaxValue };
    }

    private static void AssertSame(BackupChunk expected, ChunkFrame actual)
    {
        Assert.Equal(expected.Sequence, actual.Sequence);
        Assert.Equal(expected.Data.ToByteArray(), actual.Data.ToArray());
        Assert.Equal(expected.Crc32C, actual.Crc32C);
        Assert.Equal(expected.Last, actual.Last);
        Assert.Equal(expected.TotalCrc32C, actual.TotalCrc32C);
        Assert.Equal(expected.TotalRows, actual.TotalRows);
        Assert.Equal(expected.ChangesSince, actual.ChangesSince);
        Assert.Equal(expected.Changes, actual.Changes);
    }
}
