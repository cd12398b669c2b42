using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Kdb.Raft.Transport.Wire;

namespace Kdb.Raft.Transport;

/// <summary>The outgoing half of one peer pair when the host flushes (<see cref="RaftTransportOptions.CallerFlushes"/>): the
/// long-lived HTTP/2 requests with gRPC framing that <see cref="PeerSender"/> opens through HttpClient, but spoken over a
/// socket of its own, so that <see cref="Flush"/> encodes what is queued and hands it to the kernel on the caller's thread:
/// no channel, no writer task, no thread hop per frame. A send that would block (a slow or paused peer) never blocks the
/// caller: the rest goes out on a background send, and what is queued meanwhile waits for it. HTTP/2 flow control is
/// honoured (data beyond the peer's window waits for its WINDOW_UPDATE).
/// Two request streams share the connection: appends and snapshots (bulk, in order) on one, everything else (heartbeats,
/// votes, responses, reads) on the other, cut into frames first: a heartbeat queued behind a follower's backlog of 4 MiB
/// appends arrived late enough for the follower to pre-vote. Raft allows the reordering between the two (a heartbeat's
/// commit never passes the follower's acknowledged match). Large entry data goes to the kernel from its own memory.</summary>
internal sealed class DirectPeerSender : IPeerSender
{
    private const int MaxMessagesPerFrame = 512;
    private const int FrameHeader = Http2Frames.HeaderBytes;
    private const byte Data = Http2Frames.Data, Headers = Http2Frames.Headers, RstStream = Http2Frames.RstStream,
        Settings = Http2Frames.Settings, Ping = Http2Frames.Ping, GoAway = Http2Frames.GoAway, WindowUpdate = Http2Frames.WindowUpdate;
    private const byte EndStream = Http2Frames.EndStream, EndHeaders = Http2Frames.EndHeaders, Ack = Http2Frames.Ack;
    private const uint BulkStream = 1, ControlStream = 3;
    // Encoded bytes waiting for the peer's window beyond this (per stream) are dropped with their messages (Raft resends).
    private const int MaxPendingBytes = 64 << 20;
    // Bulk bytes are cut into frames only while less than this waits for the kernel, so control frames queue behind little.
    private const int BulkAhead = 1 << 20;
    private const int ArenaBytes = 4 << 10;
    private const int MaxSegments = 512;

    private readonly Http2RaftTransport _owner;
    private readonly ulong _nodeId;
    private readonly Uri _address;
    private readonly int _capacity;
    private readonly CancellationToken _stop;
    private readonly ConcurrentQueue<Message> _queue = new();
    private readonly Lock _lock = new();
    private readonly Lane _bulk = new(BulkStream);
    private readonly Lane _control = new(ControlStream);
    // Frames ready for the socket, in order; a background send owns another list while it runs.
    private List<Piece> _out = [];
    private List<Piece> _spare = [];
    private readonly List<ArraySegment<byte>> _segments = [];
    // Bytes cut into frames and not yet in the kernel (both lists).
    private long _unsent;
    // Frame headers and small control payloads are written here (pooled, released through the out list once sent).
    private byte[] _arena = [];
    private int _arenaUsed;
    private int _queued;
    private Socket? _socket;
    private bool _connecting;
    private bool _sending;
    private bool _closed;
    private long _connectionWindow;
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

    /// <summary>One request stream: gRPC-framed bytes not yet cut into DATA frames, and the stream's window.</summary>
    private sealed class Lane(uint streamId)
    {
        public readonly uint StreamId = streamId;
        public readonly Queue<Piece> Pending = new();
        public readonly RaftBatch Batch = new();
        // Bytes of the first pending piece already cut into frames.
        public int HeadUsed;
        public long PendingBytes;
        public long Window;

        public void Clear()
        {
            Pending.Clear();
            Batch.Messages.Clear();
            HeadUsed = 0;
            PendingBytes = 0;
        }
    }

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

    // Moves every queued message into its stream's pending pieces: small ones batched as gRPC messages of up to
    // MaxMessagesPerFrame raft messages, one carrying large entry data alone with that data referenced in place.
    private void EncodeQueued()
    {
        while (_queue.TryDequeue(out var m))
        {
            Interlocked.Decrement(ref _queued);
            var lane = m.Type is MessageType.Append or MessageType.Snapshot ? _bulk : _control;
            if (lane.PendingBytes > MaxPendingBytes)
            {
                Interlocked.Increment(ref _owner._dropped);
                continue;
            }
            if (WireEncoding.WantsSplice(m))
            {
                EncodeBatch(lane);
                lane.PendingBytes += WireEncoding.EncodeSpliced(m, lane.Pending);
                continue;
            }
            lane.Batch.Messages.Add(MessageCodec.ToWire(m));
            if (lane.Batch.Messages.Count >= MaxMessagesPerFrame)
            {
                EncodeBatch(lane);
            }
        }
        EncodeBatch(_control);
        EncodeBatch(_bulk);
    }

