using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Security.Cryptography;
using System.Text;
using Kdb.Provisioning.Storage;

namespace Kdb.Provisioning.Backups;

/// <summary>A backup could not be read back intact; <see cref="Exception.Message"/> names the backup and the chunk.</summary>
internal sealed class BackupCorruptException(string message) : Exception(message);

/// <summary>What a node's export stream held: its totals from the closing chunk, and its size and digest.</summary>
internal sealed record ExportSummary(ulong RaftIndex, long Rows, ulong TotalCrc32C, long Bytes, string Sha256);

/// <summary>
/// Seals backups: the node's export stream (length-prefixed BackupChunk frames) is cut into chunks of about
/// <c>BackupChunkBytes</c>, each encrypted with AES-256-GCM under the org's backup key — stored as
/// <c>[nonce 12][tag 16][ciphertext]</c>, with the backup id and chunk number as associated data, so a chunk
/// cannot be moved to another backup or position unnoticed — and stored content-addressed.
/// </summary>
internal static class BackupCodec
{
    private const int NonceSize = 12;
    private const int TagSize = 16;

    /// <summary>Sealed chunks being written while the next is sealed: enough to keep a disk busy, bounded in memory.</summary>
    private const int StoresInFlight = 4;

    /// <summary>Chunks read and decrypted ahead of the one being consumed.</summary>
    private const int LoadsAhead = 4;

    /// <summary>Bytes asked of the export stream at a time when it is only relayed or summed (moves, totals): large reads,
    /// so a megabyte frame costs one call, not a 4-byte header read and then the frame's.</summary>
    private const int ReadBytes = 1 << 20;

