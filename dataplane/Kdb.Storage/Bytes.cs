using System.Buffers;
using System.Buffers.Binary;

namespace Kdb.Storage;

/// <summary>Little-endian appender over a pooled growable buffer.</summary>
internal sealed class ByteWriter : IDisposable
{
    private byte[] _buf;
    private int _len;

    public ByteWriter(int capacity = 256) => _buf = ArrayPool<byte>.Shared.Rent(capacity);

    public int Length => _len;

    public ReadOnlySpan<byte> WrittenSpan => _buf.AsSpan(0, _len);

    public void Reset() => _len = 0;

    public Span<byte> Reserve(int n)
    {
        if (_len + n > _buf.Length)
        {
            var nb = ArrayPool<byte>.Shared.Rent(Math.Max(_buf.Length * 2, _len + n));
            _buf.AsSpan(0, _len).CopyTo(nb);
            ArrayPool<byte>.Shared.Return(_buf);
            _buf = nb;
        }
        var s = _buf.AsSpan(_len, n);
        _len += n;
        return s;
    }

    public void U8(byte v) => Reserve(1)[0] = v;
    public void U16(ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(Reserve(2), v);
    public void U32(uint v) => BinaryPrimitives.WriteUInt32LittleEndian(Reserve(4), v);
    public void I32(int v) => BinaryPrimitives.WriteInt32LittleEndian(Reserve(4), v);
    public void U64(ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(Reserve(8), v);
    public void I64(long v) => BinaryPrimitives.WriteInt64LittleEndian(Reserve(8), v);
    public void F64(double v) => BinaryPrimitives.WriteDoubleLittleEndian(Reserve(8), v);
    public void Bytes(ReadOnlySpan<byte> v) => v.CopyTo(Reserve(v.Length));

    public void PatchU32(int offset, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(_buf.AsSpan(offset), v);

    public void Dispose()
    {
        ArrayPool<byte>.Shared.Return(_buf);
        _buf = [];
    }
}

/// <summary>Bounds-checked little-endian reader; a short read throws <see cref="FormatException"/>.</summary>
internal ref struct ByteReader(ReadOnlySpan<byte> data)
{
    private readonly ReadOnlySpan<byte> _data = data;
    private int _pos;

    public readonly int Position => _pos;
    public readonly int Remaining => _data.Length - _pos;

    public ReadOnlySpan<byte> Take(int n)
    {
        if (n < 0 || n > _data.Length - _pos)
        {
            throw new FormatException($"truncated data: need {n} bytes at {_pos}, have {_data.Length - _pos}");
        }
        var s = _data.Slice(_pos, n);
        _pos += n;
        return s;
    }

    public byte U8() => Take(1)[0];
    public ushort U16() => BinaryPrimitives.ReadUInt16LittleEndian(Take(2));
    public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));
    public int I32() => BinaryPrimitives.ReadInt32LittleEndian(Take(4));
    public ulong U64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));
    public long I64() => BinaryPrimitives.ReadInt64LittleEndian(Take(8));
    public double F64() => BinaryPrimitives.ReadDoubleLittleEndian(Take(8));
}
