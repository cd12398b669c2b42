using System.Buffers.Binary;
using System.Diagnostics;
using System.Security.Cryptography;
using Google.Protobuf;
using Kdb.Node.Admin.Wire;
using Kdb.Provisioning.Backups;
using Kdb.Provisioning.Storage;

namespace Kdb.Provisioning.Benchmarks;

/// <summary>
/// Provisioning's own share of a backup and a restore, without nodes or control plane: a synthetic export stream
/// sealed (AES-GCM) and stored in the filesystem object store (fsynced), then every chunk loaded, verified and
/// decrypted. Whatever the end-to-end figures miss beyond these is spent on the nodes or in the control plane.
/// </summary>
internal static class CodecBench
{
    private const int FrameDataBytes = 1 << 20;

    public static async Task RunAsync(int megabytes, int chunkBytes, Action<string, double, string> emit)
    {
        var root = Directory.CreateTempSubdirectory("kdb-bench-codec-");
        try
        {
            var export = SyntheticExport(megabytes);
            var store = new FileSystemObjectStore(root.FullName);
            var key = RandomNumberGenerator.GetBytes(32);
            var watch = Stopwatch.StartNew();
            var sealedExport = await BackupCodec.SealAsync(new MemoryStream(export, writable: false), store, key, "bkp_bench", chunkBytes, CancellationToken.None);
            emit("backup_seal_store_mb_per_s", sealedExport.StoredBytes / 1e6 / watch.Elapsed.TotalSeconds, "MB/s");

            var manifest = new BackupManifest(BackupManifest.CurrentVersion, "bkp_bench", "db_bench", "org_bench", 1, "key",
                sealedExport.Summary.RaftIndex, sealedExport.Summary.Rows, sealedExport.Summary.TotalCrc32C, sealedExport.Summary.Bytes,
                sealedExport.Summary.Sha256, sealedExport.StoredBytes, sealedExport.StoredSha256, "", sealedExport.Chunks, DateTimeOffset.UtcNow, 0);
            watch.Restart();
            long opened = 0;
            await using (var stream = BackupCodec.OpenStream(manifest, store, key, CancellationToken.None))
            {
                var buffer = new byte[1 << 16];
                int n;
                while ((n = await stream.ReadAsync(buffer)) > 0)
                {
                    opened += n;
                }
            }
            if (opened != sealedExport.Summary.Bytes)
            {
                throw new InvalidOperationException($"opened {opened} bytes of {sealedExport.Summary.Bytes}");
            }
            emit("restore_load_open_mb_per_s", sealedExport.StoredBytes / 1e6 / watch.Elapsed.TotalSeconds, "MB/s");
        }
        finally
        {
            root.Delete(recursive: true);
        }
    }

    /// <summary>Length-prefixed BackupChunk frames of random (incompressible) data, closed by a chunk with totals.</summary>
    private static byte[] SyntheticExport(int megabytes)
    {
        var output = new MemoryStream(megabytes * 1_050_000);
        var frames = Math.Max(1, megabytes * 1_000_000 / FrameDataBytes);
        var header = new byte[4];
        for (var i = 0; i < frames; i++)
        {
            var chunk = new BackupChunk { Sequence = (uint)i, Data = ByteString.CopyFrom(RandomNumberGenerator.GetBytes(FrameDataBytes)), Last = i == frames - 1 };
            if (chunk.Last)
            {
                chunk.TotalRows = frames;
                chunk.RaftIndex = 1;
            }
            var frame = chunk.ToByteArray();
            BinaryPrimitives.WriteInt32LittleEndian(header, frame.Length);
            output.Write(header);
            output.Write(frame);
        }
        return output.ToArray();
    }
}