    /// <summary>Reads an export stream to the end of its last frame, handing the raw bytes to <paramref name="sink"/> in order
    /// (in pieces of any size, which the sink may not keep once its task completes); the time spent waiting for the stream
    /// counts in the <see cref="BackupStages"/> stage <paramref name="waitStage"/>, if one is given.</summary>
    public static async Task<ExportSummary> ReadExportAsync(Stream export, Func<ReadOnlyMemory<byte>, Task> sink, CancellationToken ct, string? waitStage = null)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var scanner = new ExportFrameScanner();
        var buffer = ArrayPool<byte>.Shared.Rent(ReadBytes);
        long bytes = 0;
        var waited = TimeSpan.Zero;
        try
        {
            while (!scanner.Done)
            {
                var reading = Stopwatch.GetTimestamp();
                var n = await export.ReadAsync(buffer.AsMemory(0, ReadBytes), ct);
                waited += Stopwatch.GetElapsedTime(reading);
                if (n == 0)
                {
                    scanner.ThrowEndedEarly();
                }
                var used = scanner.Advance(buffer.AsSpan(0, n));
                sha.AppendData(buffer, 0, used);
                bytes += used;
                await sink(buffer.AsMemory(0, used));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        if (waitStage is not null)
        {
            BackupStages.Add(waitStage, waited);
        }
        return Summary(scanner, bytes, sha);
    }

    /// <summary>
    /// Encrypts and stores the export stream; returns the summary and the stored chunks in order. The stream is read
    /// straight into the chunk being filled (no frame is copied or parsed apart: <see cref="ExportFrameScanner"/> follows
    /// the framing as the bytes go by), and each chunk takes exactly as much plaintext as makes its sealed form
    /// <paramref name="chunkBytes"/> long, the last one less. Up to <see cref="StoresInFlight"/> sealed chunks are being
    /// written (and fsynced) while the next one is read and sealed, so the export, the cipher and the disk work at the
    /// same time instead of in turn. Every buffer comes from the shared pool: on this VM first touches of fresh memory
    /// cost more than the cipher (perf of the codec benchmark before, with a fresh 4 MiB array per sealed chunk and a
    /// protobuf copy of every frame: page faults, memset and memmove over half the samples, AES-GCM and SHA-256 14%).
    /// </summary>
    public static async Task<(ExportSummary Summary, List<ChunkRef> Chunks, long StoredBytes, string StoredSha256)> SealAsync(
        Stream export, IObjectStore store, byte[] key, string backupId, int chunkBytes, CancellationToken ct)
    {
        var plainBytes = chunkBytes - NonceSize - TagSize;
        ArgumentOutOfRangeException.ThrowIfLessThan(plainBytes, 1, nameof(chunkBytes));
        using var aes = new AesGcm(key, TagSize);
        using var plainSha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var storedSha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var scanner = new ExportFrameScanner();
        var stores = new List<Task<ObjectInfo>>();
        var plain = ArrayPool<byte>.Shared.Rent(plainBytes);
        long bytes = 0;
        long stored = 0;
        var waited = TimeSpan.Zero;
        async Task FlushAsync(int length)
        {
            var sealing = Stopwatch.GetTimestamp();
            var sealedLength = NonceSize + TagSize + length;
            var sealedChunk = ArrayPool<byte>.Shared.Rent(sealedLength);
            Task<ObjectInfo> storing;
            try
            {
                Seal(aes, plain.AsSpan(0, length), Aad(backupId, stores.Count), sealedChunk.AsSpan(0, sealedLength));
                storedSha.AppendData(sealedChunk, 0, sealedLength);
                stored += sealedLength;
                var waiting = BackupStages.Since(BackupStages.BackupSeal, sealing);
                if (stores.Count >= StoresInFlight)
                {
                    await stores[^StoresInFlight];
                }
                BackupStages.Since(BackupStages.BackupStoreWait, waiting);
                storing = Task.Run(async () =>
                {
                    try
                    {
                        return await store.StoreChunkAsync("chunks", sealedChunk.AsMemory(0, sealedLength), ct);
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(sealedChunk);
                    }
                }, CancellationToken.None);
            }
            catch
            {
                ArrayPool<byte>.Shared.Return(sealedChunk);
                throw;
            }
            stores.Add(storing);
        }
        try
        {
            var filled = 0;
            while (!scanner.Done)
            {
                var reading = Stopwatch.GetTimestamp();
                var n = await export.ReadAsync(plain.AsMemory(filled, plainBytes - filled), ct);
                waited += Stopwatch.GetElapsedTime(reading);
                if (n == 0)
                {
                    scanner.ThrowEndedEarly();
                }
                var used = scanner.Advance(plain.AsSpan(filled, n));
                plainSha.AppendData(plain, filled, used);
                filled += used;
                bytes += used;
                if (filled == plainBytes || (scanner.Done && filled > 0))
                {
                    await FlushAsync(filled);
                    filled = 0;
                }
            }
            BackupStages.Add(BackupStages.BackupExportWait, waited);
            var draining = Stopwatch.GetTimestamp();
            await Task.WhenAll(stores);
            BackupStages.Since(BackupStages.BackupStoreWait, draining);
        }
        finally
        {
            // No write may still be running (nor hold a pooled buffer) when the caller hears how this ended.
            await Task.WhenAll(stores).ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            ArrayPool<byte>.Shared.Return(plain);
        }
        var chunks = new List<ChunkRef>(stores.Count);
        foreach (var done in stores)
        {
            var info = await done;
            chunks.Add(new ChunkRef(info.Sha256, info.Size));
        }
        return (Summary(scanner, bytes, plainSha), chunks, stored, Convert.ToHexStringLower(storedSha.GetHashAndReset()));
    }

    private static ExportSummary Summary(ExportFrameScanner scanner, long bytes, IncrementalHash sha)
    {
        var (raftIndex, rows, totalCrc32C) = scanner.Totals;
        return new ExportSummary(raftIndex, rows, totalCrc32C, bytes, Convert.ToHexStringLower(sha.GetHashAndReset()));
    }

    /// <summary>
    /// Decrypts every chunk of a backup in order into <paramref name="sink"/>, checking each chunk's address and
    /// tag and, at the end, the plaintext's SHA-256. Any failure throws <see cref="BackupCorruptException"/>. The
    /// next <see cref="LoadsAhead"/> chunks are read, checked and decrypted in parallel while the sink takes one.
    /// </summary>
    public static async Task OpenAsync(BackupManifest manifest, IObjectStore store, byte[] key, Func<ReadOnlyMemory<byte>, Task> sink, CancellationToken ct)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var ahead = new Queue<Task<byte[]>>();
        var next = 0;
        try
        {
            for (var i = 0; i < manifest.Chunks.Count; i++)
            {
                while (next < manifest.Chunks.Count && ahead.Count < LoadsAhead)
                {
                    var chunk = next++;
                    ahead.Enqueue(Task.Run(() => LoadChunkAsync(manifest, chunk, store, key, stop.Token), stop.Token));
                }
                var plain = await ahead.Dequeue();
                sha.AppendData(plain);
                await sink(plain);
            }
        }
        finally
        {
            // A failure (or a sink that gave up) leaves no read running behind it.
            await stop.CancelAsync();
            foreach (var pending in ahead)
            {
                await pending.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            }
        }
        if (Convert.ToHexStringLower(sha.GetHashAndReset()) != manifest.PlaintextSha256)
        {
            throw new BackupCorruptException($"backup {manifest.BackupId} is corrupt: its contents do not match the manifest's SHA-256");
        }
    }