    private static void EncodeBatch(Lane lane)
    {
        if (lane.Batch.Messages.Count > 0)
        {
            lane.PendingBytes += WireEncoding.EncodeBatch(lane.Batch, lane.Pending);
            lane.Batch.Messages.Clear();
        }
    }

    // Cuts pending bytes into DATA frames as far as the windows allow (control first) and writes them, until a background
    // send owns the socket.
    private void PumpLocked()
    {
        while (_socket is not null)
        {
            CutLocked(_control, long.MaxValue);
            CutLocked(_bulk, BulkAhead);
            if (_sending || _out.Count == 0)
            {
                return;
            }
            SendLocked();
            if (_sending || _bulk.PendingBytes == 0 || _bulk.Window <= 0 || _connectionWindow <= 0)
            {
                return;
            }
        }
    }

    private void CutLocked(Lane lane, long limit)
    {
        while (true)
        {
            // Pieces that only release an array pass at once (they hold no bytes).
            while (lane.Pending.TryPeek(out var marker) && marker.Count == 0)
            {
                _out.Add(lane.Pending.Dequeue());
            }
            if (lane.PendingBytes == 0 || lane.Window <= 0 || _connectionWindow <= 0 || _unsent >= limit)
            {
                return;
            }
            var n = (int)Math.Min(Math.Min(lane.PendingBytes, _maxFrame), Math.Min(_connectionWindow, lane.Window));
            var header = ArenaLocked(FrameHeader);
            Http2Frames.WriteFrameHeader(_arena.AsSpan(header.Offset, FrameHeader), n, Data, 0, lane.StreamId);
            _out.Add(header);
            var left = n;
            while (left > 0)
            {
                var p = lane.Pending.Peek();
                var rest = p.Count - lane.HeadUsed;
                if (rest <= left)
                {
                    lane.Pending.Dequeue();
                    _out.Add(p with { Offset = p.Offset + lane.HeadUsed, Count = rest });
                    lane.HeadUsed = 0;
                    left -= rest;
                }
                else
                {
                    _out.Add(new Piece(p.Array, p.Offset + lane.HeadUsed, left, null));
                    lane.HeadUsed += left;
                    left = 0;
                }
            }
            lane.PendingBytes -= n;
            lane.Window -= n;
            _connectionWindow -= n;
            _unsent += FrameHeader + n;
        }
    }

    // Room in the arena for a small write; a full arena is released through the out list behind what was cut from it.
    private Piece ArenaLocked(int size)
    {
        if (_arena.Length - _arenaUsed < size)
        {
            if (_arena.Length > 0)
            {
                _out.Add(new Piece(_arena, 0, 0, _arena));
            }
            _arena = ArrayPool<byte>.Shared.Rent(Math.Max(ArenaBytes, size));
            _arenaUsed = 0;
        }
        var piece = new Piece(_arena, _arenaUsed, size, null);
        _arenaUsed += size;
        return piece;
    }

