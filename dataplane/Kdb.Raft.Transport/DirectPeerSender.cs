using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Google.Protobuf;
using Kdb.Raft.Transport.Wire;

namespace Kdb.Raft.Transport;

/// <summary>The outgoing half of one peer pair when the host flushes (<see cref="RaftTransportOptions.CallerFlushes"/>): the
/// same long-lived HTTP/2 request stream with gRPC framing that <see cref="PeerSender"/> opens through HttpClient, but spoken
/// over a socket of its own, so that <see cref="Flush"/> encodes everything queued in the round into one buffer and hands it
/// to the kernel on the caller's thread: no channel, no writer task, no thread hop per frame. A send that would block (a slow
/// or paused peer) never blocks the caller: the rest goes out on a background send, and what is queued meanwhile waits for
/// the next flush. HTTP/2 flow control is honoured (data beyond the peer's window waits for its WINDOW_UPDATE).</summary>
internal sealed class DirectPeerSender : IPeerSender
{
    private const int MaxMessagesPerFrame = 512;
    private const int FrameHeader = 9;
    private const byte Data = 0x0, Headers = 0x1, RstStream = 0x3, Settings = 0x4, Ping = 0x6, GoAway = 0x7, WindowUpdate = 0x8;
    private const byte EndStream = 0x1, EndHeaders = 0x4, Ack = 0x1;
    // Encoded bytes waiting for the peer's window beyond this are dropped with their messages (Raft resends).
    private const int MaxPendingBytes = 64 << 20;
    private static readonly byte[] Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray();

    private readonly Http2RaftTransport _owner;
    private readonly ulong _nodeId;
    private readonly Uri _address;
    private readonly int _capacity;
    private readonly CancellationToken _stop;
    private readonly ConcurrentQueue<Message> _queue = new();
    private readonly Lock _lock = new();
    private readonly RaftBatch _batch = new();
    // gRPC-framed bytes not yet cut into DATA frames (waiting for flow-control window): [_pendingStart, _pendingEnd) of
    // _pendingBuffer. What was sent is dropped from the front before the buffer grows: a writer reset only once empty kept
    // doubling (copying every byte already sent) while a follower's window never drained during a stream of 4 MiB appends.
    private byte[] _pendingBuffer = [];
    private int _pendingStart;
    private int _pendingEnd;
    // Frames ready for the socket.
    private readonly ArrayBufferWriter<byte> _out = new();
    private int _queued;
    private Socket? _socket;
    private bool _connecting;
    private bool _sending;
    private bool _closed;
    private long _connectionWindow;
    private long _streamWindow;
    private long _peerInitialWindow;
    private int _maxFrame;
    private long _retryAt;
    private int _backoffMs = 50;
    // Keep-alive, as HttpClient's sender has: a PING every 10 s while there is traffic; no answer within 5 s breaks the stream
    // (a peer that vanished without a reset would otherwise only show when the kernel's buffer fills).
    private static readonly long PingEvery = 10 * Stopwatch.Frequency;
    private static readonly long PingTimeout = 5 * Stopwatch.Frequency;
    private long _lastPing;
    private long _pingOutstandingSince;

    public DirectPeerSender(Http2RaftTransport owner, ulong nodeId, Uri address, int capacity, CancellationToken stop)
    {
        _owner = owner;
        _nodeId = nodeId;
        _address = address;
        _capacity = capacity;
        _stop = stop;
    }

    public void Enqueue(Message m)
    {
        if (Interlocked.Increment(ref _queued) > _capacity)
        {
            Interlocked.Decrement(ref _queued);
            Interlocked.Increment(ref _owner._dropped);
            return;
        }
        _queue.Enqueue(m);
    }

    public void Flush()
    {
        if (_queue.IsEmpty)
        {
            return;
        }
        lock (_lock)
        {
            if (_closed)
            {
                return;
            }
            if (_socket is null)
            {
                // Open a stream only once there is something to send, and not before the backoff after a failure ends.
                if (!_connecting && Stopwatch.GetTimestamp() >= _retryAt)
                {
                    _connecting = true;
                    _ = Task.Run(ConnectAsync, CancellationToken.None);
                }
                return;
            }
            var now = Stopwatch.GetTimestamp();
            if (_pingOutstandingSince != 0 && now - _pingOutstandingSince > PingTimeout)
            {
                FailLocked();
                return;
            }
            if (_pingOutstandingSince == 0 && now - _lastPing > PingEvery)
            {
                _lastPing = _pingOutstandingSince = now;
                Span<byte> payload = stackalloc byte[8];
                BinaryPrimitives.WriteInt64BigEndian(payload, now);
                ControlFrameLocked(_socket, Ping, 0, payload);
            }
            EncodeQueued();
            PumpLocked();
        }
    }

