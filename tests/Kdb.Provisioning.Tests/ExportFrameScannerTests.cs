using System.Buffers.Binary;
using System.Security.Cryptography;
using Google.Protobuf;
using Kdb.Node.Admin.Wire;
using Kdb.Provisioning.Backups;
using Kdb.Provisioning.Storage;

namespace Kdb.Provisioning.Tests;

/// <summary>
/// The export frame scanner against Google.Protobuf's own parse of the same frames: random exports fed in random pieces,
/// every truncation, trailing bytes, and randomly damaged frames. Seeds are in the assertion messages.
/// </summary>
public sealed class ExportFrameScannerTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "kdb-scanner-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    [Fact]
    public void Advance_RandomExportsInRandomPieces_FindsTheLastFrameAndItsTotals()
    {
        for (var seed = 0; seed < 200; seed++)
        {
            var random = new Random(seed);
            var (export, last) = RandomExport(random);
            var trailer = new byte[random.Next(0, 50)];
            random.NextBytes(trailer);
            byte[] stream = [.. export, .. trailer];

            var scanner = new ExportFrameScanner();
            var at = 0;
            var taken = 0;
            while (at < stream.Length && !scanner.Done)
            {
                var piece = Math.Min(stream.Length - at, random.Next(3) switch { 0 => 1, 1 => random.Next(1, 40), _ => random.Next(1, 300_000) });
                var used = scanner.Advance(stream.AsSpan(at, piece));
                Assert.True(used == piece || scanner.Done, $"seed {seed}: {used} of {piece} bytes taken before the end");
                taken += used;
                at += piece;
            }

            Assert.True(scanner.Done, $"seed {seed}");
            Assert.Equal(export.Length, taken);
            Assert.Equal((last.RaftIndex, last.TotalRows, last.TotalCrc32C), scanner.Totals);
        }
    }

    [Fact]
    public void Advance_EveryTruncation_IsNeverDone_AndEndsAsTruncated()
    {
        var (export, _) = RandomExport(new Random(7), maxFrames: 3, maxData: 300);
        for (var cut = 0; cut < export.Length; cut++)
        {
            var scanner = new ExportFrameScanner();
            Assert.Equal(cut, scanner.Advance(export.AsSpan(0, cut)));
            Assert.False(scanner.Done, $"cut at {cut} of {export.Length}");
            Assert.Throws<InvalidOperationException>(() => scanner.Totals);
            var ended = Assert.Throws<InvalidDataException>(scanner.ThrowEndedEarly);
            Assert.Contains("export stream", ended.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Advance_DamagedFrames_AgreeWithProtobuf()
    {
        var accepted = 0;
        var refused = 0;
        for (var seed = 0; seed < 3000; seed++)
        {
            var random = new Random(seed);
            var frame = RandomChunk(random, maxData: 64, last: random.Next(2) == 0).ToByteArray();
            // Damage: flip bytes, cut the message short or extend it with random bytes (the length word follows).
            switch (random.Next(3))
            {
                case 0:
                    for (var flips = random.Next(1, 4); flips > 0 && frame.Length > 0; flips--)
                    {
                        frame[random.Next(frame.Length)] = (byte)random.Next(256);
                    }
                    break;
                case 1:
                    frame = frame[..random.Next(frame.Length + 1)];
                    break;
                default:
                    var extra = new byte[random.Next(1, 12)];
                    random.NextBytes(extra);
                    frame = [.. frame, .. extra];
                    break;
            }
            BackupChunk? parsed;
            try
            {
                parsed = BackupChunk.Parser.ParseFrom(frame);
            }
            catch (InvalidProtocolBufferException)
            {
                parsed = null;
            }
            var framed = new byte[4 + frame.Length];
            BinaryPrimitives.WriteInt32LittleEndian(framed, frame.Length);
            frame.CopyTo(framed, 4);

            var scanner = new ExportFrameScanner();
            try
            {
                scanner.Advance(framed);
            }
            catch (InvalidDataException)
            {
                refused++;
                // Refused: protobuf refuses it too, or it holds a group (wire types 3 and 4), which a BackupChunk never has.
                Assert.True(parsed is null || HasGroup(frame), $"seed {seed}: protobuf parsed what the scanner refused");
                continue;
            }
            accepted++;
            Assert.True(parsed is not null, $"seed {seed}: the scanner took a frame protobuf refuses");
            Assert.Equal(parsed.Last, scanner.Done);
            if (parsed.Last)
            {
                Assert.Equal((parsed.RaftIndex, parsed.TotalRows, parsed.TotalCrc32C), scanner.Totals);
            }
        }
        Assert.True(accepted > 300 && refused > 300, $"{accepted} accepted, {refused} refused: the damage should produce both");
    }

    [Theory]
    [InlineData(new byte[] { 0xFF, 0xFF, 0xFF, 0x7F })]
    [InlineData(new byte[] { 0x00, 0x00, 0x00, 0x80 })]
    [InlineData(new byte[] { 0x01, 0x00, 0x00, 0x01 })]
    public void Advance_FrameLengthOutOfRange_IsRefused(byte[] header)
    {
        var error = Assert.Throws<InvalidDataException>(() => new ExportFrameScanner().Advance(header));
        Assert.Contains("out of range", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadExportAsync_AndSealAsync_OverATricklingStream_MatchAWholeRead()
    {
        var (export, last) = RandomExport(new Random(11), maxFrames: 12, maxData: 200_000);
        byte[] withTrailer = [.. export, 1, 2, 3];
        var whole = await BackupCodec.ReadExportAsync(new MemoryStream(withTrailer), _ => Task.CompletedTask, default);
        var relayed = new MemoryStream();
        var trickled = await BackupCodec.ReadExportAsync(new TrickleStream(withTrailer, seed: 3), b => relayed.WriteAsync(b).AsTask(), default);

        Assert.Equal(whole, trickled);
        Assert.Equal(export, relayed.ToArray());
        Assert.Equal(export.Length, whole.Bytes);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(export)), whole.Sha256);
        Assert.Equal((last.RaftIndex, last.TotalRows, last.TotalCrc32C), (whole.RaftIndex, whole.Rows, whole.TotalCrc32C));

        // Sealed from the same trickle: every stored chunk at most the chunk size, and opened back to the export exactly.
        var store = new FileSystemObjectStore(_root);
        var key = RandomNumberGenerator.GetBytes(32);
        const int chunkBytes = 100_000;
        var (summary, chunks, stored, storedSha) = await BackupCodec.SealAsync(new TrickleStream(withTrailer, seed: 5), store, key, "bkp_trickle", chunkBytes, default);
        Assert.Equal(whole, summary);
        Assert.All(chunks.SkipLast(1), c => Assert.Equal(chunkBytes, c.Size));
        Assert.InRange(chunks[^1].Size, 29, chunkBytes);
        Assert.Equal(stored, chunks.Sum(c => c.Size));
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var c in chunks)
        {
            sha.AppendData((await store.LoadAsync(BackupManifest.ChunkKey(c.Sha256)))!);
        }
        Assert.Equal(Convert.ToHexStringLower(sha.GetHashAndReset()), storedSha);
        var manifest = new BackupManifest(BackupManifest.CurrentVersion, "bkp_trickle", "db_x", "org_x", 7, "bkk_x", summary.RaftIndex, summary.Rows,
            summary.TotalCrc32C, summary.Bytes, summary.Sha256, stored, storedSha, "", chunks, DateTimeOffset.UnixEpoch, 0);
        var opened = new MemoryStream();
        await BackupCodec.OpenAsync(manifest, store, key, b => opened.WriteAsync(b).AsTask(), default);
        Assert.Equal(export, opened.ToArray());
    }

    /// <summary>Frames as a node writes them: sequence, pairs, CRC32C; the last with totals (any values, big varints too).</summary>
    private static (byte[] Export, BackupChunk Last) RandomExport(Random random, int maxFrames = 8, int maxData = 70_000)
    {
        var output = new MemoryStream();
        var frames = random.Next(1, maxFrames + 1);
        BackupChunk chunk = null!;
        for (var i = 0; i < frames; i++)
        {
            chunk = RandomChunk(random, maxData, last: i == frames - 1);
            var frame = chunk.ToByteArray();
            var header = new byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(header, frame.Length);
            output.Write(header);
            output.Write(frame);
        }
        return (output.ToArray(), chunk);
    }

    private static BackupChunk RandomChunk(Random random, int maxData, bool last)
    {
        var data = new byte[random.Next(0, maxData + 1)];
        random.NextBytes(data);
        var chunk = new BackupChunk { Sequence = (uint)random.Next(), Data = ByteString.CopyFrom(data), Crc32C = (uint)random.NextInt64(), Last = last };
        if (last)
        {
            chunk.RaftIndex = random.Next(3) == 0 ? ulong.MaxValue : (ulong)random.NextInt64();
            chunk.TotalCrc32C = (ulong)random.NextInt64() << random.Next(2);
            chunk.TotalRows = random.Next(4) == 0 ? -random.NextInt64() : random.NextInt64(0, 1 << 20);
        }
        return chunk;
    }

    /// <summary>Whether protobuf's own field walk meets a group (wire type 3 or 4) before the message ends or breaks.</summary>
    private static bool HasGroup(byte[] message)
    {
        var input = new CodedInputStream(message);
        try
        {
            uint tag;
            while ((tag = input.ReadTag()) != 0)
            {
                if ((tag & 7) is 3 or 4)
                {
                    return true;
                }
                input.SkipLastField();
            }
        }
        catch (InvalidProtocolBufferException)
        {
        }
        return false;
    }

    /// <summary>Hands out its bytes a few at a time, as a slow network would.</summary>
    private sealed class TrickleStream(byte[] bytes, int seed) : Stream
    {
        private readonly Random _random = new(seed);
        private int _at;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => bytes.Length;
        public override long Position { get => _at; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = Math.Min(Math.Min(buffer.Length, bytes.Length - _at), _random.Next(1, 5000));
            bytes.AsSpan(_at, n).CopyTo(buffer);
            _at += n;
            return n;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => new(Read(buffer.Span));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => Task.FromResult(Read(buffer, offset, count));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