    // Hands the out list to the kernel without blocking; what does not fit goes on in the background.
    private void SendLocked()
    {
        if (_sending || _socket is null || _out.Count == 0)
        {
            return;
        }
        Segments(_out, _segments);
        var sent = 0;
        if (_segments.Count > 0)
        {
            try
            {
                sent = _socket.Send(_segments, SocketFlags.None, out var error);
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
        }
        _unsent -= sent;
        Consume(_out, sent);
        if (_out.Count == 0)
        {
            return;
        }
        // The kernel's buffer is full: the rest goes out in the background, never blocking the caller.
        var rest = _out;
        _out = _spare;
        _spare = [];
        _sending = true;
        _ = SendInBackgroundAsync(_socket, rest);
    }

    // The first pieces as one gather write, at most MaxSegments of them (sendmsg refuses more than IOV_MAX, 1024 on Linux).
    private static void Segments(List<Piece> pieces, List<ArraySegment<byte>> into)
    {
        into.Clear();
        foreach (var p in pieces)
        {
            if (p.Count > 0)
            {
                if (into.Count == MaxSegments)
                {
                    return;
                }
                into.Add(new ArraySegment<byte>(p.Array, p.Offset, p.Count));
            }
        }
    }

    // Drops the first sent bytes of pieces, returning pooled arrays whose last piece is through.
    private static void Consume(List<Piece> pieces, long sent)
    {
        var i = 0;
        for (; i < pieces.Count; i++)
        {
            var p = pieces[i];
            if (p.Count > sent)
            {
                pieces[i] = p with { Offset = p.Offset + (int)sent, Count = p.Count - (int)sent };
                break;
            }
            sent -= p.Count;
            if (p.Release is { } pooled)
            {
                ArrayPool<byte>.Shared.Return(pooled);
            }
        }
        pieces.RemoveRange(0, i);
    }

    private async Task SendInBackgroundAsync(Socket socket, List<Piece> pieces)
    {
        var segments = new List<ArraySegment<byte>>();
        try
        {
            while (true)
            {
                Segments(pieces, segments);
                long total = 0;
                foreach (var s in segments)
                {
                    total += s.Count;
                }
                long done = 0;
                while (done < total)
                {
                    var n = await socket.SendAsync(segments, SocketFlags.None);
                    done += n;
                    Skip(segments, n);
                }
                lock (_lock)
                {
                    if (_socket != socket)
                    {
                        return;
                    }
                    _unsent -= total;
                    Consume(pieces, total);
                    // What the windows allow of the backlog now, behind what the caller queued meanwhile.
                    CutLocked(_control, long.MaxValue);
                    CutLocked(_bulk, BulkAhead);
                    if (pieces.Count == 0 && _out.Count == 0)
                    {
                        _spare = pieces;
                        _sending = false;
                        return;
                    }
                    // What this send left (past MaxSegments) goes first, then what was cut meanwhile.
                    pieces.AddRange(_out);
                    _out.Clear();
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

    // Drops the first n bytes of a segment list (a partial send).
    private static void Skip(List<ArraySegment<byte>> segments, int n)
    {
        var i = 0;
        while (i < segments.Count && n >= segments[i].Count)
        {
            n -= segments[i].Count;
            i++;
        }
        segments.RemoveRange(0, i);
        if (n > 0)
        {
            segments[0] = segments[0][n..];
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
            preface.Write(Http2Frames.Preface);
            // Our SETTINGS: no push; the peer only ever answers with headers and trailers, so default windows do.
            var settings = preface.GetSpan(FrameHeader + 6);
            Http2Frames.WriteFrameHeader(settings, 6, Settings, 0, 0);
            BinaryPrimitives.WriteUInt16BigEndian(settings[FrameHeader..], 0x2);
            BinaryPrimitives.WriteUInt32BigEndian(settings[(FrameHeader + 2)..], 0);
            preface.Advance(FrameHeader + 6);
            var block = HeaderBlock(_address);
            foreach (var stream in (ReadOnlySpan<uint>)[BulkStream, ControlStream])
            {
                Http2Frames.WriteFrameHeader(preface.GetSpan(FrameHeader), block.Length, Headers, EndHeaders, stream);
                preface.Advance(FrameHeader);
                preface.Write(block);
            }
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
                _connectionWindow = _bulk.Window = _control.Window = _peerInitialWindow = 65_535;
                _maxFrame = 16_384;
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
                            _bulk.Window += value - _peerInitialWindow;
                            _control.Window += value - _peerInitialWindow;
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
                    else if (stream == BulkStream)
                    {
                        _bulk.Window += increment;
                    }
                    else if (stream == ControlStream)
                    {
                        _control.Window += increment;
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
        var frame = ArenaLocked(FrameHeader + payload.Length);
        var span = _arena.AsSpan(frame.Offset, frame.Count);
        Http2Frames.WriteFrameHeader(span, payload.Length, type, flags, 0);
        payload.CopyTo(span[FrameHeader..]);
        _out.Add(frame);
        _unsent += frame.Count;
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
        // Nothing is returned to the pool here: a background send may still hold these arrays.
        _bulk.Clear();
        _control.Clear();
        _out = [];
        _spare = [];
        _unsent = 0;
        _arena = [];
        _arenaUsed = 0;
    }

    // HPACK (RFC 7541) without Huffman or the dynamic table: :method POST and :scheme http from the static table, the rest as
    // literals without indexing on static names (:path 4, :authority 1, content-type 31) or a new name (te).
    internal static byte[] HeaderBlock(Uri address)
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