    public void Close()
    {
        lock (_lock)
        {
            _closed = true;
            CloseSocketLocked();
        }
    }

    // Moves every queued message into the pending buffer as gRPC messages of up to MaxMessagesPerFrame raft messages each.
    private void EncodeQueued()
    {
        while (!_queue.IsEmpty)
        {
            _batch.Messages.Clear();
            while (_batch.Messages.Count < MaxMessagesPerFrame && _queue.TryDequeue(out var m))
            {
                Interlocked.Decrement(ref _queued);
                _batch.Messages.Add(MessageCodec.ToWire(m));
            }
            if (_batch.Messages.Count == 0)
            {
                break;
            }
            if (_pendingEnd - _pendingStart > MaxPendingBytes)
            {
                Interlocked.Add(ref _owner._dropped, _batch.Messages.Count);
                continue;
            }
            var size = _batch.CalculateSize();
            var span = PendingSpan(GrpcFraming.HeaderBytes + size);
            GrpcFraming.WriteHeader(span, size);
            _batch.WriteTo(span[GrpcFraming.HeaderBytes..]);
            _pendingEnd += GrpcFraming.HeaderBytes + size;
        }
        _batch.Messages.Clear();
    }

    // Room for size more pending bytes: the unsent ones move to the front first, and the buffer grows only if that is not enough.
    private Span<byte> PendingSpan(int size)
    {
        if (_pendingBuffer.Length - _pendingEnd < size)
        {
            var unsent = _pendingEnd - _pendingStart;
            var target = _pendingBuffer;
            if (_pendingBuffer.Length - unsent < size)
            {
                target = new byte[Math.Max(unsent + size, _pendingBuffer.Length * 2)];
            }
            _pendingBuffer.AsSpan(_pendingStart, unsent).CopyTo(target);
            _pendingBuffer = target;
            _pendingStart = 0;
            _pendingEnd = unsent;
        }
        return _pendingBuffer.AsSpan(_pendingEnd, size);
    }

