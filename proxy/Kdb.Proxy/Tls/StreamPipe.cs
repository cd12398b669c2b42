using System.IO.Pipelines;

namespace Kdb.Proxy.Tls;

/// <summary>Pipes over a stream (the client's socket or TLS), for the startup exchange.</summary>
internal sealed class StreamPipe(Stream stream) : IDuplexPipe
{
    public PipeReader Input { get; } = PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true));

    public PipeWriter Output { get; } = PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true));
}
