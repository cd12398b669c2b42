using System.Collections.Concurrent;
using Kdb.Raft.Transport.Wire;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Kdb.Raft.Transport;

internal sealed class Http2RaftTransport : IRaftTransport
{
    private readonly RaftTransportOptions _options;
    private readonly ConcurrentDictionary<ulong, IPeerSender> _peers = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly HttpClient _http;
    private WebApplication? _app;
    private long _received;
    private long _malformed;
    private long _directConnections;
    internal long _dropped;

    public Http2RaftTransport(RaftTransportOptions options)
    {
        _options = options;
        Port = options.ListenPort;
        _http = new HttpClient(new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = false,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            KeepAlivePingDelay = TimeSpan.FromSeconds(10),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
        })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
        foreach (var (id, uri) in options.Peers)
        {
            SetPeer(id, uri);
        }
    }

    public int Port { get; private set; }
    public long MessagesReceived => Interlocked.Read(ref _received);
    public long MessagesDropped => Interlocked.Read(ref _dropped);
    public long MalformedFrames => Interlocked.Read(ref _malformed);
    public long DirectConnections => Interlocked.Read(ref _directConnections);
    internal bool Stopping => _stop.IsCancellationRequested;

    internal void CountDirectConnection() => Interlocked.Increment(ref _directConnections);
    internal void CountMalformed() => Interlocked.Increment(ref _malformed);

    public async Task StartAsync(CancellationToken ct)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore();
        if (_options.CallerFlushes)
        {
            // A host that flushes wants no hops: received frames are decoded and handed to OnMessage (which must not block)
            // on the socket's I/O thread instead of after a thread-pool dispatch.
            builder.WebHost.UseSockets(o => o.UnsafePreferInlineScheduling = true);
        }
        builder.WebHost.ConfigureKestrel(k =>
        {
            // Windows hold four 4 MiB import entries in flight on the append stream with room left on the connection for the
            // control stream; 1 MiB frames cut a 4 MiB entry into 4 DATA frames instead of 256 (HttpClient's sender keeps
            // its own 16 KiB frames).
            k.Limits.Http2.InitialStreamWindowSize = 16 << 20;
            k.Limits.Http2.InitialConnectionWindowSize = 32 << 20;
            k.Limits.Http2.MaxFrameSize = 1 << 20;
            k.Limits.MaxRequestBodySize = null;
            k.Listen(_options.ListenAddress, _options.ListenPort, l =>
            {
                l.Protocols = HttpProtocols.Http2;
                if (_options.DirectReceive)
                {
                    l.Use(DirectStreamReceiver.Middleware(this));
                }
            });
        });
        var app = builder.Build();
        app.Run(HandleAsync);
        await app.StartAsync(ct);
        var address = app.Services.GetRequiredServiceFeature().Addresses.First();
        Port = new Uri(address).Port;
        _app = app;
    }

    public void SetPeer(ulong nodeId, Uri address)
    {
        IPeerSender sender = _options.CallerFlushes
            ? new DirectPeerSender(this, nodeId, address, _options.SendQueueCapacity, _stop.Token)
            : new PeerSender(this, nodeId, _http, address, _options.SendQueueCapacity, _stop.Token);
        if (_peers.TryGetValue(nodeId, out var old))
        {
            old.Close();
        }
        _peers[nodeId] = sender;
    }

    internal void PeerFailed(ulong nodeId) => _options.OnPeerUnreachable?.Invoke(nodeId);

    public void Send(Message message)
    {
        if (_peers.TryGetValue(message.To, out var peer))
        {
            peer.Enqueue(message);
        }
        else
        {
            Interlocked.Increment(ref _dropped);
        }
    }

    public void Flush()
    {
        foreach (var p in _peers.Values)
        {
            p.Flush();
        }
    }

    internal async Task HandleAsync(HttpContext ctx)
    {
        if (!HttpMethods.IsPost(ctx.Request.Method) || ctx.Request.Path != RaftTransport.StreamPath)
        {
            ctx.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }
        ctx.Response.ContentType = "application/grpc";
        await ctx.Response.StartAsync(ctx.RequestAborted);
        var status = "0";
        string? error = null;
        try
        {
            while (await GrpcFraming.ReadFrameAsync(ctx.Request.BodyReader, RaftBatch.Parser, ctx.RequestAborted) is { } batch)
            {
                Deliver(batch);
            }
        }
        catch (InvalidDataException e)
        {
            Interlocked.Increment(ref _malformed);
            status = "3";
            error = e.Message;
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or Microsoft.AspNetCore.Http.BadHttpRequestException)
        {
            // The peer went away; it reconnects.
            return;
        }
        if (ctx.Response.SupportsTrailers())
        {
            ctx.Response.AppendTrailer("grpc-status", status);
            if (error is not null)
            {
                ctx.Response.AppendTrailer("grpc-message", Uri.EscapeDataString(error));
            }
        }
    }

    /// <summary>Decodes a received batch whole before delivering any of it: a bad frame delivers nothing (it throws
    /// <see cref="InvalidDataException"/>).</summary>
    internal void Deliver(RaftBatch batch)
    {
        var messages = new Message[batch.Messages.Count];
        for (var i = 0; i < messages.Length; i++)
        {
            messages[i] = MessageCodec.FromWire(batch.Messages[i]);
        }
        foreach (var m in messages)
        {
            Interlocked.Increment(ref _received);
            _options.OnMessage(m);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        foreach (var p in _peers.Values)
        {
            p.Close();
        }
        if (_app is not null)
        {
            // Peer streams never end on their own: do not wait out Kestrel's graceful-shutdown timeout for them.
            using var now = new CancellationTokenSource();
            await now.CancelAsync();
            await _app.StopAsync(now.Token);
            await _app.DisposeAsync();
        }
        _http.Dispose();
        _stop.Dispose();
    }
}

internal static class ServiceProviderExtensions
{
    public static IServerAddressesFeature GetRequiredServiceFeature(this IServiceProvider services) =>
        ((IServer)services.GetService(typeof(IServer))!).Features.Get<IServerAddressesFeature>()!;
}
