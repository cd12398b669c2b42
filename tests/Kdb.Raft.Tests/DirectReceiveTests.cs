using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Google.Protobuf;
using Kdb.Raft.Transport;
using Kdb.Raft.Transport.Wire;

namespace Kdb.Raft.Tests;

/// <summary>The receive side that serves peer streams off their connections (<see cref="DirectStreamReceiver"/>), spoken to
/// by the real senders and by a raw HTTP/2 client that can send what the senders never do.</summary>
public sealed class DirectReceiveTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    private static async Task<(IRaftTransport Server, ConcurrentQueue<Message> Received)> StartServerAsync(bool direct = true)
    {
        var received = new ConcurrentQueue<Message>();
        var server = await RaftTransport.StartAsync(new RaftTransportOptions { OnMessage = received.Enqueue, CallerFlushes = true, DirectReceive = direct });
        return (server, received);
    }

    private static long Direct(IRaftTransport t) => t.DirectConnections;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task FlushedSender_StreamsServedDirectlyOnlyWhenAsked_AndEverythingArrives(bool direct)
    {
        var (server, received) = await StartServerAsync(direct);
        await using var _ = server;
        await using var a = await RaftTransport.StartAsync(new RaftTransportOptions
        {
            OnMessage = _ => { },
            Peers = new Dictionary<ulong, Uri> { [2] = new($"http://127.0.0.1:{server.Port}") },
            CallerFlushes = true,
        });
        for (var i = 0; i < 500; i++)
        {
            a.Send(new Message { Type = i % 2 == 0 ? MessageType.Heartbeat : MessageType.Append, GroupId = (ulong)i, From = 1, To = 2, Term = 1 });
        }
        var sw = Stopwatch.StartNew();
        while (received.Count < 500 && sw.Elapsed < Wait)
        {
            a.Flush();
            await Task.Delay(10);
        }
        Assert.Equal(500, received.Count);
        Assert.Equal(direct ? 1 : 0, Direct(server));
        Assert.Equal(0, server.MalformedFrames);
    }

    [Fact]
    public async Task HttpClientStream_ClaimedAndAnsweredWithTrailers()
    {
        var (server, received) = await StartServerAsync();
        await using var _ = server;
        using var http = new HttpClient();
        var uri = new Uri($"http://127.0.0.1:{server.Port}{RaftTransport.StreamPath}");
        for (var i = 0; i < 3; i++)
        {
            // Three requests on one connection: streams 1, 3 and 5 of a claimed connection.
            using var req = new HttpRequestMessage(HttpMethod.Post, uri)
            {
                Version = HttpVersion.Version20,
                VersionPolicy = HttpVersionPolicy.RequestVersionExact,
                Content = new ByteArrayContent([.. GrpcFrame(Batch(2, 3)), .. GrpcFrame(Batch(2, 1))]),
            };
            using var resp = await http.SendAsync(req);
            await resp.Content.ReadAsByteArrayAsync();
            Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
            Assert.Equal("application/grpc", resp.Content.Headers.ContentType?.MediaType);
            Assert.Equal("0", resp.TrailingHeaders.GetValues("grpc-status").Single());
        }
        Assert.Equal(12, received.Count);
        Assert.Equal(1, Direct(server));
    }

    [Fact]
    public async Task OtherRequests_GoOnToKestrel_AndOnAClaimedConnectionAreRefused()
    {
        var (server, received) = await StartServerAsync();
        await using var _ = server;
        using (var http = new HttpClient())
        {
            using var req = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{server.Port}/")
            {
                Version = HttpVersion.Version20,
                VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            };
            using var resp = await http.SendAsync(req);
            Assert.Equal(HttpStatusCode.NotFound, resp.StatusCode);
        }
        Assert.Equal(0, Direct(server));

        await using var raw = await RawPeer.ConnectAsync(server.Port);
        raw.Send(RawPeer.Headers(1, endStream: false, DirectPeerSender.HeaderBlock(new Uri($"http://127.0.0.1:{server.Port}"))));
        raw.Send(RawPeer.Headers(3, endStream: true, [0x82, 0x86, 0x84])); // GET / on the claimed connection
        var reset = await raw.ReadUntilAsync(f => f.Type == Http2Frames.RstStream);
        Assert.Equal(3u, reset.Stream);
        Assert.Equal(Http2Frames.RefusedStream, BinaryPrimitives.ReadUInt32BigEndian(reset.Payload));
        // Stream 1 still serves.
        raw.Send(RawPeer.DataFrame(1, GrpcFrame(Batch(2, 2)), endStream: true));
        var trailers = await raw.ReadUntilAsync(f => f.Type == Http2Frames.Headers && (f.Flags & Http2Frames.EndStream) != 0);
        Assert.Equal(1u, trailers.Stream);
        Assert.Equal(2, received.Count);
        Assert.Equal(1, Direct(server));
    }

    [Fact]
    public async Task Pings_Settings_AndWindowUpdates_AreAnswered_AndMessagesCutAcrossFramesArriveWhole()
    {
        var (server, received) = await StartServerAsync();
        await using var _ = server;
        await using var raw = await RawPeer.ConnectAsync(server.Port);
        raw.Send(RawPeer.Headers(1, endStream: false, DirectPeerSender.HeaderBlock(new Uri($"http://127.0.0.1:{server.Port}"))));
        var settings = await raw.ReadUntilAsync(f => f.Type == Http2Frames.Settings && f.Flags == 0);
        Assert.Contains(Settings(settings.Payload), s => s.Id == Http2Frames.SettingsInitialWindowSize && s.Value >= 1 << 20);
        await raw.ReadUntilAsync(f => f.Type == Http2Frames.Settings && f.Flags == Http2Frames.Ack);
        var response = await raw.ReadUntilAsync(f => f.Type == Http2Frames.Headers);
        Assert.Equal(1u, response.Stream);
        Assert.Equal(0, response.Flags & Http2Frames.EndStream);

        raw.Send(RawPeer.Frame(Http2Frames.Ping, 0, 0, [1, 2, 3, 4, 5, 6, 7, 8]));
        var pong = await raw.ReadUntilAsync(f => f.Type == Http2Frames.Ping);
        Assert.Equal(Http2Frames.Ack, pong.Flags);
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 }, pong.Payload);

        // 3 MiB of messages in frames of 10,000 bytes (messages straddle frames), some padded: past the 1 MiB step at which
        // the receiver hands window back, and past the 64 KiB default windows.
        var stream = new List<byte>();
        var count = 0;
        while (stream.Count < 3 << 20)
        {
            stream.AddRange(GrpcFrame(Batch(2, 1 + (count % 7), payloadBytes: count % 5 == 0 ? 40_000 : 10)));
            count += 1 + (count % 7);
        }
        var bytes = stream.ToArray();
        for (var at = 0; at < bytes.Length; at += 10_000)
        {
            var chunk = bytes.AsSpan(at, Math.Min(10_000, bytes.Length - at)).ToArray();
            raw.Send(at % 30_000 == 0 ? RawPeer.PaddedData(1, chunk, pad: 17) : RawPeer.DataFrame(1, chunk, endStream: false));
        }
        var updates = new List<(uint Stream, uint Increment)>();
        while (updates.Count < 4)
        {
            var f = await raw.ReadUntilAsync(f => f.Type == Http2Frames.WindowUpdate);
            updates.Add((f.Stream, BinaryPrimitives.ReadUInt32BigEndian(f.Payload)));
        }
        Assert.Contains(updates, u => u.Stream == 0 && u.Increment >= 1 << 20);
        Assert.Contains(updates, u => u.Stream == 1 && u.Increment >= 1 << 20);
        var sw = Stopwatch.StartNew();
        while (received.Count < count && sw.Elapsed < Wait)
        {
            await Task.Delay(10);
        }
        Assert.Equal(count, received.Count);
        // In order, each message whole.
        var first = received.First().Context;
        Assert.Equal(Enumerable.Range(0, count).Select(i => first + (ulong)i), received.Select(m => m.Context));
        Assert.Equal(0, server.MalformedFrames);
    }

    [Fact]
    public async Task BadGrpcFrame_EndsTheStreamWithStatus3_CountsIt_AndTheConnectionKeepsServing()
    {
        var (server, received) = await StartServerAsync();
        await using var _ = server;
        await using var raw = await RawPeer.ConnectAsync(server.Port);
        var block = DirectPeerSender.HeaderBlock(new Uri($"http://127.0.0.1:{server.Port}"));
        raw.Send(RawPeer.Headers(1, endStream: false, block));
        raw.Send(RawPeer.DataFrame(1, [.. GrpcFrame(Batch(2, 1)), .. GrpcFrame(Batch(2, 1), flag: 1)], endStream: false));
        var trailers = await raw.ReadUntilAsync(f => f.Type == Http2Frames.Headers && (f.Flags & Http2Frames.EndStream) != 0);
        Assert.Equal(1u, trailers.Stream);
        Assert.Equal('3', Status(trailers.Payload));
        var reset = await raw.ReadUntilAsync(f => f.Type == Http2Frames.RstStream);
        Assert.Equal(1u, reset.Stream);
        Assert.Equal(1, server.MalformedFrames);
        Assert.Single(received);
        // Late data on the ended stream is dropped; a new stream on the same connection serves.
        raw.Send(RawPeer.DataFrame(1, GrpcFrame(Batch(2, 1)), endStream: true));
        raw.Send(RawPeer.Headers(3, endStream: false, block));
        raw.Send(RawPeer.DataFrame(3, GrpcFrame(Batch(2, 2)), endStream: true));
        var ok = await raw.ReadUntilAsync(f => f.Type == Http2Frames.Headers && f.Stream == 3 && (f.Flags & Http2Frames.EndStream) != 0);
        Assert.Equal('0', Status(ok.Payload));
        Assert.Equal(3, received.Count);
        Assert.Equal(1, server.MalformedFrames);
    }

    [Fact]
    public async Task StreamEndingInsideAMessage_IsMalformed_AndWhatCameBeforeIsDelivered()
    {
        var (server, received) = await StartServerAsync();
        await using var _ = server;
        await using var raw = await RawPeer.ConnectAsync(server.Port);
        raw.Send(RawPeer.Headers(1, endStream: false, DirectPeerSender.HeaderBlock(new Uri($"http://127.0.0.1:{server.Port}"))));
        raw.Send(RawPeer.DataFrame(1, [.. GrpcFrame(Batch(2, 2)), .. GrpcFrame(Batch(2, 1))[..^3]], endStream: true));
        var trailers = await raw.ReadUntilAsync(f => f.Type == Http2Frames.Headers && (f.Flags & Http2Frames.EndStream) != 0);
        Assert.Equal('3', Status(trailers.Payload));
        Assert.Equal(2, received.Count);
        Assert.Equal(1, server.MalformedFrames);
    }

    /// <summary>Random frames, random bytes and connections cut anywhere: the server never delivers a message that was not
    /// sent whole, never stops serving, and a good stream afterwards works.</summary>
    [Fact]
    public async Task RandomAndTruncatedInput_NeverCrashes_AndTheServerKeepsServing()
    {
        var (server, received) = await StartServerAsync();
        await using var _ = server;
        var block = DirectPeerSender.HeaderBlock(new Uri($"http://127.0.0.1:{server.Port}"));
        var rng = new Random(11);
        var good = new List<byte>();
        good.AddRange(Http2Frames.Preface.ToArray());
        good.AddRange(RawPeer.Frame(Http2Frames.Settings, 0, 0, []));
        good.AddRange(RawPeer.Headers(1, endStream: false, block));
        good.AddRange(RawPeer.DataFrame(1, GrpcFrame(Batch(2, 1)), endStream: false));
        var goodBytes = good.ToArray();
        for (var round = 0; round < 60; round++)
        {
            using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(IPAddress.Loopback, server.Port);
            byte[] bytes;
            switch (round % 3)
            {
                case 0:
                    // A good start cut anywhere.
                    bytes = goodBytes[..rng.Next(1, goodBytes.Length)];
                    break;
                case 1:
                    // A good start, then random frames with plausible headers.
                    var frames = new List<byte>(goodBytes);
                    for (var i = 0; i < 5; i++)
                    {
                        var payload = new byte[rng.Next(0, 64)];
                        rng.NextBytes(payload);
                        frames.AddRange(RawPeer.Frame((byte)rng.Next(0, 12), (byte)rng.Next(0, 256), (uint)rng.Next(0, 6), payload));
                    }
                    bytes = [.. frames];
                    break;
                default:
                    // A good start, then raw noise.
                    var noise = new byte[rng.Next(1, 400)];
                    rng.NextBytes(noise);
                    bytes = [.. goodBytes, .. noise];
                    break;
            }
            await socket.SendAsync(bytes, SocketFlags.None);
            socket.Shutdown(SocketShutdown.Send);
            var sink = new byte[4096];
            using var cut = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                while (await socket.ReceiveAsync(sink, SocketFlags.None, cut.Token) > 0)
                {
                }
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
            }
        }
        Assert.All(received, m => Assert.Equal(2UL, m.To));
        var before = received.Count;
        await using var raw = await RawPeer.ConnectAsync(server.Port);
        raw.Send(RawPeer.Headers(1, endStream: false, block));
        raw.Send(RawPeer.DataFrame(1, GrpcFrame(Batch(2, 4)), endStream: true));
        var ok = await raw.ReadUntilAsync(f => f.Type == Http2Frames.Headers && (f.Flags & Http2Frames.EndStream) != 0);
        Assert.Equal('0', Status(ok.Payload));
        Assert.Equal(before + 4, received.Count);
    }

    [Theory]
    [InlineData(new byte[] { 0x83, 0x86, 0x04, 0x18 }, "Unsupported")] // length beyond the block
    [InlineData(new byte[] { 0x83, 0x44, 0x81, 0x2f }, "Unsupported")] // incremental indexing
    [InlineData(new byte[] { 0x83, 0x04, 0x81, 0x2f }, "Unsupported")] // Huffman-coded value
    [InlineData(new byte[] { 0x83, 0xbe }, "Unsupported")] // dynamic table index
    [InlineData(new byte[] { 0x82, 0x84 }, "Other")] // GET /
    [InlineData(new byte[] { 0x3f, 0xe1, 0x1f, 0x82, 0x84 }, "Other")] // table size update, then GET /
    public void HeaderBlocks_DecodedOnlyWhenFullyUnderstood(byte[] block, string expected) =>
        Assert.Equal(expected, HpackLiterals.ReadRequest(block).ToString());

    [Fact]
    public void HeaderBlocks_TheSendersOwnIsAPeerStream_AndNoPrefixShortOfItsPathIs()
    {
        var block = DirectPeerSender.HeaderBlock(new Uri("http://127.0.0.1:7101"));
        Assert.Equal(HpackLiterals.Request.RaftStream, HpackLiterals.ReadRequest(block));
        // :method and :scheme indexed (2 bytes), then :path as a literal: index byte, length byte, the path.
        var pathEnd = 2 + 2 + RaftTransport.StreamPath.Length;
        for (var n = 0; n < block.Length; n++)
        {
            var request = HpackLiterals.ReadRequest(block.AsSpan(0, n));
            if (n < pathEnd)
            {
                Assert.NotEqual(HpackLiterals.Request.RaftStream, request);
            }
        }
    }

    // The grpc-status value of a trailers block this receiver wrote: a literal with the new name "grpc-status".
    private static char Status(byte[] block)
    {
        Assert.Equal(0x00, block[0]);
        Assert.Equal("grpc-status"u8.ToArray(), block[2..13]);
        return (char)block[14];
    }

    private static IEnumerable<(ushort Id, uint Value)> Settings(byte[] payload)
    {
        for (var i = 0; i + 6 <= payload.Length; i += 6)
        {
            yield return (BinaryPrimitives.ReadUInt16BigEndian(payload.AsSpan(i)), BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(i + 2)));
        }
    }

    private static int _context;

    private static byte[] Batch(ulong to, int messages, int payloadBytes = 0)
    {
        var batch = new RaftBatch();
        for (var i = 0; i < messages; i++)
        {
            var m = new RaftMessage { Type = (uint)MessageType.Append, From = 1, To = to, Term = 1, GroupId = 1, Context = (ulong)(Interlocked.Increment(ref _context) - 1) };
            if (payloadBytes > 0)
            {
                m.Entries.Add(new WireEntry { Term = 1, Index = 1, Type = (uint)EntryType.Normal, Data = ByteString.CopyFrom(new byte[payloadBytes]) });
            }
            batch.Messages.Add(m);
        }
        return batch.ToByteArray();
    }

    private static byte[] GrpcFrame(byte[] payload, byte flag = 0) => TransportTests.Frame(payload, flag);

    /// <summary>A bare HTTP/2 client over a socket: it sends whatever bytes it is given and reads the server's frames.</summary>
    private sealed class RawPeer : IAsyncDisposable
    {
        private readonly Socket _socket;
        private readonly byte[] _buffer = new byte[1 << 20];
        private int _filled;

        private RawPeer(Socket socket) => _socket = socket;

        public static async Task<RawPeer> ConnectAsync(int port)
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(IPAddress.Loopback, port);
            var peer = new RawPeer(socket);
            peer.Send([.. Http2Frames.Preface, .. Frame(Http2Frames.Settings, 0, 0, [])]);
            return peer;
        }

        public void Send(byte[] bytes) => _socket.Send(bytes);

        public static byte[] Frame(byte type, byte flags, uint stream, byte[] payload)
        {
            var f = new byte[Http2Frames.HeaderBytes + payload.Length];
            Http2Frames.WriteFrameHeader(f, payload.Length, type, flags, stream);
            payload.CopyTo(f, Http2Frames.HeaderBytes);
            return f;
        }

        public static byte[] Headers(uint stream, bool endStream, byte[] block) =>
            Frame(Http2Frames.Headers, (byte)(Http2Frames.EndHeaders | (endStream ? Http2Frames.EndStream : 0)), stream, block);

        public static byte[] DataFrame(uint stream, byte[] data, bool endStream) =>
            Frame(Http2Frames.Data, endStream ? Http2Frames.EndStream : (byte)0, stream, data);

        public static byte[] PaddedData(uint stream, byte[] data, byte pad) =>
            Frame(Http2Frames.Data, Http2Frames.Padded, stream, [pad, .. data, .. new byte[pad]]);

        public async Task<(byte Type, byte Flags, uint Stream, byte[] Payload)> ReadUntilAsync(Func<(byte Type, byte Flags, uint Stream, byte[] Payload), bool> match)
        {
            using var timeout = new CancellationTokenSource(Wait);
            while (true)
            {
                while (_filled >= Http2Frames.HeaderBytes)
                {
                    var (length, type, flags, stream) = Http2Frames.ReadFrameHeader(_buffer);
                    if (_filled < Http2Frames.HeaderBytes + length)
                    {
                        break;
                    }
                    var frame = (type, flags, stream, _buffer.AsSpan(Http2Frames.HeaderBytes, length).ToArray());
                    Buffer.BlockCopy(_buffer, Http2Frames.HeaderBytes + length, _buffer, 0, _filled - Http2Frames.HeaderBytes - length);
                    _filled -= Http2Frames.HeaderBytes + length;
                    Assert.NotEqual(Http2Frames.GoAway, type);
                    if (match(frame))
                    {
                        return frame;
                    }
                }
                var n = await _socket.ReceiveAsync(_buffer.AsMemory(_filled), SocketFlags.None, timeout.Token);
                if (n == 0)
                {
                    throw new IOException("the server closed the connection");
                }
                _filled += n;
            }
        }

        public ValueTask DisposeAsync()
        {
            _socket.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
