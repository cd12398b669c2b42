using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Kdb.Sql.Codec;

/// <summary>A growable byte buffer reused across rows so that encoding a key or row allocates only when it grows.</summary>
internal sealed class ByteWriter
{
    private byte[] _buffer;

    public ByteWriter(int capacity = 256) => _buffer = new byte[capacity];

    public int Length { get; private set; }

    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, Length);

    public void Clear() => Length = 0;

    public byte[] ToArray() => _buffer.AsSpan(0, Length).ToArray();

    public void Truncate(int length) => Length = length;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Span<byte> GetSpan(int size)
    {
        if (Length + size > _buffer.Length)
        {
            Grow(size);
        }

        return _buffer.AsSpan(Length, size);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Advance(int count) => Length += count;

    private void Grow(int size)
    {
        var next = new byte[Math.Max(_buffer.Length * 2, Length + size)];
        _buffer.AsSpan(0, Length).CopyTo(next);
        _buffer = next;
    }

    public void WriteByte(byte value)
    {
        GetSpan(1)[0] = value;
        Length++;
    }

    public void Write(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(GetSpan(bytes.Length));
        Length += bytes.Length;
    }

    public void WriteUInt16BigEndian(ushort value)
    {
        BinaryPrimitives.WriteUInt16BigEndian(GetSpan(2), value);
        Length += 2;
    }

    public void WriteUInt32BigEndian(uint value)
    {
        BinaryPrimitives.WriteUInt32BigEndian(GetSpan(4), value);
        Length += 4;
    }

    public void WriteUInt64BigEndian(ulong value)
    {
        BinaryPrimitives.WriteUInt64BigEndian(GetSpan(8), value);
        Length += 8;
    }

    public void WriteInt64LittleEndian(long value)
    {
        BinaryPrimitives.WriteInt64LittleEndian(GetSpan(8), value);
        Length += 8;
    }

    public void WriteInt32LittleEndian(int value)
    {
        BinaryPrimitives.WriteInt32LittleEndian(GetSpan(4), value);
        Length += 4;
    }

    public void WriteVarUInt(ulong value)
    {
        var span = GetSpan(10);
        var i = 0;
        while (value >= 0x80)
        {
            span[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        span[i++] = (byte)value;
        Length += i;
    }
}

/// <summary>Reads what <see cref="ByteWriter"/> wrote; any overrun is a corrupt value (XX001), never an index exception.</summary>
internal ref struct ByteReader
{
    private readonly ReadOnlySpan<byte> _data;
    private int _position;

    public ByteReader(ReadOnlySpan<byte> data)
    {
        _data = data;
        _position = 0;
    }

    public readonly bool AtEnd => _position >= _data.Length;

    public byte ReadByte()
    {
        if (_position >= _data.Length)
        {
            throw Corrupt();
        }

        return _data[_position++];
    }

    public ReadOnlySpan<byte> ReadBytes(int count)
    {
        if (count < 0 || _position + count > _data.Length)
        {
            throw Corrupt();
        }

        var span = _data.Slice(_position, count);
        _position += count;
        return span;
    }

    public ushort ReadUInt16BigEndian() => BinaryPrimitives.ReadUInt16BigEndian(ReadBytes(2));

    public long ReadInt64LittleEndian() => BinaryPrimitives.ReadInt64LittleEndian(ReadBytes(8));

    public int ReadInt32LittleEndian() => BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4));

    public ulong ReadVarUInt()
    {
        ulong result = 0;
        var shift = 0;
        while (true)
        {
            var b = ReadByte();
            result |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return result;
            }

            shift += 7;
            if (shift > 63)
            {
                throw Corrupt();
            }
        }
    }

    public static SqlException Corrupt() => new("XX001", "stored row is corrupt (a value overruns its record)");
}
