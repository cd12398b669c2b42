using System.Buffers.Binary;

namespace Kdb.Storage.Engine;

/// <summary>
/// The manifest: the live segments (newest first), the first WAL file still needed, the next file
/// number, the highest version stored in segments (the last applied Raft index in Raft mode) and
/// the GC threshold. Layout: "KDBMAN01", u32 format, u32 payload length, u32 crc32c(payload),
/// payload. Replaced atomically (temp + fsync + rename + directory fsync).
/// </summary>
internal sealed record Manifest(ulong NextFileNo, ulong WalStartFileNo, ulong PersistedVersion, ulong GcThreshold, bool RaftMode, ulong[] Segments)
{
    public const string FileName = "MANIFEST";
    private const ulong Magic = 0x3130_4E41_4D42_444B; // "KDBMAN01"
    private const int FormatVersion = 1;

    public void Write(string dir)
    {
        using var w = new ByteWriter();
        w.U64(Magic);
        w.I32(FormatVersion);
        w.I32(0);
        w.U32(0);
        var start = w.Length;
        w.U64(NextFileNo);
        w.U64(WalStartFileNo);
        w.U64(PersistedVersion);
        w.U64(GcThreshold);
        w.U8(RaftMode ? (byte)1 : (byte)0);
        w.I32(Segments.Length);
        foreach (var s in Segments)
        {
            w.U64(s);
        }
        var payload = w.WrittenSpan[start..];
        w.PatchU32(12, (uint)payload.Length);
        w.PatchU32(16, FileUtil.Crc32C(payload));
        FileUtil.WriteAtomically(Path.Combine(dir, FileName), w.WrittenSpan);
    }

    public static Manifest? Read(string dir)
    {
        var path = Path.Combine(dir, FileName);
        if (!File.Exists(path))
        {
            return null;
        }
        var data = File.ReadAllBytes(path);
        if (data.Length < 20 || BinaryPrimitives.ReadUInt64LittleEndian(data) != Magic)
        {
            throw new StorageCorruptionException(path, 0, "bad manifest header");
        }
        if (BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(8)) != FormatVersion)
        {
            throw new StorageCorruptionException(path, 8, "unsupported manifest format");
        }
        var len = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(12));
        var crc = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(16));
        if (len < 0 || len != data.Length - 20 || FileUtil.Crc32C(data.AsSpan(20)) != crc)
        {
            throw new StorageCorruptionException(path, 20, "manifest checksum or length mismatch");
        }
        try
        {
            var r = new ByteReader(data.AsSpan(20));
            var next = r.U64();
            var walStart = r.U64();
            var persisted = r.U64();
            var gc = r.U64();
            var raft = r.U8() == 1;
            var n = r.I32();
            if (n < 0)
            {
                throw new FormatException("negative segment count");
            }
            var segs = new ulong[n];
            for (var i = 0; i < n; i++)
            {
                segs[i] = r.U64();
            }
            return new Manifest(next, walStart, persisted, gc, raft, segs);
        }
        catch (FormatException e)
        {
            throw new StorageCorruptionException(path, 20, e.Message);
        }
    }
}
