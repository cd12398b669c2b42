using System.Buffers.Binary;
using System.Text;

namespace Kdb.Cluster;

/// <summary>
/// Packs an engine checkpoint directory into one blob (a Raft snapshot or a backup) and back.
/// Format: magic <c>KDBCKPT1</c>, file count u32, then per file name length u16, name, length u64, bytes;
/// a CRC32C of everything before it closes the blob.
/// </summary>
internal static class CheckpointPacker
{
    private static ReadOnlySpan<byte> Magic => "KDBCKPT1"u8;

    public static byte[] Pack(string directory)
    {
        using var stream = new MemoryStream();
        Pack(directory, stream);
        return stream.ToArray();
    }

    /// <summary>Packs into a file (fsynced) without holding the blob in memory: a large group's Raft snapshot. Returns the
    /// CRC32C of the whole file (the Raft layer sends it with the snapshot, so followers verify before installing).</summary>
    public static uint PackToFile(string directory, string path, CancellationToken cancellation = default)
    {
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        var checksum = Pack(directory, file, cancellation);
        file.Flush(flushToDisk: true);
        return checksum;
    }

    /// <summary>Returns the CRC32C of everything written, trailer included.</summary>
    private static uint Pack(string directory, Stream output, CancellationToken cancellation = default)
    {
        var files = Directory.GetFiles(directory);
        Array.Sort(files, StringComparer.Ordinal);
        var crc = 0xFFFFFFFFu;
        void Write(ReadOnlySpan<byte> bytes)
        {
            output.Write(bytes);
            crc = Crc32CUpdate(crc, bytes);
        }
        Write(Magic);
        Span<byte> u = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(u, (uint)files.Length);
        Write(u[..4]);
        var buffer = new byte[1 << 20];
        foreach (var file in files)
        {
            var name = Encoding.UTF8.GetBytes(Path.GetFileName(file));
            BinaryPrimitives.WriteUInt16LittleEndian(u, (ushort)name.Length);
            Write(u[..2]);
            Write(name);
            using var input = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
            BinaryPrimitives.WriteUInt64LittleEndian(u, (ulong)input.Length);
            Write(u);
            var left = input.Length;
            while (left > 0)
            {
                cancellation.ThrowIfCancellationRequested();
                var n = input.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
                if (n == 0)
                {
                    throw new IOException($"{file} shrank while it was packed");
                }
                Write(buffer.AsSpan(0, n));
                left -= n;
            }
        }
        BinaryPrimitives.WriteUInt32LittleEndian(u, ~crc);
        output.Write(u[..4]);
        return Raft.Crc32C.Finish(Crc32CUpdate(crc, u[..4]));
    }

    /// <summary>Writes the files of <paramref name="blob"/> into an empty <paramref name="directory"/> (fsynced).</summary>
    public static void Unpack(ReadOnlySpan<byte> blob, string directory)
    {
        if (blob.Length < 16 || !blob[..8].SequenceEqual(Magic))
        {
            throw new InvalidDataException("not a kdb checkpoint");
        }
        var body = blob[..^4];
        if (Crc32C(body) != BinaryPrimitives.ReadUInt32LittleEndian(blob[^4..]))
        {
            throw new InvalidDataException("checkpoint checksum mismatch");
        }
        Directory.CreateDirectory(directory);
        var count = BinaryPrimitives.ReadUInt32LittleEndian(body[8..]);
        var offset = 12;
        for (var i = 0u; i < count; i++)
        {
            if (offset + 2 > body.Length)
            {
                throw new InvalidDataException("checkpoint truncated");
            }
            var nameLength = BinaryPrimitives.ReadUInt16LittleEndian(body[offset..]);
            offset += 2;
            if (offset + nameLength + 8 > body.Length)
            {
                throw new InvalidDataException("checkpoint truncated");
            }
            var name = Encoding.UTF8.GetString(body.Slice(offset, nameLength));
            offset += nameLength;
            if (name.Length == 0 || name != Path.GetFileName(name) || name is "." or "..")
            {
                throw new InvalidDataException("checkpoint holds a bad file name");
            }
            var length = BinaryPrimitives.ReadUInt64LittleEndian(body[offset..]);
            offset += 8;
            if (length > (ulong)(body.Length - offset))
            {
                throw new InvalidDataException("checkpoint truncated");
            }
            using (var file = new FileStream(Path.Combine(directory, name), FileMode.CreateNew, FileAccess.Write))
            {
                file.Write(body.Slice(offset, (int)length));
                file.Flush(flushToDisk: true);
            }
            offset += (int)length;
        }
        if (offset != body.Length)
        {
            throw new InvalidDataException("checkpoint has trailing bytes");
        }
    }

    internal static uint Crc32C(ReadOnlySpan<byte> data) => Raft.Crc32C.Compute(data);

    private static uint Crc32CUpdate(uint crc, ReadOnlySpan<byte> data) => Raft.Crc32C.Update(crc, data);
}
