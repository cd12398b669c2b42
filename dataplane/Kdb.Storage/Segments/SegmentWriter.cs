using System.Buffers.Binary;
using Kdb.Storage.Index;

namespace Kdb.Storage.Segments;

/// <summary>
/// Segment file layout (format 1), all integers little-endian:
/// <code>
/// header   "KDBSEG01" u32 format u32 reserved
/// values   concatenated values
/// keys     concatenated keys
/// offsets  u64[N + 1] absolute key offsets (key i = [off[i], off[i+1]))
/// meta     N × 32: u64 valueOffset u64 version u32 valueLength u32 crc32c(key,value,version,kind) u8 kind 7×reserved
/// rtombs   u32 count, then (u16 len, start, u16 len, end, u64 version) each
/// index    the learned index (<see cref="SegmentIndex"/>), persisted so opening never retrains
/// footer   136 bytes: magic "KDBSEGFT", format, size, counts, region offsets, versions, region CRCs,
///          u32 key width (when every key has the same length, else 0), u32 reserved, own CRC
/// </code>
/// A non-zero key width lets readers address key i directly, without the dependent load of its
/// offset (segments written before the field existed have 0 there and use the offsets).
/// Keys and offsets are separate from the per-entry metadata so that the last-mile search touches
/// a few contiguous cache lines.
/// </summary>
internal sealed class SegmentWriter : IDisposable
{
    public const ulong HeaderMagic = 0x3130_4745_5342_444B; // "KDBSEG01"
    public const ulong FooterMagic = 0x5446_4745_5342_444B; // "KDBSEGFT"
    public const int FormatVersion = 1;
    public const int HeaderSize = 16;
    public const int FooterSize = 136;
    public const int MetaSize = 32;

    private readonly string _path;
    private readonly string _tmp;
    private readonly FileStream _fs;
    private readonly ByteWriter _keys = new(1 << 16);
    private readonly List<long> _keyOffsets = [0];
    private readonly ByteWriter _meta = new(1 << 16);
    private readonly List<RangeTombstone> _rts = [];
    private long _pos;
    private ulong _minVersion = ulong.MaxValue;
    private ulong _maxVersion;
    private int _keyWidth = -1; // −1: no key yet; 0: lengths differ
    private bool _done;