    private static async Task<byte[]> LoadChunkAsync(BackupManifest manifest, int i, IObjectStore store, byte[] key, CancellationToken ct)
    {
        byte[]? sealedChunk;
        try
        {
            sealedChunk = await store.LoadAsync(BackupManifest.ChunkKey(manifest.Chunks[i].Sha256), ct);
        }
        catch (ObjectCorruptException e)
        {
            throw new BackupCorruptException($"backup {manifest.BackupId} is corrupt: chunk {i} failed its checksum ({e.Message})");
        }
        if (sealedChunk is null)
        {
            throw new BackupCorruptException($"backup {manifest.BackupId} is incomplete: chunk {i} is missing from the object store");
        }
        if (Convert.ToHexStringLower(SHA256.HashData(sealedChunk)) != manifest.Chunks[i].Sha256)
        {
            throw new BackupCorruptException($"backup {manifest.BackupId} is corrupt: chunk {i} does not match its address");
        }
        try
        {
            // AesGcm is not safe for concurrent use: one per chunk (the key schedule is cheap next to 4 MiB).
            using var aes = new AesGcm(key, TagSize);
            return Open(aes, sealedChunk, Aad(manifest.BackupId, i));
        }
        catch (AuthenticationTagMismatchException)
        {
            throw new BackupCorruptException($"backup {manifest.BackupId} is corrupt or tampered: chunk {i} failed AES-GCM authentication");
        }
    }

    /// <summary>The decrypted backup as a stream for the node's import; a corrupt chunk fails the stream.</summary>
    public static Stream OpenStream(BackupManifest manifest, IObjectStore store, byte[] key, CancellationToken ct) =>
        PipeStream(sink => OpenAsync(manifest, store, key, sink, ct), ct);

    /// <summary>Chunks already decrypted and checked (a restore's verification pass kept them) as one stream.</summary>
    public static Stream OpenStream(IReadOnlyList<ReadOnlyMemory<byte>> verified, CancellationToken ct) =>
        PipeStream(async sink =>
        {
            foreach (var chunk in verified)
            {
                await sink(chunk);
            }
        }, ct);

    private static Stream PipeStream(Func<Func<ReadOnlyMemory<byte>, Task>, Task> produce, CancellationToken ct)
    {
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 8 << 20, resumeWriterThreshold: 4 << 20));
        _ = Task.Run(async () =>
        {
            try
            {
                await produce(async bytes => await pipe.Writer.WriteAsync(bytes, ct));
                await pipe.Writer.CompleteAsync();
            }
            catch (Exception e)
            {
                await pipe.Writer.CompleteAsync(e);
            }
        }, ct);
        return pipe.Reader.AsStream();
    }

    public static string SealRoles(byte[] key, string backupId, byte[] roles)
    {
        using var aes = new AesGcm(key, TagSize);
        return Convert.ToBase64String(Seal(aes, roles, Aad(backupId, -1)));
    }

    public static byte[] OpenRoles(byte[] key, string backupId, string sealedRoles)
    {
        using var aes = new AesGcm(key, TagSize);
        try
        {
            return Open(aes, Convert.FromBase64String(sealedRoles), Aad(backupId, -1));
        }
        catch (Exception e) when (e is AuthenticationTagMismatchException or FormatException)
        {
            throw new BackupCorruptException($"backup {backupId} is corrupt or tampered: its role list failed AES-GCM authentication");
        }
    }

    private static byte[] Seal(AesGcm aes, ReadOnlySpan<byte> plain, byte[] aad)
    {
        var output = new byte[NonceSize + TagSize + plain.Length];
        Seal(aes, plain, aad, output);
        return output;
    }

    /// <summary>Seals <paramref name="plain"/> into <paramref name="output"/> (exactly nonce, tag and ciphertext long).</summary>
    private static void Seal(AesGcm aes, ReadOnlySpan<byte> plain, byte[] aad, Span<byte> output)
    {
        RandomNumberGenerator.Fill(output[..NonceSize]);
        aes.Encrypt(output[..NonceSize], plain, output[(NonceSize + TagSize)..], output.Slice(NonceSize, TagSize), aad);
    }

    private static byte[] Open(AesGcm aes, byte[] sealedBytes, byte[] aad)
    {
        if (sealedBytes.Length < NonceSize + TagSize)
        {
            throw new AuthenticationTagMismatchException();
        }
        var plain = new byte[sealedBytes.Length - NonceSize - TagSize];
        aes.Decrypt(sealedBytes.AsSpan(0, NonceSize), sealedBytes.AsSpan(NonceSize + TagSize), sealedBytes.AsSpan(NonceSize, TagSize), plain, aad);
        return plain;
    }

    private static byte[] Aad(string backupId, int chunk) => Encoding.UTF8.GetBytes(backupId + "/" + chunk.ToString(System.Globalization.CultureInfo.InvariantCulture));

}