    // Cuts pending bytes into DATA frames as far as the windows allow and writes them, unless a background send owns the socket.
    private void PumpLocked()
    {
        var available = _pendingEnd - _pendingStart;
        while (available > 0 && _connectionWindow > 0 && _streamWindow > 0)
        {
            var n = (int)Math.Min(Math.Min(available, _maxFrame), Math.Min(_connectionWindow, _streamWindow));
            WriteFrameHeader(_out.GetSpan(FrameHeader), n, Data, 0, 1);
            _out.Advance(FrameHeader);
            _out.Write(_pendingBuffer.AsSpan(_pendingStart, n));
            _pendingStart += n;
            available -= n;
            _connectionWindow -= n;
            _streamWindow -= n;
        }
        if (available == 0 && _pendingStart > 0)
        {
            _pendingStart = _pendingEnd = 0;
        }
        if (_sending || _out.WrittenCount == 0 || _socket is null)
        {
            return;
        }
        int sent;
        try
        {
            sent = _socket.Send(_out.WrittenSpan, SocketFlags.None, out var error);
            if (error is not (SocketError.Success or SocketError.WouldBlock))
            {
                throw new SocketException((int)error);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            FailLocked();
            return;
        }
        if (sent == _out.WrittenCount)
        {
            _out.ResetWrittenCount();
            return;
        }
        // The kernel's buffer is full: the rest goes out in the background, never blocking the caller.
        var rest = _out.WrittenSpan[sent..].ToArray();
        _out.ResetWrittenCount();
        _sending = true;
        _ = SendInBackgroundAsync(_socket, rest);
    }

    private async Task SendInBackgroundAsync(Socket socket, byte[] bytes)
    {
        try
        {
            while (true)
            {
                var offset = 0;
                while (offset < bytes.Length)
                {
                    offset += await socket.SendAsync(bytes.AsMemory(offset), SocketFlags.None, _stop);
                }
                lock (_lock)
                {
                    if (_socket != socket)
                    {
                        return;
                    }
                    if (_out.WrittenCount == 0)
                    {
                        _sending = false;
                        return;
                    }
                    bytes = _out.WrittenSpan.ToArray();
                    _out.ResetWrittenCount();
                }
            }
        }
        catch (Exception)
        {
            lock (_lock)
            {
                if (_socket == socket)
                {
                    FailLocked();
                }
            }
        }
    }

    private async Task ConnectAsync()
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop))
            {
                timeout.CancelAfter(TimeSpan.FromSeconds(5));
                await socket.ConnectAsync(_address.Host, _address.Port, timeout.Token);
            }
            // Flush writes with a non-blocking send: a full kernel buffer must never stall the caller's loop.
            socket.Blocking = false;
            var preface = new ArrayBufferWriter<byte>();
            preface.Write(Preface);
            // Our SETTINGS: no push; the peer only ever answers with headers and trailers, so default windows do.
            var settings = preface.GetSpan(FrameHeader + 6);
            WriteFrameHeader(settings, 6, Settings, 0, 0);
            BinaryPrimitives.WriteUInt16BigEndian(settings[FrameHeader..], 0x2);
            BinaryPrimitives.WriteUInt32BigEndian(settings[(FrameHeader + 2)..], 0);
            preface.Advance(FrameHeader + 6);
            var block = HeaderBlock(_address);
            WriteFrameHeader(preface.GetSpan(FrameHeader), block.Length, Headers, EndHeaders, 1);
            preface.Advance(FrameHeader);
            preface.Write(block);
            var bytes = preface.WrittenMemory;
            while (bytes.Length > 0)
            {
                bytes = bytes[await socket.SendAsync(bytes, SocketFlags.None, _stop)..];
            }
            lock (_lock)
            {
                _connecting = false;
                if (_closed)
                {
                    socket.Dispose();
                    return;
                }
                _socket = socket;
                // RFC 9113 6.9.2 and 6.5.2: both windows start at 65,535 and frames at 16 KiB until the peer's SETTINGS say otherwise.
                _connectionWindow = _streamWindow = _peerInitialWindow = 65_535;
                _maxFrame = 16_384;
                _pendingStart = _pendingEnd = 0;
                _out.ResetWrittenCount();
                _sending = false;
                _backoffMs = 50;
                _lastPing = Stopwatch.GetTimestamp();
                _pingOutstandingSince = 0;
                EncodeQueued();
                PumpLocked();
            }
            _ = ReadLoopAsync(socket);
        }
        catch (Exception)
        {
            socket.Dispose();
            lock (_lock)
            {
                _connecting = false;
                ScheduleRetryLocked();
            }
            if (!_closed && !_stop.IsCancellationRequested)
            {
                _owner.PeerFailed(_nodeId);
            }
        }
    }

    // Reads the server's frames: settings, pings and window updates are answered; the end of the stream or connection closes it.
    private async Task ReadLoopAsync(Socket socket)
    {
        var buf = new byte[64 << 10];
        var filled = 0;
        try
        {
            while (true)
            {
                var n = await socket.ReceiveAsync(buf.AsMemory(filled), SocketFlags.None, _stop);
                if (n == 0)
                {
                    throw new IOException("peer closed the connection");
                }
                filled += n;
                var start = 0;
                while (filled - start >= FrameHeader)
                {
                    var len = (buf[start] << 16) | (buf[start + 1] << 8) | buf[start + 2];
                    if (len > buf.Length - FrameHeader)
                    {
                        throw new InvalidDataException($"frame of {len} bytes from the peer is larger than advertised");
                    }
                    if (filled - start < FrameHeader + len)
                    {
                        break;
                    }
                    var type = buf[start + 3];
                    var flags = buf[start + 4];
                    var stream = BinaryPrimitives.ReadUInt32BigEndian(buf.AsSpan(start + 5)) & 0x7fffffff;
                    OnFrame(socket, type, flags, stream, buf.AsSpan(start + FrameHeader, len));
                    start += FrameHeader + len;
                }
                Buffer.BlockCopy(buf, start, buf, 0, filled - start);
                filled -= start;
            }
        }
        catch (Exception)
        {
            lock (_lock)
            {
                if (_socket == socket)
                {
                    FailLocked();
                }
            }
        }
    }

    private void OnFrame(Socket socket, byte type, byte flags, uint stream, ReadOnlySpan<byte> payload)
    {
        switch (type)
        {
            case Settings when (flags & Ack) == 0:
                lock (_lock)
                {
                    for (var i = 0; i + 6 <= payload.Length; i += 6)
                    {
                        var id = BinaryPrimitives.ReadUInt16BigEndian(payload[i..]);
                        var value = BinaryPrimitives.ReadUInt32BigEndian(payload[(i + 2)..]);
                        if (id == 0x4)
                        {
                            _streamWindow += value - _peerInitialWindow;
                            _peerInitialWindow = value;
                        }
                        else if (id == 0x5)
                        {
                            _maxFrame = (int)Math.Clamp(value, 16_384u, 1u << 20);
                        }
                    }
                    ControlFrameLocked(socket, Settings, Ack, []);
                }
                break;
            case Ping when (flags & Ack) == 0:
                lock (_lock)
                {
                    ControlFrameLocked(socket, Ping, Ack, payload);
                }
                break;
            case Ping:
                lock (_lock)
                {
                    _pingOutstandingSince = 0;
                }
                break;
            case WindowUpdate:
                var increment = BinaryPrimitives.ReadUInt32BigEndian(payload) & 0x7fffffff;
                lock (_lock)
                {
                    if (stream == 0)
                    {
                        _connectionWindow += increment;
                    }
                    else
                    {
                        _streamWindow += increment;
                    }
                    if (_socket == socket)
                    {
                        PumpLocked();
                    }
                }
                break;
            case GoAway or RstStream:
                throw new IOException($"peer ended the stream (frame type {type})");
            case Headers or Data when (flags & EndStream) != 0:
                // The server answered the stream: it rejected a frame (counted on its side) or is shutting down.
                throw new IOException("peer completed the stream");
        }
    }

    private void ControlFrameLocked(Socket socket, byte type, byte flags, ReadOnlySpan<byte> payload)
    {
        if (_socket != socket)
        {
            return;
        }
        WriteFrameHeader(_out.GetSpan(FrameHeader), payload.Length, type, flags, 0);
        _out.Advance(FrameHeader);
        _out.Write(payload);
        PumpLocked();
    }

    private void FailLocked()
    {
        CloseSocketLocked();
        ScheduleRetryLocked();
        if (!_closed && !_stop.IsCancellationRequested)
        {
            _owner.PeerFailed(_nodeId);
        }
    }

    private void ScheduleRetryLocked()
    {
        _retryAt = Stopwatch.GetTimestamp() + (_backoffMs * Stopwatch.Frequency / 1000);
        _backoffMs = Math.Min(_backoffMs * 2, 1000);
    }

    private void CloseSocketLocked()
    {
        // Messages encoded for the old stream are lost, as Raft allows; queued ones go out on the next stream.
        _socket?.Dispose();
        _socket = null;
        _sending = false;
        _pendingStart = _pendingEnd = 0;
        _out.ResetWrittenCount();
    }

    private static void WriteFrameHeader(Span<byte> dest, int length, byte type, byte flags, uint stream)
    {
        dest[0] = (byte)(length >> 16);
        dest[1] = (byte)(length >> 8);
        dest[2] = (byte)length;
        dest[3] = type;
        dest[4] = flags;
        BinaryPrimitives.WriteUInt32BigEndian(dest[5..], stream);
    }

    // HPACK (RFC 7541) without Huffman or the dynamic table: :method POST and :scheme http from the static table, the rest as
    // literals without indexing on static names (:path 4, :authority 1, content-type 31) or a new name (te).
    private static byte[] HeaderBlock(Uri address)
    {
        var b = new List<byte> { 0x83, 0x86 };
        void String(string value)
        {
            // Every value here is far below 127 bytes: a one-byte length with the Huffman bit clear.
            var bytes = Encoding.ASCII.GetBytes(value);
            b.Add((byte)bytes.Length);
            b.AddRange(bytes);
        }
        b.Add(0x04);
        String(RaftTransport.StreamPath);
        b.Add(0x01);
        String(address.Authority);
        b.AddRange([0x0f, 0x10]);
        String("application/grpc");
        b.Add(0x00);
        String("te");
        String("trailers");
        return [.. b];
    }
}
