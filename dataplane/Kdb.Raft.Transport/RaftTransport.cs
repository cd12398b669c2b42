using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Kdb.Raft.Transport;

/// <summary>Carries Raft messages between nodes: one long-lived HTTP/2 stream per peer pair, gRPC framing, protobuf messages.</summary>
public interface IRaftTransport : IAsyncDisposable
{
    /// <summary>The port the server listens on (useful when 0 was asked for).</summary>
    int Port { get; }

    /// <summary>Queues a message for its recipient's node. Never blocks: when the peer's queue is full the message is dropped
    /// (counted in <see cref="MessagesDropped"/>), which Raft tolerates, and that is the flow control.</summary>
    void Send(Message message);

    /// <summary>Writes the messages queued since the last flush, on the caller's thread, when the transport was started with
    /// <see cref="RaftTransportOptions.CallerFlushes"/> (call it once per loop round, after the round's sends). Otherwise a
    /// no-op: the transport's own tasks send as messages arrive.</summary>
    void Flush()
    {
    }

    /// <summary>Sets or changes the address of a peer node.</summary>
    void SetPeer(ulong nodeId, Uri address);

    long MessagesReceived { get; }
    long MessagesDropped { get; }
    /// <summary>Frames rejected as malformed or truncated (each closes its stream; the node keeps running).</summary>
    long MalformedFrames { get; }
    /// <summary>Incoming connections whose peer streams were read straight off the connection rather than through
    /// Kestrel's HTTP/2 server (<see cref="RaftTransportOptions.DirectReceive"/>).</summary>
    long DirectConnections { get; }
}

/// <summary>Transport options.</summary>
public sealed record RaftTransportOptions
{
    public IPAddress ListenAddress { get; init; } = IPAddress.Loopback;
    /// <summary>0 picks a free port.</summary>
    public int ListenPort { get; init; }
    public IReadOnlyDictionary<ulong, Uri> Peers { get; init; } = new Dictionary<ulong, Uri>();
    /// <summary>Called on a server thread for each received message; the host must hand it to its Raft loop.</summary>
    public required Action<Message> OnMessage { get; init; }
    public int SendQueueCapacity { get; init; } = 8192;
    /// <summary>When true the transport starts no server of its own: the host serves the peer stream on its own Kestrel app
    /// (next to its other internal endpoints) through <see cref="RaftTransport.MapStream"/>.</summary>
    public bool HostedByCaller { get; init; }
    /// <summary>Called on a transport thread when the stream to a peer node cannot be opened or breaks: a failure detector's
    /// hint for quiesced groups (pass it to <see cref="IRaftNode.ReportUnreachable"/> of the groups shared with that node,
    /// through the host's loop). Must not throw or block. Null: nobody is told.</summary>
    public Action<ulong>? OnPeerUnreachable { get; init; }
    /// <summary>When true, <see cref="IRaftTransport.Send"/> only queues and <see cref="IRaftTransport.Flush"/> (which the host
    /// must call after each round) encodes everything queued per peer into one buffer and hands it to that peer's socket on
    /// the caller's thread: the same HTTP/2 stream and gRPC framing, without HttpClient's writer task and the thread hops per
    /// frame. A peer too slow to take the bytes never blocks the caller (the rest is sent in the background). Default false:
    /// the transport sends from its own tasks as messages arrive and <see cref="IRaftTransport.Flush"/> does nothing.</summary>
    public bool CallerFlushes { get; init; }
    /// <summary>When true (the default), the transport's own endpoint serves peer streams straight off their connections
    /// (<see cref="DirectStreamReceiver"/>) and hands received messages to <see cref="OnMessage"/> on the thread that read
    /// them, instead of through Kestrel's HTTP/2 request pipeline and a thread-pool hop per frame. A host serving the
    /// stream on its own endpoint turns it on there with <see cref="RaftTransport.ServeStreamsDirectly"/>.</summary>
    public bool DirectReceive { get; init; } = true;
}

/// <summary>Starts transports.</summary>
public static class RaftTransport
{
    /// <summary>The gRPC method path of the peer stream.</summary>
    public const string StreamPath = "/kdb.raft.v1.Raft/Stream";

    public static async Task<IRaftTransport> StartAsync(RaftTransportOptions options, CancellationToken ct = default)
    {
        var t = new Http2RaftTransport(options);
        if (!options.HostedByCaller)
        {
            await t.StartAsync(ct);
        }
        return t;
    }

    /// <summary>Serves the peer stream of <paramref name="transport"/> (started with <see cref="RaftTransportOptions.HostedByCaller"/>)
    /// on the caller's app, which must listen with HTTP/2.</summary>
    public static void MapStream(IEndpointRouteBuilder endpoints, IRaftTransport transport) =>
        endpoints.MapPost(StreamPath, ((Http2RaftTransport)transport).HandleAsync);

    /// <summary>Serves the peer streams of connections to <paramref name="listen"/> (an HTTP/2 endpoint that also maps
    /// <see cref="MapStream"/>) without Kestrel's HTTP/2 pipeline, on the thread that reads them; every other connection
    /// goes on to Kestrel untouched. <see cref="RaftTransportOptions.OnMessage"/> must then not block.</summary>
    public static void ServeStreamsDirectly(ListenOptions listen, IRaftTransport transport) =>
        listen.Use(DirectStreamReceiver.Middleware((Http2RaftTransport)transport));
}
