using System.IO.Pipelines;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Kdb.PgWire.Server;

/// <summary>TLS for the SSLRequest upgrade.</summary>
public static class PgTls
{
    /// <summary>
    /// An upgrade for <see cref="PgConnectionInfo.UpgradeToTls"/>: runs a TLS server handshake with
    /// <paramref name="certificate"/> over <paramref name="transport"/> and returns a pipe over the
    /// encrypted stream.
    /// </summary>
    public static Func<CancellationToken, ValueTask<IDuplexPipe>> CreateUpgrade(IDuplexPipe transport, X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(transport);
        ArgumentNullException.ThrowIfNull(certificate);
        return async cancellationToken =>
        {
            var ssl = new SslStream(new DuplexPipeStream(transport), leaveInnerStreamOpen: false);
            await ssl.AuthenticateAsServerAsync(
                new SslServerAuthenticationOptions { ServerCertificate = certificate, ClientCertificateRequired = false },
                cancellationToken).ConfigureAwait(false);
            return new StreamDuplexPipe(ssl);
        };
    }

    private sealed class StreamDuplexPipe(Stream stream) : IDuplexPipe
    {
        public PipeReader Input { get; } = PipeReader.Create(stream);

        public PipeWriter Output { get; } = PipeWriter.Create(stream);
    }

    /// <summary>A Stream over a duplex pipe, so SslStream can run on a Kestrel or socket pipe.</summary>
    private sealed class DuplexPipeStream(IDuplexPipe pipe) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush() => FlushAsync().GetAwaiter().GetResult();

        public override async Task FlushAsync(CancellationToken cancellationToken) =>
            await pipe.Output.FlushAsync(cancellationToken).ConfigureAwait(false);

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            while (true)
            {
                ReadResult r = await pipe.Input.ReadAsync(cancellationToken).ConfigureAwait(false);
                if (!r.Buffer.IsEmpty)
                {
                    int n = (int)Math.Min(buffer.Length, r.Buffer.Length);
                    System.Buffers.BuffersExtensions.CopyTo(r.Buffer.Slice(0, n), buffer.Span);
                    pipe.Input.AdvanceTo(r.Buffer.GetPosition(n));
                    return n;
                }

                pipe.Input.AdvanceTo(r.Buffer.Start, r.Buffer.End);
                if (r.IsCompleted || r.IsCanceled)
                {
                    return 0;
                }
            }
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            await pipe.Output.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                pipe.Input.Complete();
                pipe.Output.Complete();
            }

            base.Dispose(disposing);
        }
    }
}
