using System.Buffers.Binary;

namespace Kdb.Raft.Storage;

/// <summary>Record kinds in a log segment. Persisted: append only.</summary>
internal enum LogRecordType : byte
{
    Entry = 1,
    HardState = 2,
    /// <summary>A snapshot from the leader replaced the log: entries before this record are void.</summary>
    SnapshotInstalled = 3,
}

/// <summary>Segment and snapshot file layouts. Every record: [payload length u32][crc32c u32 of type+payload][type u8][payload].</summary>
internal static class LogFormat
{
    public const ulong SegmentMagic = 0x474F4C5446415244UL; // "DRAFTLOG" little-endian
    public const ulong SnapshotMagic = 0x504E535446415244UL; // "DRAFTSNP"
    public const uint Version = 1;
    public const int SegmentHeaderBytes = 28;
    public const int RecordHeaderBytes = 9;
    /// <summary>Upper bound on a record: an 8 MiB entry plus framing; anything larger is corruption, not data.</summary>
    public const int MaxRecordPayload = (8 << 20) + 1024;

    public static uint Crc(ReadOnlySpan<byte> data) => Crc32C.Compute(data);

    public static void WriteSegmentHeader(Span<byte> dest, ulong sequence)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(dest, SegmentMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(dest[8..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(dest[12..], 0);
        BinaryPrimitives.WriteUInt64LittleEndian(dest[16..], sequence);
        BinaryPrimitives.WriteUInt32LittleEndian(dest[24..], Crc(dest[..24]));
    }

    public static bool TryReadSegmentHeader(ReadOnlySpan<byte> src, out ulong sequence)
    {
        sequence = 0;
        if (src.Length < SegmentHeaderBytes
            || BinaryPrimitives.ReadUInt64LittleEndian(src) != SegmentMagic
            || BinaryPrimitives.ReadUInt32LittleEndian(src[24..]) != Crc(src[..24]))
        {
            return false;
        }
        if (BinaryPrimitives.ReadUInt32LittleEndian(src[8..]) != Version)
        {
            throw new InvalidDataException($"unsupported raft log segment version {BinaryPrimitives.ReadUInt32LittleEndian(src[8..])}");
        }
        sequence = BinaryPrimitives.ReadUInt64LittleEndian(src[16..]);
        return true;
    }

    public static int EntryRecordLength(Entry e) => RecordHeaderBytes + 17 + e.Data.Length;

    public static int WriteEntry(Span<byte> dest, Entry e)
    {
        var payload = dest[RecordHeaderBytes..];
        BinaryPrimitives.WriteUInt64LittleEndian(payload, e.Term);
        BinaryPrimitives.WriteUInt64LittleEndian(payload[8..], e.Index);
        payload[16] = (byte)e.Type;
        e.Data.Span.CopyTo(payload[17..]);
        return FinishRecord(dest, LogRecordType.Entry, 17 + e.Data.Length);
    }

    public const int HardStateRecordLength = RecordHeaderBytes + 24;

    public static int WriteHardState(Span<byte> dest, HardState hs)
    {
        var payload = dest[RecordHeaderBytes..];
        BinaryPrimitives.WriteUInt64LittleEndian(payload, hs.Term);
        BinaryPrimitives.WriteUInt64LittleEndian(payload[8..], hs.Vote);
        BinaryPrimitives.WriteUInt64LittleEndian(payload[16..], hs.Commit);
        return FinishRecord(dest, LogRecordType.HardState, 24);
    }

    public const int MarkerRecordLength = RecordHeaderBytes + 16;

    public static int WriteMarker(Span<byte> dest, ulong index, ulong term)
    {
        var payload = dest[RecordHeaderBytes..];
        BinaryPrimitives.WriteUInt64LittleEndian(payload, index);
        BinaryPrimitives.WriteUInt64LittleEndian(payload[8..], term);
        return FinishRecord(dest, LogRecordType.SnapshotInstalled, 16);
    }

    private static int FinishRecord(Span<byte> dest, LogRecordType type, int payloadLength)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(dest, (uint)payloadLength);
        dest[8] = (byte)type;
        BinaryPrimitives.WriteUInt32LittleEndian(dest[4..], Crc(dest.Slice(8, payloadLength + 1)));
        return RecordHeaderBytes + payloadLength;
    }

    /// <summary>Reads one record at <paramref name="offset"/>; false when the bytes there are not a whole valid record (torn or corrupt).</summary>
    public static bool TryReadRecord(ReadOnlySpan<byte> src, int offset, out LogRecordType type, out ReadOnlySpan<byte> payload, out int next)
    {
        type = default;
        payload = default;
        next = offset;
        if (src.Length - offset < RecordHeaderBytes)
        {
            return false;
        }
        var len = BinaryPrimitives.ReadUInt32LittleEndian(src[offset..]);
        if (len > MaxRecordPayload || len > (uint)(src.Length - offset - RecordHeaderBytes))
        {
            return false;
        }
        var crc = BinaryPrimitives.ReadUInt32LittleEndian(src[(offset + 4)..]);
        if (Crc(src.Slice(offset + 8, (int)len + 1)) != crc)
        {
            return false;
        }
        type = (LogRecordType)src[offset + 8];
        payload = src.Slice(offset + RecordHeaderBytes, (int)len);
        next = offset + RecordHeaderBytes + (int)len;
        return true;
    }

    public static Entry ReadEntry(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < 17)
        {
            throw new InvalidDataException("entry record too short");
        }
        return new Entry(
            BinaryPrimitives.ReadUInt64LittleEndian(payload),
            BinaryPrimitives.ReadUInt64LittleEndian(payload[8..]),
            (EntryType)payload[16],
            payload[17..].ToArray());
    }

