using System.Buffers.Binary;
using System.Security.Cryptography;
using Google.Protobuf;
using Kdb.Node.Admin.Wire;
using Kdb.Provisioning.Backups;
using Kdb.Provisioning.Storage;

namespace Kdb.Provisioning.Tests;

/// <summary>Sealing and opening backups against the filesystem store, with export streams shaped like a node's.</summary>
public sealed class BackupCodecTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "kdb-codec-" + Guid.NewGuid().ToString("N"));
    private readonly FileSystemObjectStore _store;
    private readonly byte[] _key = RandomNumberGenerator.GetBytes(32);

    public BackupCodecTests() => _store = new FileSystemObjectStore(_root);

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task Seal_ThenOpen_GivesBackTheExportStreamByteForByte()
    {
        var export = ExportStream(frames: 7, frameBytes: 100_000, out var raftIndex);

        var (summary, chunks, stored, _) = await BackupCodec.SealAsync(new MemoryStream(export), _store, _key, "bkp_a", 256 * 1024, default);
        var manifest = Manifest("bkp_a", summary, chunks, stored);
        var opened = new MemoryStream();
        await BackupCodec.OpenAsync(manifest, _store, _key, b => opened.WriteAsync(b).AsTask(), default);

        Assert.Equal(export, opened.ToArray());
        Assert.Equal(raftIndex, summary.RaftIndex);
        Assert.True(chunks.Count >= 3, $"{chunks.Count} chunks");
        // Sealed: no chunk holds the plaintext.
        var firstPlain = export.AsSpan(8, 64).ToArray();
        foreach (var c in chunks)
        {
            var sealedBytes = (await _store.LoadAsync(BackupManifest.ChunkKey(c.Sha256)))!;
            Assert.Equal(-1, sealedBytes.AsSpan().IndexOf(firstPlain));
        }
        await using var stream = BackupCodec.OpenStream(manifest, _store, _key, default);
        var streamed = new MemoryStream();
        await stream.CopyToAsync(streamed);
        Assert.Equal(export, streamed.ToArray());

        // A restore keeps the chunks its verification pass decrypted and streams those to the import: the same bytes.
        var kept = new List<ReadOnlyMemory<byte>>();
        await BackupCodec.OpenAsync(manifest, _store, _key, b =>
        {
            kept.Add(b);
            return Task.CompletedTask;
        }, default);
        Assert.Equal(chunks.Count, kept.Count);
        await using var fromKept = BackupCodec.OpenStream(kept, default);
        var keptStreamed = new MemoryStream();
        await fromKept.CopyToAsync(keptStreamed);
        Assert.Equal(export, keptStreamed.ToArray());
    }

    [Fact]
    public async Task TamperedChunk_WrongKey_OrSwappedChunks_FailNamingTheBackup()
    {
        var export = ExportStream(frames: 4, frameBytes: 50_000, out _);
        var (summary, chunks, stored, _) = await BackupCodec.SealAsync(new MemoryStream(export), _store, _key, "bkp_t", 40 * 1024, default);
        var manifest = Manifest("bkp_t", summary, chunks, stored);

        var wrongKey = await Assert.ThrowsAsync<BackupCorruptException>(() => BackupCodec.OpenAsync(manifest, _store, RandomNumberGenerator.GetBytes(32), _ => Task.CompletedTask, default));
        Assert.Contains("bkp_t", wrongKey.Message, StringComparison.Ordinal);

        var swapped = manifest with { Chunks = [chunks[1], chunks[0], .. chunks.Skip(2)] };
        var reordered = await Assert.ThrowsAsync<BackupCorruptException>(() => BackupCodec.OpenAsync(swapped, _store, _key, _ => Task.CompletedTask, default));
        Assert.Contains("chunk 0", reordered.Message, StringComparison.Ordinal);

        var path = Path.Combine(_root, "chunks", chunks[2].Sha256);
        var raw = await File.ReadAllBytesAsync(path);
        raw[60] ^= 0x80;
        await File.WriteAllBytesAsync(path, raw);
        var flipped = await Assert.ThrowsAsync<BackupCorruptException>(() => BackupCodec.OpenAsync(manifest, _store, _key, _ => Task.CompletedTask, default));
        Assert.Contains("bkp_t", flipped.Message, StringComparison.Ordinal);
        Assert.Contains("chunk 2", flipped.Message, StringComparison.Ordinal);

        File.Delete(path);
        var missing = await Assert.ThrowsAsync<BackupCorruptException>(() => BackupCodec.OpenAsync(manifest, _store, _key, _ => Task.CompletedTask, default));
        Assert.Contains("missing", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TruncatedOrGarbageExport_IsRefusedWhileSealing()
    {
        var export = ExportStream(frames: 3, frameBytes: 10_000, out _);
        for (var seed = 0; seed < 20; seed++)
        {
            var random = new Random(seed);
            var cut = export[..random.Next(0, export.Length - 1)];
            await Assert.ThrowsAnyAsync<Exception>(() => BackupCodec.SealAsync(new MemoryStream(cut), _store, _key, "bkp_x", 4096, default));
            var garbage = new byte[random.Next(1, 5000)];
            random.NextBytes(garbage);
            await Assert.ThrowsAnyAsync<Exception>(() => BackupCodec.SealAsync(new MemoryStream(garbage), _store, _key, "bkp_x", 4096, default));
        }
    }

    [Fact]
    public void SealedRoles_OpenOnlyUnderTheirBackupId()
    {
        var roles = BackupManifest.SerializeRoles([new Contracts.V1.RoleVerifier("owner", Contracts.V1.RoleKind.Owner, "SCRAM-SHA-256$4096:c2FsdA==$a2V5:a2V5")]);
        var sealedRoles = BackupCodec.SealRoles(_key, "bkp_r", roles);

        Assert.Equal(roles, BackupCodec.OpenRoles(_key, "bkp_r", sealedRoles));
        Assert.Throws<BackupCorruptException>(() => BackupCodec.OpenRoles(_key, "bkp_other", sealedRoles));
    }

    private static BackupManifest Manifest(string id, ExportSummary summary, List<ChunkRef> chunks, long stored) =>
        new(BackupManifest.CurrentVersion, id, "db_x", "org_x", 7, "bkk_x", summary.RaftIndex, summary.Rows, summary.TotalCrc32C, summary.Bytes, summary.Sha256,
            stored, "", "", chunks, DateTimeOffset.UnixEpoch, 0);

    /// <summary>Length-prefixed BackupChunk frames of random data, the last carrying totals, as a node exports them.</summary>
    private static byte[] ExportStream(int frames, int frameBytes, out ulong raftIndex)
    {
        raftIndex = 4242;
        var output = new MemoryStream();
        var header = new byte[4];
        for (var i = 0; i < frames; i++)
        {
            var chunk = new BackupChunk { Sequence = (uint)i, Data = ByteString.CopyFrom(RandomNumberGenerator.GetBytes(frameBytes)), Last = i == frames - 1 };
            if (chunk.Last)
            {
                chunk.RaftIndex = raftIndex;
                chunk.TotalRows = 99;
                chunk.TotalCrc32C = 0xfeed;
            }
            var frame = chunk.ToByteArray();
            BinaryPrimitives.WriteInt32LittleEndian(header, frame.Length);
            output.Write(header);
            output.Write(frame);
        }
        return output.ToArray();
    }
}
