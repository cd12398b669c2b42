using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using Kdb.Storage.Index;

namespace Kdb.Storage.Segments;

/// <summary>
/// An immutable segment read through a memory map. Reference-counted: every version set that lists
/// it holds a reference, so a compaction that replaces it deletes the file only once the last
/// snapshot or in-flight read using it lets go.
/// </summary>
internal sealed unsafe class Segment : IKeySource
{
    private readonly MemoryMappedFile _mmf;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;
    private readonly long _offsOff;
    private readonly long _metaOff;
    private readonly long _keysOff;
    private readonly int _keyWidth; // every key has this length; 0: variable, read the offsets
    private readonly double _avgValueBytes;
    private int _refs = 1;
    private volatile bool _obsolete;

    private Segment(string path, ulong fileNo, long size, MemoryMappedFile mmf, MemoryMappedViewAccessor view, byte* basePtr,
        long count, long keysOff, int keyWidth, long offsOff, long metaOff, ulong minVersion, ulong maxVersion, RangeTombstone[] rts, SegmentIndex index)
    {
        Path = path;
        FileNo = fileNo;
        FileSize = size;
        _mmf = mmf;
        _view = view;
        _base = basePtr;
        Count = count;
        _keysOff = keysOff;
        _keyWidth = keyWidth;
        _avgValueBytes = count == 0 ? 0 : (double)(keysOff - SegmentWriter.HeaderSize) / count;
        _offsOff = offsOff;
        _metaOff = metaOff;
        MinVersion = minVersion;
        MaxVersion = maxVersion;
        RangeTombstones = rts;
        Index = index;
    }

    public string Path { get; }
    public ulong FileNo { get; }
    public long FileSize { get; }
    public long Count { get; }
    public ulong MinVersion { get; }
    public ulong MaxVersion { get; }
    public RangeTombstone[] RangeTombstones { get; }
    public SegmentIndex Index { get; }

