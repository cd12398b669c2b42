using System.Buffers;

namespace Kdb.PgWire.Types;

/// <summary>A growable buffer rented from the shared pool, reused across rows and messages of one connection.</summary>
internal sealed class ScratchBuffer : IDisposable
{
    private byte[] _buffer;
    private int _written;

    public ScratchBuffer(int initialSize = 1024) => _buffer = ArrayPool<byte>.Shared.Rent(initialSize);

    public int Written => _written;

    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _written);

    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _written);

    public Span<byte> GetSpan(int size)
    {
        if (_buffer.Length - _written < size)
        {
            Grow(size);
        }

        return _buffer.AsSpan(_written);
    }

    public void Advance(int count) => _written += count;

    public void Write(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(GetSpan(bytes.Length));
        _written += bytes.Length;
    }

    public Span<byte> WrittenMutable(int start, int length) => _buffer.AsSpan(start, length);

    public void Reset() => _written = 0;

    /// <summary>Gives a large buffer back so an idle connection keeps little memory.</summary>
    public void Shrink(int keep)
    {
        if (_buffer.Length > keep * 4 && _written <= keep)
        {
            byte[] small = ArrayPool<byte>.Shared.Rent(keep);
            _buffer.AsSpan(0, _written).CopyTo(small);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = small;
        }
    }

    private void Grow(int size)
    {
        byte[] bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, _written + size));
        _buffer.AsSpan(0, _written).CopyTo(bigger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = bigger;
    }

    public void Dispose()
    {
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
        _written = 0;
    }
}
