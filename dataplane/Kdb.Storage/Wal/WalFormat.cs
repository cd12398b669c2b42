using System.Buffers.Binary;

namespace Kdb.Storage.Wal;

/// <summary>
/// WAL file: a 16-byte header ("KDBWAL01", u32 format, u32 reserved) then records
/// <c>[u32 payloadLength][u32 crc32c(length, sequence, payload)][u64 sequence][payload]</c>.
/// A batch payload is <c>u32 count</c> then per operation <c>u8 kind, u16 keyLength, key,
/// u32 valueLength, value</c> (the end key for a range delete).
/// </summary>
internal static class WalFormat
{
    public const ulong Magic = 0x3130_4C41_5742_444B; // "KDBWAL01"
    public const int FormatVersion = 1;
    public const int FileHeaderSize = 16;
    public const int RecordHeaderSize = 16;
    public const int MaxPayload = 1 << 30;

    public static string FileName(string dir, ulong fileNo) => Path.Combine(dir, $"{fileNo:D10}.wal");

    public static void WriteFileHeader(Span<byte> h)
    {
        h.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(h, Magic);
        BinaryPrimitives.WriteInt32LittleEndian(h[8..], FormatVersion);
    }

    public static uint RecordCrc(int length, ulong seq, ReadOnlySpan<byte> payload)
    {
        Span<byte> h = stackalloc byte[12];
        BinaryPrimitives.WriteInt32LittleEndian(h, length);
        BinaryPrimitives.WriteUInt64LittleEndian(h[4..], seq);
        return FileUtil.Crc32C(payload, FileUtil.Crc32C(h));
    }

    public static void EncodeBatch(WriteBatch batch, ByteWriter w)
    {
        w.I32(batch.Ops.Count);
        foreach (var op in batch.Ops)
        {
            w.U8((byte)op.Kind);
            w.U16((ushort)op.Key.Length);
            w.Bytes(op.Key);
            var v = op.Value ?? [];
            w.I32(v.Length);
            w.Bytes(v);
        }
    }

    /// <summary>Decodes a batch payload; throws <see cref="FormatException"/> when malformed.</summary>
    public static void DecodeBatch(ReadOnlySpan<byte> payload, List<BatchOp> ops)
    {
        var r = new ByteReader(payload);
        var n = r.I32();
        if (n < 0)
        {
            throw new FormatException("negative op count");
        }
        for (var i = 0; i < n; i++)
        {
            var kind = (OpKind)r.U8();
            if (kind is not (OpKind.Put or OpKind.Delete or OpKind.DeleteRange))
            {
                throw new FormatException($"unknown op kind {(byte)kind}");
            }
            var key = r.Take(r.U16()).ToArray();
            var val = r.Take(r.I32()).ToArray();
            ops.Add(new BatchOp(kind, key, kind == OpKind.Delete ? null : val));
        }
        if (r.Remaining != 0)
        {
            throw new FormatException("trailing bytes in batch");
        }
    }
}
