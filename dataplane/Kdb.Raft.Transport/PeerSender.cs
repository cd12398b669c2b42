using System.Buffers;
using System.Net;
using System.Threading.Channels;
using Google.Protobuf;
using Kdb.Raft.Transport.Wire;

namespace Kdb.Raft.Transport;

/// <summary>The outgoing half of one peer pair: a bounded queue drained into one long-lived HTTP/2 request stream, reopened after failures.</summary>
internal sealed class PeerSender : IPeerSender
{
    // Frames batch what is queued, up to this many messages, so heartbeats of many groups share a frame.
    private const int MaxMessagesPerFrame = 512;
    private readonly Http2RaftTransport _owner;
    private readonly ulong _nodeId;
    private readonly HttpClient _http;
    private readonly Uri _address;
    private readonly Channel<Message> _queue;
    private readonly CancellationTokenSource _cts;

    public PeerSender(Http2RaftTransport owner, ulong nodeId, HttpClient http, Uri address, int capacity, CancellationToken stop)
    {
        _owner = owner;
        _nodeId = nodeId;
        _http = http;
        _address = address;
        _queue = Channel.CreateBounded<Message>(new BoundedChannelOptions(capacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        _cts = CancellationTokenSource.CreateLinkedTokenSource(stop);
        _ = Task.Run(RunAsync, CancellationToken.None);
    }

    public void Enqueue(Message m)
    {
        if (!_queue.Writer.TryWrite(m))
        {
            Interlocked.Increment(ref _owner._dropped);
        }
    }

    public void Close()
    {
        _queue.Writer.TryComplete();
        _cts.Cancel();
    }

    /// <summary>Nothing to do: the sender's own task drains the queue as messages arrive.</summary>
    public void Flush()
    {
    }

    private async Task RunAsync()
    {
        var backoff = TimeSpan.FromMilliseconds(50);
        var ct = _cts.Token;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                // Open a stream only once there is something to send: idle peers cost no connection.
                if (!await _queue.Reader.WaitToReadAsync(ct))
                {
                    return;
                }
                var content = new FrameStreamContent(_queue.Reader, ct);
                using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_address, RaftTransport.StreamPath))
                {
                    Version = HttpVersion.Version20,
                    VersionPolicy = HttpVersionPolicy.RequestVersionExact,
                    Content = content,
                };
                using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
                response.EnsureSuccessStatusCode();
                await content.Completion.WaitAsync(ct);
                backoff = TimeSpan.FromMilliseconds(50);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception)
            {
                // Peer down or stream reset: messages in flight are lost, as Raft allows. Retry with capped backoff.
                _owner.PeerFailed(_nodeId);
                try
                {
                    await Task.Delay(backoff, ct);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, 1000));
            }
        }
    }

    private sealed class FrameStreamContent(ChannelReader<Message> reader, CancellationToken ct) : HttpContent
    {
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Completion => _done.Task;

        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
        {
            try
            {
                var batch = new RaftBatch();
                while (await reader.WaitToReadAsync(ct))
                {
                    batch.Messages.Clear();
                    while (batch.Messages.Count < MaxMessagesPerFrame && reader.TryRead(out var m))
                    {
                        batch.Messages.Add(MessageCodec.ToWire(m));
                    }
                    var size = batch.CalculateSize();
                    var buf = ArrayPool<byte>.Shared.Rent(GrpcFraming.HeaderBytes + size);
                    try
                    {
                        GrpcFraming.WriteHeader(buf, size);
                        MessageExtensions.WriteTo(batch, buf.AsSpan(GrpcFraming.HeaderBytes, size));
                        await stream.WriteAsync(buf.AsMemory(0, GrpcFraming.HeaderBytes + size), ct);
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(buf);
                    }
                    await stream.FlushAsync(ct);
                }
                _done.TrySetResult();
            }
            catch (Exception e)
            {
                _done.TrySetException(e);
                throw;
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = -1;
            return false;
        }
    }
}

/// <summary>The outgoing half of one peer pair.</summary>
internal interface IPeerSender
{
    /// <summary>Queues a message; never blocks (a full queue drops it and counts the drop).</summary>
    void Enqueue(Message m);

    /// <summary>Writes what is queued, when the sender is one the caller flushes.</summary>
    void Flush();

    void Close();
}
