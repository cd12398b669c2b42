using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;

namespace Kdb.Transactions;

/// <summary>
/// The binary form of a <see cref="CommitRecord"/>, as carried in Raft entries:
/// <code>
/// magic "KDCR" (u32 LE) | format version u8 | flags u8 | reserved u16 (0)
/// tenant u64 LE | readVersion u64 LE | [stagedTransactionId u64 LE when flags bit 0]
/// pointReads: varint count, each varint length + key
/// rangeReads: varint count, each start, end (length-prefixed)
/// writes:     varint count, each kind u8, key, and for Put the value, for DeleteRange the end
/// crc32c u32 LE of everything before it
/// </code>
/// Decoding never trusts a length before checking it against what remains, so truncated or random input
/// is a <see cref="CommitRecordFormatException"/>, never an out-of-range read or a huge allocation.
/// </summary>
public static class CommitRecordCodec
{
    /// <summary>"KDCR" little-endian.</summary>
    public const uint Magic = 0x5243444B;

    /// <summary>Current format version; decoding refuses others.</summary>
    public const byte FormatVersion = 1;

    private const int HeaderBytes = 4 + 1 + 1 + 2 + 8 + 8;
    private const byte FlagStaged = 1;

    /// <summary>Exact encoded length of <paramref name="record"/>.</summary>
    public static int GetEncodedLength(CommitRecord record)
    {
        long length = HeaderBytes + (record.StagedTransactionId != 0 ? 8 : 0) + 4;
        length += VarintLength((ulong)record.PointReads.Count);
        foreach (var key in record.PointReads)
        {
            length += BytesLength(key.Length);
        }

        length += VarintLength((ulong)record.RangeReads.Count);
        foreach (var range in record.RangeReads)
        {
            length += BytesLength(range.Start.Length) + BytesLength(range.End.Length);
        }

        length += VarintLength((ulong)record.Writes.Count);
        foreach (var write in record.Writes)
        {
            length += 1 + BytesLength(write.Key.Length) + (write.Kind == WriteKind.Delete ? 0 : BytesLength(write.ValueOrEnd.Length));
        }

        return length > CommitLimits.MaxRecordBytes
            ? throw new CommitRecordTooLargeException(length)
            : (int)length;
    }

    /// <summary>Encodes <paramref name="record"/> into a new array of exactly its length.</summary>
    public static byte[] Encode(CommitRecord record)
    {
        var buffer = new byte[GetEncodedLength(record)];
        Encode(record, buffer);
        return buffer;
    }

    /// <summary>Encodes into <paramref name="destination"/>, which must hold <see cref="GetEncodedLength"/> bytes; returns the bytes written.</summary>
    public static int Encode(CommitRecord record, Span<byte> destination)
    {
        Validate(record);
        var length = GetEncodedLength(record);
        if (destination.Length < length)
        {
            throw new ArgumentException($"destination holds {destination.Length} bytes, the record needs {length}", nameof(destination));
        }

        var span = destination[..length];
        BinaryPrimitives.WriteUInt32LittleEndian(span, Magic);
        span[4] = FormatVersion;
        span[5] = record.StagedTransactionId != 0 ? FlagStaged : (byte)0;
        BinaryPrimitives.WriteUInt16LittleEndian(span[6..], 0);
        BinaryPrimitives.WriteUInt64LittleEndian(span[8..], record.Tenant);
        BinaryPrimitives.WriteUInt64LittleEndian(span[16..], record.ReadVersion);
        var pos = HeaderBytes;
        if (record.StagedTransactionId != 0)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(span[pos..], record.StagedTransactionId);
            pos += 8;
        }

        pos += WriteVarint(span[pos..], (ulong)record.PointReads.Count);
        foreach (var key in record.PointReads)
        {
            pos += WriteBytes(span[pos..], key.Span);
        }

        pos += WriteVarint(span[pos..], (ulong)record.RangeReads.Count);
        foreach (var range in record.RangeReads)
        {
            pos += WriteBytes(span[pos..], range.Start.Span);
            pos += WriteBytes(span[pos..], range.End.Span);
        }

        pos += WriteVarint(span[pos..], (ulong)record.Writes.Count);
        foreach (var write in record.Writes)
        {
            span[pos++] = (byte)write.Kind;
            pos += WriteBytes(span[pos..], write.Key.Span);
            if (write.Kind != WriteKind.Delete)
            {
                pos += WriteBytes(span[pos..], write.ValueOrEnd.Span);
            }
        }