    public SegmentWriter(string path)
    {
        _path = path;
        _tmp = path + ".tmp";
        // 1 MiB buffer: values stream through in large sequential writes.
        _fs = new FileStream(_tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        Span<byte> h = stackalloc byte[HeaderSize];
        h.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(h, HeaderMagic);
        BinaryPrimitives.WriteInt32LittleEndian(h[8..], FormatVersion);
        _fs.Write(h);
        _pos = HeaderSize;
    }

    public long Count => _keyOffsets.Count - 1;

    /// <summary>Appends the next entry; keys must be strictly ascending.</summary>
    public void Add(ReadOnlySpan<byte> key, ulong version, OpKind kind, ReadOnlySpan<byte> value)
    {
        var valOff = _pos;
        _fs.Write(value);
        _pos += value.Length;
        _keys.Bytes(key);
        _keyOffsets.Add(_keys.Length);
        _keyWidth = _keyWidth == -1 || _keyWidth == key.Length ? key.Length : 0;
        var m = _meta.Reserve(MetaSize);
        m.Clear();
        BinaryPrimitives.WriteInt64LittleEndian(m, valOff);
        BinaryPrimitives.WriteUInt64LittleEndian(m[8..], version);
        BinaryPrimitives.WriteInt32LittleEndian(m[16..], value.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(m[20..], EntryCrc(key, value, version, kind));
        m[24] = (byte)kind;
        _minVersion = Math.Min(_minVersion, version);
        _maxVersion = Math.Max(_maxVersion, version);
    }

    public void AddRangeTombstone(RangeTombstone rt)
    {
        _rts.Add(rt);
        _minVersion = Math.Min(_minVersion, rt.Version);
        _maxVersion = Math.Max(_maxVersion, rt.Version);
    }

    public static uint EntryCrc(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, ulong version, OpKind kind)
    {
        Span<byte> tail = stackalloc byte[9];
        BinaryPrimitives.WriteUInt64LittleEndian(tail, version);
        tail[8] = (byte)kind;
        return FileUtil.Crc32C(tail, FileUtil.Crc32C(value, FileUtil.Crc32C(key)));
    }

    private readonly struct BufferKeys(byte[] keys, List<long> offsets) : IKeySource
    {
        public long Count => offsets.Count - 1;
        public ReadOnlySpan<byte> KeyAt(long index) =>
            keys.AsSpan((int)offsets[(int)index], (int)(offsets[(int)index + 1] - offsets[(int)index]));
        public void Prefetch(long index)
        {
        }
    }

    /// <summary>Stopwatch ticks <see cref="Finish"/> spent building the learned index.</summary>
    public long IndexBuildTicks { get; private set; }

    /// <summary>Builds the index, writes the remaining regions and the footer, fsyncs and renames.
    /// Returns the file size.</summary>
    public long Finish()
    {
        var keysArr = _keys.WrittenSpan.ToArray();
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var index = SegmentIndex.Build(new BufferKeys(keysArr, _keyOffsets));
        IndexBuildTicks = System.Diagnostics.Stopwatch.GetTimestamp() - started;

        var keysOff = _pos;
        _fs.Write(keysArr);
        _pos += keysArr.Length;
        var crcKeys = FileUtil.Crc32C(keysArr);

        var offsOff = _pos;
        var offs = new byte[_keyOffsets.Count * 8];
        for (var i = 0; i < _keyOffsets.Count; i++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(offs.AsSpan(i * 8), keysOff + _keyOffsets[i]);
        }
        _fs.Write(offs);
        _pos += offs.Length;
        var crcOffs = FileUtil.Crc32C(offs);

        var metaOff = _pos;
        _fs.Write(_meta.WrittenSpan);
        _pos += _meta.Length;
        var crcMeta = FileUtil.Crc32C(_meta.WrittenSpan);

        using var rtw = new ByteWriter();
        rtw.I32(_rts.Count);
        foreach (var rt in _rts)
        {
            rtw.U16((ushort)rt.Start.Length);
            rtw.Bytes(rt.Start);
            rtw.U16((ushort)rt.End.Length);
            rtw.Bytes(rt.End);
            rtw.U64(rt.Version);
        }
        var rtOff = _pos;
        _fs.Write(rtw.WrittenSpan);
        _pos += rtw.Length;

        using var iw = new ByteWriter();
        index.Write(iw);
        var idxOff = _pos;
        _fs.Write(iw.WrittenSpan);
        _pos += iw.Length;

        using var f = new ByteWriter(FooterSize);
        f.U64(FooterMagic);
        f.I32(FormatVersion);
        f.I32(FooterSize);
        f.I64(Count);
        f.I64(keysOff);
        f.I64(keysArr.Length);
        f.I64(offsOff);
        f.I64(metaOff);
        f.I64(rtOff);
        f.I64(rtw.Length);
        f.I64(idxOff);
        f.I64(iw.Length);
        f.U64(_minVersion == ulong.MaxValue ? 0 : _minVersion);
        f.U64(_maxVersion);
        f.U32(crcKeys);
        f.U32(crcOffs);
        f.U32(crcMeta);
        f.U32(FileUtil.Crc32C(rtw.WrittenSpan));
        f.U32(FileUtil.Crc32C(iw.WrittenSpan));
        f.U32((uint)Math.Max(_keyWidth, 0));
        f.U32(0);
        f.U32(FileUtil.Crc32C(f.WrittenSpan));
        _fs.Write(f.WrittenSpan);
        _pos += f.Length;
        _fs.Flush(true);
        _fs.Dispose();
        File.Move(_tmp, _path, overwrite: true);
        _done = true;
        return _pos;
    }

    public void Dispose()
    {
        _fs.Dispose();
        _keys.Dispose();
        _meta.Dispose();
        if (!_done)
        {
            try
            {
                File.Delete(_tmp);
            }
            catch (IOException)
            {
                // Best effort: an orphan temp file is removed at the next open.
            }
        }
    }
}