    public static Segment Open(string path, ulong fileNo, bool verify)
    {
        long size;
        Span<byte> foot = stackalloc byte[SegmentWriter.FooterSize];
        using (var h = File.OpenHandle(path, FileMode.Open, FileAccess.Read))
        {
            size = RandomAccess.GetLength(h);
            if (size < SegmentWriter.HeaderSize + SegmentWriter.FooterSize)
            {
                throw new StorageCorruptionException(path, 0, "file too short for a segment");
            }
            RandomAccess.Read(h, foot, size - SegmentWriter.FooterSize);
        }
        var footOff = size - SegmentWriter.FooterSize;
        if (BinaryPrimitives.ReadUInt64LittleEndian(foot) != SegmentWriter.FooterMagic)
        {
            throw new StorageCorruptionException(path, footOff, "bad footer magic");
        }
        if (FileUtil.Crc32C(foot[..^4]) != BinaryPrimitives.ReadUInt32LittleEndian(foot[^4..]))
        {
            throw new StorageCorruptionException(path, footOff, "footer checksum mismatch");
        }
        var r = new ByteReader(foot);
        r.U64();
        var format = r.I32();
        if (format != SegmentWriter.FormatVersion || r.I32() != SegmentWriter.FooterSize)
        {
            throw new StorageCorruptionException(path, footOff, $"unsupported segment format {format}");
        }
        var count = r.I64();
        var keysOff = r.I64();
        var keysLen = r.I64();
        var offsOff = r.I64();
        var metaOff = r.I64();
        var rtOff = r.I64();
        var rtLen = r.I64();
        var idxOff = r.I64();
        var idxLen = r.I64();
        var minV = r.U64();
        var maxV = r.U64();
        var crcKeys = r.U32();
        var crcOffs = r.U32();
        var crcMeta = r.U32();
        var crcRt = r.U32();
        var crcIdx = r.U32();
        var keyWidth = r.I32();
        if (count < 0 || keysOff < SegmentWriter.HeaderSize || keysOff + keysLen != offsOff
            || offsOff + ((count + 1) * 8) != metaOff || metaOff + (count * SegmentWriter.MetaSize) != rtOff
            || rtOff + rtLen != idxOff || idxOff + idxLen != footOff || idxLen > int.MaxValue || rtLen > int.MaxValue
            || keyWidth < 0 || keyWidth > KvEngine.MaxKeyBytes || (keyWidth != 0 && keysLen != count * keyWidth))
        {
            throw new StorageCorruptionException(path, footOff, "inconsistent region offsets in footer");
        }
        var mmf = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        MemoryMappedViewAccessor? view = null;
        var acquired = false;
        try
        {
            view = mmf.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            acquired = true;
            p += view.PointerOffset;
            if (BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(p, 8)) != SegmentWriter.HeaderMagic)
            {
                throw new StorageCorruptionException(path, 0, "bad header magic");
            }
            if (verify)
            {
                Check(path, p, keysOff, keysLen, crcKeys, "keys");
                Check(path, p, offsOff, (count + 1) * 8, crcOffs, "key offsets");
                Check(path, p, metaOff, count * SegmentWriter.MetaSize, crcMeta, "entry table");
                CheckKeyWidth(path, p, keysOff, offsOff, count, keyWidth);
            }
            Check(path, p, rtOff, rtLen, crcRt, "range tombstones");
            Check(path, p, idxOff, idxLen, crcIdx, "learned index");
            RangeTombstone[] rts;
            SegmentIndex index;
            try
            {
                rts = ReadRangeTombstones(new ReadOnlySpan<byte>(p + rtOff, (int)rtLen));
                index = SegmentIndex.Read(new ReadOnlySpan<byte>(p + idxOff, (int)idxLen));
            }
            catch (FormatException e)
            {
                throw new StorageCorruptionException(path, rtOff, e.Message);
            }
            return new Segment(path, fileNo, size, mmf, view, p, count, keysOff, keyWidth, offsOff, metaOff, minV, maxV, rts, index);
        }
        catch
        {
            if (acquired)
            {
                view!.SafeMemoryMappedViewHandle.ReleasePointer();
            }
            view?.Dispose();
            mmf.Dispose();
            throw;
        }
    }

    private static void Check(string path, byte* p, long off, long len, uint expected, string what)
    {
        uint crc = 0;
        var done = 0L;
        // CRC is computed in chunks because a span is limited to 2 GiB.
        while (done < len)
        {
            var n = (int)Math.Min(len - done, 1 << 30);
            crc = FileUtil.Crc32C(new ReadOnlySpan<byte>(p + off + done, n), crc);
            done += n;
        }
        if (crc != expected)
        {
            throw new StorageCorruptionException(path, off, $"{what} checksum mismatch");
        }
    }

    /// <summary>A fixed key width must agree with every stored offset (the reads skip the offsets).</summary>
    private static void CheckKeyWidth(string path, byte* p, long keysOff, long offsOff, long count, int keyWidth)
    {
        if (keyWidth == 0)
        {
            return;
        }
        var offs = (long*)(p + offsOff);
        for (long i = 0; i <= count; i++)
        {
            if (offs[i] != keysOff + (i * keyWidth))
            {
                throw new StorageCorruptionException(path, offsOff + (i * 8), "key offset disagrees with the fixed key width");
            }
        }
    }

    private static RangeTombstone[] ReadRangeTombstones(ReadOnlySpan<byte> data)
    {
        var r = new ByteReader(data);
        var n = r.I32();
        if (n < 0)
        {
            throw new FormatException("bad range tombstone count");
        }
        var rts = new RangeTombstone[n];
        for (var i = 0; i < n; i++)
        {
            var s = r.Take(r.U16()).ToArray();
            var e = r.Take(r.U16()).ToArray();
            rts[i] = new RangeTombstone(s, e, r.U64());
        }
        return rts;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ReadOnlySpan<byte> KeyAt(long index)
    {
        if (_keyWidth != 0)
        {
            return new ReadOnlySpan<byte>(_base + _keysOff + (index * _keyWidth), _keyWidth);
        }
        var o = (long*)(_base + _offsOff) + index;
        return new ReadOnlySpan<byte>(_base + o[0], (int)(o[1] - o[0]));
    }

    public ulong VersionAt(long index) => *(ulong*)(_base + _metaOff + (index * SegmentWriter.MetaSize) + 8);

    public OpKind KindAt(long index) => (OpKind)_base[_metaOff + (index * SegmentWriter.MetaSize) + 24];

    /// <summary>The value at <paramref name="index"/>, verified against the entry checksum.</summary>
    public ReadOnlySpan<byte> ValueAt(long index)
    {
        var m = _base + _metaOff + (index * SegmentWriter.MetaSize);
        var valOff = *(long*)m;
        var version = *(ulong*)(m + 8);
        var len = *(int*)(m + 16);
        var crc = *(uint*)(m + 20);
        var kind = (OpKind)m[24];
        var value = new ReadOnlySpan<byte>(_base + valOff, len);
        if (SegmentWriter.EntryCrc(KeyAt(index), value, version, kind) != crc)
        {
            throw new StorageCorruptionException(Path, _metaOff + (index * SegmentWriter.MetaSize), "entry checksum mismatch");
        }
        return value;
    }

    /// <summary>Starts loading the entry table row and (estimated) value of the predicted entry
    /// while the search still waits for its keys: a point read then pays about one memory latency
    /// for key, entry and value instead of three in a row. Values are stored in key order, so entry
    /// i's value sits near i × the average value length; a wrong guess costs only the hint.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Prefetch(long index)
    {
        if (!Sse.IsSupported)
        {
            return;
        }
        Sse.Prefetch0(_base + _metaOff + (index * SegmentWriter.MetaSize));
        var v = _base + SegmentWriter.HeaderSize + (long)(index * _avgValueBytes);
        Sse.Prefetch0(v);
        Sse.Prefetch0(v + 64);
    }

    public long LowerBound(ReadOnlySpan<byte> key) => Index.LowerBound(key, new Keys(this));

    /// <summary>Position of exactly <paramref name="key"/>, or −1.</summary>
    public long Find(ReadOnlySpan<byte> key)
    {
        var pos = LowerBound(key);
        return pos < Count && KeyAt(pos).SequenceEqual(key) ? pos : -1;
    }

    /// <summary>Struct wrapper so the index search is specialized and inlined for segments.</summary>
    internal readonly struct Keys(Segment s) : IKeySource
    {
        public long Count => s.Count;
        public ReadOnlySpan<byte> KeyAt(long index) => s.KeyAt(index);
        public void Prefetch(long index) => s.Prefetch(index);
    }

    public bool TryAddRef()
    {
        while (true)
        {
            var r = Volatile.Read(ref _refs);
            if (r == 0)
            {
                return false;
            }
            if (Interlocked.CompareExchange(ref _refs, r + 1, r) == r)
            {
                return true;
            }
        }
    }

    public void AddRef()
    {
        if (!TryAddRef())
        {
            throw new InvalidOperationException("segment already released");
        }
    }

    /// <summary>Marks the file for deletion once the last reference is released.</summary>
    public void MarkObsolete() => _obsolete = true;

    public void Release()
    {
        if (Interlocked.Decrement(ref _refs) != 0)
        {
            return;
        }
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _mmf.Dispose();
        if (_obsolete)
        {
            try
            {
                File.Delete(Path);
            }
            catch (IOException)
            {
                // Left for the orphan sweep at the next open.
            }
        }
    }
}