    public static HardState ReadHardState(ReadOnlySpan<byte> payload) =>
        payload.Length != 24
            ? throw new InvalidDataException("hard state record has the wrong length")
            : new HardState(
                BinaryPrimitives.ReadUInt64LittleEndian(payload),
                BinaryPrimitives.ReadUInt64LittleEndian(payload[8..]),
                BinaryPrimitives.ReadUInt64LittleEndian(payload[16..]));

    /// <summary>Snapshot file version 2: the metadata and a reference to a separate data file (moved in by rename, never copied).</summary>
    public const uint SnapshotRefVersion = 2;

    private static int SnapshotHeaderLength(SnapshotMetadata meta) =>
        8 + 4 + 8 + 8 + 4 + (8 * meta.Conf.Voters.Length) + 4 + (8 * meta.Conf.Learners.Length);

    private static int WriteSnapshotHeader(Span<byte> s, SnapshotMetadata meta, uint version)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(s, SnapshotMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(s[8..], version);
        BinaryPrimitives.WriteUInt64LittleEndian(s[12..], meta.Index);
        BinaryPrimitives.WriteUInt64LittleEndian(s[20..], meta.Term);
        var p = 28;
        BinaryPrimitives.WriteUInt32LittleEndian(s[p..], (uint)meta.Conf.Voters.Length);
        p += 4;
        foreach (var v in meta.Conf.Voters)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(s[p..], v);
            p += 8;
        }
        BinaryPrimitives.WriteUInt32LittleEndian(s[p..], (uint)meta.Conf.Learners.Length);
        p += 4;
        foreach (var l in meta.Conf.Learners)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(s[p..], l);
            p += 8;
        }
        return p;
    }

    public static byte[] EncodeSnapshot(SnapshotMetadata meta, ReadOnlySpan<byte> data)
    {
        var buf = new byte[SnapshotHeaderLength(meta) + 8 + data.Length + 4];
        var s = buf.AsSpan();
        var p = WriteSnapshotHeader(s, meta, Version);
        BinaryPrimitives.WriteUInt64LittleEndian(s[p..], (ulong)data.Length);
        p += 8;
        data.CopyTo(s[p..]);
        p += data.Length;
        BinaryPrimitives.WriteUInt32LittleEndian(s[p..], Crc(s[..p]));
        return buf;
    }

    public static byte[] EncodeSnapshotRef(SnapshotMetadata meta, long dataLength, uint dataChecksum, ulong dataSeq)
    {
        var buf = new byte[SnapshotHeaderLength(meta) + 8 + 4 + 8 + 4];
        var s = buf.AsSpan();
        var p = WriteSnapshotHeader(s, meta, SnapshotRefVersion);
        BinaryPrimitives.WriteUInt64LittleEndian(s[p..], (ulong)dataLength);
        BinaryPrimitives.WriteUInt32LittleEndian(s[(p + 8)..], dataChecksum);
        BinaryPrimitives.WriteUInt64LittleEndian(s[(p + 12)..], dataSeq);
        p += 20;
        BinaryPrimitives.WriteUInt32LittleEndian(s[p..], Crc(s[..p]));
        return buf;
    }

    /// <summary>Checks a snapshot file and reads its metadata; <paramref name="p"/> is then where the version's tail starts.</summary>
    private static SnapshotMetadata ReadSnapshotHeader(ReadOnlySpan<byte> s, out uint version, out int p)
    {
        if (s.Length < 48 || BinaryPrimitives.ReadUInt64LittleEndian(s) != SnapshotMagic)
        {
            throw new InvalidDataException("raft snapshot file: bad magic or too short");
        }
        if (Crc(s[..^4]) != BinaryPrimitives.ReadUInt32LittleEndian(s[^4..]))
        {
            throw new InvalidDataException("raft snapshot file: checksum mismatch");
        }
        version = BinaryPrimitives.ReadUInt32LittleEndian(s[8..]);
        if (version != Version && version != SnapshotRefVersion)
        {
            throw new InvalidDataException("raft snapshot file: unsupported version");
        }
        var index = BinaryPrimitives.ReadUInt64LittleEndian(s[12..]);
        var term = BinaryPrimitives.ReadUInt64LittleEndian(s[20..]);
        p = 28;
        var voters = ReadIds(s, ref p);
        var learners = ReadIds(s, ref p);
        return new SnapshotMetadata(index, term, new ConfState(voters, learners));
    }

    /// <summary>Decodes a snapshot file of either version: version 1 holds the data (returned), version 2 names its data file.</summary>
    public static (SnapshotMetadata Meta, byte[]? Data, SnapshotDataRef Ref) DecodeSnapshot(ReadOnlySpan<byte> s)
    {
        var meta = ReadSnapshotHeader(s, out var version, out var p);
        if (version == SnapshotRefVersion)
        {
            if (p + 20 + 4 != s.Length)
            {
                throw new InvalidDataException("raft snapshot file: length mismatch");
            }
            var length = BinaryPrimitives.ReadUInt64LittleEndian(s[p..]);
            if (length > int.MaxValue)
            {
                throw new InvalidDataException("raft snapshot file: data length out of range");
            }
            return (meta, null, new SnapshotDataRef((long)length, BinaryPrimitives.ReadUInt32LittleEndian(s[(p + 8)..]), BinaryPrimitives.ReadUInt64LittleEndian(s[(p + 12)..])));
        }
        var dataLen = BinaryPrimitives.ReadUInt64LittleEndian(s[p..]);
        p += 8;
        if (dataLen > int.MaxValue || p + (long)dataLen + 4 != s.Length)
        {
            throw new InvalidDataException("raft snapshot file: length mismatch");
        }
        return (meta, s.Slice(p, (int)dataLen).ToArray(), default);
    }

    private static ulong[] ReadIds(ReadOnlySpan<byte> s, ref int p)
    {
        var n = (int)BinaryPrimitives.ReadUInt32LittleEndian(s[p..]);
        p += 4;
        if (n < 0 || n > 10_000 || p + (8 * n) > s.Length)
        {
            throw new InvalidDataException("raft snapshot file: bad member count");
        }
        var ids = new ulong[n];
        for (var i = 0; i < n; i++)
        {
            ids[i] = BinaryPrimitives.ReadUInt64LittleEndian(s[p..]);
            p += 8;
        }
        return ids;
    }
}

/// <summary>A version 2 snapshot file's data: its length, CRC32C and the sequence number in its file name.</summary>
internal readonly record struct SnapshotDataRef(long Length, uint Checksum, ulong Seq);