        BinaryPrimitives.WriteUInt32LittleEndian(span[pos..], Crc32C.Compute(span[..pos]));
        return pos + 4;
    }

    /// <summary>
    /// Decodes a record. Keys and values are slices of <paramref name="encoded"/> (no copies): keep it
    /// alive and unchanged while the record is used.
    /// </summary>
    public static CommitRecord Decode(ReadOnlyMemory<byte> encoded)
    {
        var span = encoded.Span;
        if (span.Length < HeaderBytes + 4 + 3)
        {
            Fail(0, $"{span.Length} bytes is shorter than any commit record");
        }

        if (BinaryPrimitives.ReadUInt32LittleEndian(span) != Magic)
        {
            Fail(0, "bad magic");
        }

        if (span[4] != FormatVersion)
        {
            Fail(4, $"unsupported format version {span[4]}");
        }

        var flags = span[5];
        if ((flags & ~FlagStaged) != 0 || BinaryPrimitives.ReadUInt16LittleEndian(span[6..]) != 0)
        {
            Fail(5, "unknown flags or non-zero reserved bytes");
        }

        var bodyEnd = span.Length - 4;
        if (Crc32C.Compute(span[..bodyEnd]) != BinaryPrimitives.ReadUInt32LittleEndian(span[bodyEnd..]))
        {
            Fail(bodyEnd, "checksum mismatch");
        }

        var tenant = BinaryPrimitives.ReadUInt64LittleEndian(span[8..]);
        var readVersion = BinaryPrimitives.ReadUInt64LittleEndian(span[16..]);
        var pos = HeaderBytes;
        ulong staged = 0;
        if ((flags & FlagStaged) != 0)
        {
            staged = ReadFixed64(span, ref pos, bodyEnd);
        }

        var pointCount = ReadCount(span, ref pos, bodyEnd, minItemBytes: 1);
        var points = new ReadOnlyMemory<byte>[pointCount];
        for (var i = 0; i < pointCount; i++)
        {
            points[i] = ReadBytes(encoded, ref pos, bodyEnd);
        }

        var rangeCount = ReadCount(span, ref pos, bodyEnd, minItemBytes: 2);
        var ranges = new KeyRange[rangeCount];
        for (var i = 0; i < rangeCount; i++)
        {
            ranges[i] = new KeyRange(ReadBytes(encoded, ref pos, bodyEnd), ReadBytes(encoded, ref pos, bodyEnd));
        }

        var writeCount = ReadCount(span, ref pos, bodyEnd, minItemBytes: 2);
        var writes = new TxWrite[writeCount];
        for (var i = 0; i < writeCount; i++)
        {
            if (pos >= bodyEnd)
            {
                Fail(pos, "truncated write");
            }

            var kind = (WriteKind)span[pos];
            if (kind is not (WriteKind.Put or WriteKind.Delete or WriteKind.DeleteRange))
            {
                Fail(pos, $"unknown write kind {span[pos]}");
            }

            pos++;
            var key = ReadBytes(encoded, ref pos, bodyEnd);
            var second = kind == WriteKind.Delete ? ReadOnlyMemory<byte>.Empty : ReadBytes(encoded, ref pos, bodyEnd);
            writes[i] = new TxWrite(kind, key, second);
        }

        if (pos != bodyEnd)
        {
            Fail(pos, $"{bodyEnd - pos} trailing bytes");
        }

        var record = new CommitRecord(tenant, readVersion, points, ranges, writes) { StagedTransactionId = staged };
        try
        {
            Validate(record);
        }
        catch (ArgumentException ex)
        {
            Fail(0, ex.Message);
        }

        return record;
    }

    /// <summary>Checks sizes and that every key belongs to the record's tenant (its 8-byte big-endian prefix).</summary>
    public static void Validate(CommitRecord record)
    {
        foreach (var key in record.PointReads)
        {
            CheckKey(record.Tenant, key.Span, "point read");
        }

        foreach (var range in record.RangeReads)
        {
            CheckKey(record.Tenant, range.Start.Span, "range start");
            CheckRangeEnd(record.Tenant, range.Start.Span, range.End.Span);
        }

        foreach (var write in record.Writes)
        {
            CheckKey(record.Tenant, write.Key.Span, "write");
            switch (write.Kind)
            {
                case WriteKind.Put when write.ValueOrEnd.Length > CommitLimits.MaxValueBytes:
                    throw new ArgumentException($"value of {write.ValueOrEnd.Length} bytes exceeds {CommitLimits.MaxValueBytes}");
                case WriteKind.DeleteRange:
                    CheckRangeEnd(record.Tenant, write.Key.Span, write.ValueOrEnd.Span);
                    break;
                case WriteKind.Put:
                case WriteKind.Delete:
                    break;
                default:
                    throw new ArgumentException($"unknown write kind {(byte)write.Kind}");
            }
        }
    }

    private static void CheckKey(ulong tenant, ReadOnlySpan<byte> key, string what)
    {
        if (key.Length < CommitLimits.TenantPrefixBytes || key.Length > CommitLimits.MaxKeyBytes)
        {
            throw new ArgumentException($"{what} key of {key.Length} bytes: keys hold the 8-byte tenant prefix and at most {CommitLimits.MaxKeyBytes} bytes");
        }

        // Tenant isolation is checked where every replica applies the record, not only where SQL built it.
        if (BinaryPrimitives.ReadUInt64BigEndian(key) != tenant)
        {
            throw new ArgumentException($"{what} key lies outside tenant {tenant}");
        }
    }

    private static void CheckRangeEnd(ulong tenant, ReadOnlySpan<byte> start, ReadOnlySpan<byte> end)
    {
        if (end.Length > CommitLimits.MaxKeyBytes || end.SequenceCompareTo(start) < 0)
        {
            throw new ArgumentException("range end precedes its start or is too long");
        }

        // The end is exclusive: the first key of the next tenant is the furthest a range may reach.
        if (end.Length >= CommitLimits.TenantPrefixBytes && BinaryPrimitives.ReadUInt64BigEndian(end) != tenant)
        {
            var isNextTenantStart = tenant != ulong.MaxValue && BinaryPrimitives.ReadUInt64BigEndian(end) == tenant + 1 && end[CommitLimits.TenantPrefixBytes..].IndexOfAnyExcept((byte)0) < 0;
            if (!isNextTenantStart)
            {
                throw new ArgumentException($"range end lies outside tenant {tenant}");
            }
        }
        else if (end.Length < CommitLimits.TenantPrefixBytes)
        {
            throw new ArgumentException("range end shorter than the tenant prefix");
        }
    }

    private static int BytesLength(int length) => VarintLength((ulong)length) + length;

    private static int VarintLength(ulong value)
    {
        var n = 1;
        while (value >= 0x80)
        {
            value >>= 7;
            n++;
        }

        return n;
    }

    private static int WriteVarint(Span<byte> span, ulong value)
    {
        var i = 0;
        while (value >= 0x80)
        {
            span[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        span[i++] = (byte)value;
        return i;
    }

    private static int WriteBytes(Span<byte> span, ReadOnlySpan<byte> bytes)
    {
        var n = WriteVarint(span, (ulong)bytes.Length);
        bytes.CopyTo(span[n..]);
        return n + bytes.Length;
    }

    private static ulong ReadVarint(ReadOnlySpan<byte> span, ref int pos, int end)
    {
        ulong value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (pos >= end)
            {
                Fail(pos, "truncated varint");
            }

            var b = span[pos++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return value;
            }
        }

        Fail(pos, "varint longer than 64 bits");
        return 0;
    }

    private static ulong ReadFixed64(ReadOnlySpan<byte> span, ref int pos, int end)
    {
        if (end - pos < 8)
        {
            Fail(pos, "truncated field");
        }

        var value = BinaryPrimitives.ReadUInt64LittleEndian(span[pos..]);
        pos += 8;
        return value;
    }

    private static int ReadCount(ReadOnlySpan<byte> span, ref int pos, int end, int minItemBytes)
    {
        var at = pos;
        var count = ReadVarint(span, ref pos, end);
        // Each item takes at least minItemBytes: a count beyond what remains is corrupt, and refusing it
        // here keeps a forged count from allocating gigabytes.
        if (count > (ulong)((end - pos) / minItemBytes))
        {
            Fail(at, $"count {count} exceeds the bytes that remain");
        }

        return (int)count;
    }

    private static ReadOnlyMemory<byte> ReadBytes(ReadOnlyMemory<byte> encoded, ref int pos, int end)
    {
        var at = pos;
        var length = ReadVarint(encoded.Span, ref pos, end);
        if (length > (ulong)(end - pos))
        {
            Fail(at, $"length {length} exceeds the bytes that remain");
        }

        var slice = encoded.Slice(pos, (int)length);
        pos += (int)length;
        return slice;
    }

    [DoesNotReturn]
    private static void Fail(int offset, string reason) => throw new CommitRecordFormatException(offset, reason);
}

/// <summary>An encoded commit record that cannot be decoded; <see cref="Offset"/> says where.</summary>
public sealed class CommitRecordFormatException(int offset, string reason)
    : FormatException($"invalid commit record at byte {offset}: {reason}")
{
    /// <summary>Byte offset of the problem in the encoded record.</summary>
    public int Offset { get; } = offset;
}

/// <summary>A record larger than one Raft entry: the SQL layer must stage its writes in chunks.</summary>
public sealed class CommitRecordTooLargeException(long bytes)
    : InvalidOperationException($"commit record of {bytes} bytes exceeds {CommitLimits.MaxRecordBytes}: stage the writes in chunks")
{
    /// <summary>Encoded size the record would have had.</summary>
    public long Bytes { get; } = bytes;
}
