using System.Buffers.Binary;

namespace Kdb.Storage.Wal;

/// <summary>
/// Replays WAL files in order. A bad record at the very end of the last file, with no valid record
/// after it, is a torn write from a crash: the file is truncated there. Any other bad record (in an
/// earlier file, or followed by a valid record) is corruption and stops the open with the file and
/// offset — acknowledged data is never skipped silently.
/// </summary>
internal static class WalReader
{
    public delegate void RecordHandler(ulong seq, ReadOnlySpan<byte> payload, string file, long offset);

    public static void Replay(IReadOnlyList<(ulong FileNo, string Path)> files, RecordHandler onRecord)
    {
        ulong lastSeq = 0;
        for (var f = 0; f < files.Count; f++)
        {
            var path = files[f].Path;
            var isLast = f == files.Count - 1;
            var data = File.ReadAllBytes(path);
            if (data.Length < WalFormat.FileHeaderSize)
            {
                if (isLast)
                {
                    // Crash while creating the file: rewrite a clean header.
                    Truncate(path, 0, writeHeader: true);
                    continue;
                }
                throw new StorageCorruptionException(path, 0, "WAL file shorter than its header");
            }
            if (BinaryPrimitives.ReadUInt64LittleEndian(data) != WalFormat.Magic
                || BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(8)) != WalFormat.FormatVersion)
            {
                throw new StorageCorruptionException(path, 0, "bad WAL header");
            }
            long off = WalFormat.FileHeaderSize;
            while (off < data.Length)
            {
                if (!TryRecord(data, off, out var len, out var seq))
                {
                    if (isLast && !AnyValidRecordAfter(data, off))
                    {
                        Truncate(path, off, writeHeader: false);
                        break;
                    }
                    throw new StorageCorruptionException(path, off, "WAL record checksum or length mismatch");
                }
                if (seq <= lastSeq)
                {
                    throw new StorageCorruptionException(path, off, $"WAL sequence {seq} not above {lastSeq}");
                }
                lastSeq = seq;
                onRecord(seq, data.AsSpan((int)off + WalFormat.RecordHeaderSize, len), path, off);
                off += WalFormat.RecordHeaderSize + len;
            }
        }
    }

    private static bool TryRecord(byte[] data, long off, out int len, out ulong seq)
    {
        len = 0;
        seq = 0;
        if (data.Length - off < WalFormat.RecordHeaderSize)
        {
            return false;
        }
        var h = data.AsSpan((int)off);
        len = BinaryPrimitives.ReadInt32LittleEndian(h);
        var crc = BinaryPrimitives.ReadUInt32LittleEndian(h[4..]);
        seq = BinaryPrimitives.ReadUInt64LittleEndian(h[8..]);
        if (len < 0 || len > WalFormat.MaxPayload || len > data.Length - off - WalFormat.RecordHeaderSize)
        {
            return false;
        }
        return WalFormat.RecordCrc(len, seq, h.Slice(WalFormat.RecordHeaderSize, len)) == crc;
    }

    private static bool AnyValidRecordAfter(byte[] data, long off)
    {
        for (var p = off + 1; p + WalFormat.RecordHeaderSize <= data.Length; p++)
        {
            if (TryRecord(data, p, out _, out _))
            {
                return true;
            }
        }
        return false;
    }

    private static void Truncate(string path, long length, bool writeHeader)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.None, 1);
        fs.SetLength(length);
        if (writeHeader)
        {
            Span<byte> h = stackalloc byte[WalFormat.FileHeaderSize];
            WalFormat.WriteFileHeader(h);
            fs.Write(h);
        }
        fs.Flush(true);
    }
}
