namespace Kdb.Proxy.Http;

/// <summary>Counts the bytes read from or written to a request or response body on its way through (HTTP metering).</summary>
internal sealed class CountingStream(Stream inner) : Stream
{
    private long _count;

    public long Count => _count;

    public override bool CanRead => inner.CanRead;

    public override bool CanSeek => inner.CanSeek;

    public override bool CanWrite => inner.CanWrite;

    public override long Length => inner.Length;

    // A rewind (the body sent again to another replica) takes back what was counted past the new position.
    public override long Position
    {
        get => inner.Position;
        set
        {
            _count -= Math.Max(0, inner.Position - value);
            inner.Position = value;
        }
    }

    public override void Flush() => inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => Counted(inner.Read(buffer, offset, count));

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        Counted(await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count)
    {
        inner.Write(buffer, offset, count);
        _count += count;
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        _count += buffer.Length;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override long Seek(long offset, SeekOrigin origin)
    {
        long before = inner.Position;
        long after = inner.Seek(offset, origin);
        _count -= Math.Max(0, before - after);
        return after;
    }

    public override void SetLength(long value) => inner.SetLength(value);

    private int Counted(int read)
    {
        _count += read;
        return read;
    }
}
