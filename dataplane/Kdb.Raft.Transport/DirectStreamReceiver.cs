using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Kdb.Raft.Transport.Wire;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace Kdb.Raft.Transport;

/// <summary>
/// The incoming half of a peer pair: a Kestrel connection middleware that serves the Raft peer streams of a connection
/// itself, reading HTTP/2 frames straight off the connection and handing each decoded batch to
/// <see cref="RaftTransportOptions.OnMessage"/> on the thread that completed the read.
/// Through Kestrel's HTTP/2 server, every received frame was copied into a stream's request-body pipe whose reader runs on
/// the thread pool: one worker wake-up per frame on every follower (and on the leader, per acknowledgement), which took
/// about two thirds of a follower's context switches during pgbench's update transaction. The wire is unchanged: the same
/// HTTP/2 streams with gRPC framing, flow control honoured, pings and settings answered.
/// A connection is claimed only when its first request is a POST to <see cref="RaftTransport.StreamPath"/> whose header
/// block this reader can decode (no Huffman coding, no dynamic table: <see cref="HpackLiterals"/>); every other connection
/// (the admin API, a client with a full HPACK encoder) goes on to Kestrel with nothing consumed. A claimed connection
/// serves only peer streams: another request on it is refused with REFUSED_STREAM, which clients retry on a new connection.
/// </summary>
internal sealed class DirectStreamReceiver
{
    // The windows of the transport's own Kestrel endpoint: four 4 MiB import entries in flight on a stream.
    private const int StreamWindow = 16 << 20;
    private const int ConnectionWindow = 32 << 20;
    private const int MaxFrame = 1 << 20;
    // Consumed bytes are handed back in steps this large: a WINDOW_UPDATE per megabyte, not per DATA frame.
    private const int WindowStep = 1 << 20;
    private const int MaxHeaderBlock = 16 << 10;
    // A connection that has not shown its first request by then is Kestrel's, whatever follows.
    private static readonly byte[] GrpcResponseHeaders = [0x88, 0x0f, 0x10, 0x10, .. "application/grpc"u8];
    private static readonly TimeSpan ClaimTimeout = TimeSpan.FromSeconds(2);

    private readonly Http2RaftTransport _owner;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly Dictionary<uint, PeerStream> _streams = [];
    private readonly ArrayBufferWriter<byte> _block = new(256);
    private uint _lastStream;
    private long _connectionUnacked;
    private bool _wrote;
    private bool _goAwayWritten;

    /// <summary>One request stream: a gRPC message cut across DATA frames waits here until it is whole.</summary>
    private sealed class PeerStream(uint id)
    {
        public readonly uint Id = id;
        public byte[] Pending = [];
        public int PendingCount;
        public long Unacked;
    }

    private DirectStreamReceiver(Http2RaftTransport owner, IDuplexPipe transport)
    {
        _owner = owner;
        _input = transport.Input;
        _output = transport.Output;
    }

    public static Func<ConnectionDelegate, ConnectionDelegate> Middleware(Http2RaftTransport owner) =>
        next => async connection =>
        {
            if (!await ClaimsAsync(connection.Transport.Input))
            {
                await next(connection);
                return;
            }
            owner.CountDirectConnection();
            var receiver = new DirectStreamReceiver(owner, connection.Transport);
            // Kestrel asks a connection to close on shutdown; a peer stream never ends on its own.
            using var closing = connection.Features.Get<IConnectionLifetimeNotificationFeature>()?.ConnectionClosedRequested
                .Register(static input => ((PipeReader)input!).CancelPendingRead(), connection.Transport.Input);
            await receiver.RunAsync();
        };

    // Reads, without consuming anything, until the first request shows whether the connection is a peer's.
    private static async ValueTask<bool> ClaimsAsync(PipeReader input)
    {
        using var timeout = new CancellationTokenSource(ClaimTimeout);
        while (true)
        {
            ReadResult result;
            try
            {
                result = await input.ReadAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                return false;
            }
            var verdict = FirstRequestIsPeerStream(result.Buffer);
            if (verdict is not null || result.IsCompleted || result.IsCanceled)
            {
                // Nothing consumed or examined: the next reader gets every byte at once.
                input.AdvanceTo(result.Buffer.Start);
                return verdict == true;
            }
            input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }

    /// <summary>True or false once the preface and the frames up to the first HEADERS are in; null while they are not.</summary>
    internal static bool? FirstRequestIsPeerStream(ReadOnlySequence<byte> buffer)
    {
        var preface = Http2Frames.Preface;
        Span<byte> head = stackalloc byte[preface.Length];
        var have = (int)Math.Min(buffer.Length, preface.Length);
        buffer.Slice(0, have).CopyTo(head);
        if (!head[..have].SequenceEqual(preface[..have]))
        {
            return false;
        }
        if (have < preface.Length)
        {
            return null;
        }
        var rest = buffer.Slice(preface.Length);
        Span<byte> header = stackalloc byte[Http2Frames.HeaderBytes];
        while (rest.Length >= Http2Frames.HeaderBytes)
        {
            rest.Slice(0, Http2Frames.HeaderBytes).CopyTo(header);
            var (length, type, flags, stream) = Http2Frames.ReadFrameHeader(header);
            if (length > Math.Min(MaxHeaderBlock, Http2Frames.DefaultMaxFrame))
            {
                return false;
            }
            if (rest.Length < Http2Frames.HeaderBytes + length)
            {
                return null;
            }
            var payload = rest.Slice(Http2Frames.HeaderBytes, length);
            if (type == Http2Frames.Headers)
            {
                if ((flags & Http2Frames.EndHeaders) == 0 || stream == 0)
                {
                    return false;
                }
                var block = ArrayPool<byte>.Shared.Rent(length);
                try
                {
                    payload.CopyTo(block);
                    return HeaderBlock(block.AsSpan(0, length), flags, out var fields)
                        && HpackLiterals.ReadRequest(fields) == HpackLiterals.Request.RaftStream;
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(block);
                }
            }
            if (type is not (Http2Frames.Settings or Http2Frames.WindowUpdate or Http2Frames.Priority or Http2Frames.Ping))
            {
                return false;
            }
            rest = rest.Slice(Http2Frames.HeaderBytes + length);
        }
        return null;
    }

    private async Task RunAsync()
    {
        WriteServerPreface();
        var skipPreface = true;
        try
        {
            while (true)
            {
                var result = await _input.ReadAsync();
                var buffer = result.Buffer;
                if (skipPreface)
                {
                    buffer = buffer.Slice(Http2Frames.Preface.Length);
                    skipPreface = false;
                }
                var open = !result.IsCanceled && !_owner.Stopping && ReadFrames(ref buffer);
                if (!open && !result.IsCompleted)
                {
                    // Shutting down, or the peer broke the protocol (GOAWAY already written then).
                    WriteGoAwayIfQuiet(Http2Frames.NoError);
                }
                HandBackWindows();
                _input.AdvanceTo(buffer.Start, buffer.End);
                if (_wrote)
                {
                    _wrote = false;
                    await _output.FlushAsync();
                }
                if (!open || result.IsCompleted)
                {
                    return;
                }
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            // The connection went away (reset, aborted by Kestrel): the peer reconnects.
        }
        finally
        {
            foreach (var s in _streams.Values)
            {
                Release(s);
            }
            _streams.Clear();
        }
    }

    // Handles every whole frame in the buffer; false once the connection is to close.
    private bool ReadFrames(ref ReadOnlySequence<byte> buffer)
    {
        Span<byte> header = stackalloc byte[Http2Frames.HeaderBytes];
        while (buffer.Length >= Http2Frames.HeaderBytes)
        {
            buffer.Slice(0, Http2Frames.HeaderBytes).CopyTo(header);
            var (length, type, flags, stream) = Http2Frames.ReadFrameHeader(header);
            if (length > MaxFrame)
            {
                return GoAway(Http2Frames.FrameSizeError);
            }
            if (buffer.Length < Http2Frames.HeaderBytes + length)
            {
                return true;
            }
            var payload = buffer.Slice(Http2Frames.HeaderBytes, length);
            buffer = buffer.Slice(Http2Frames.HeaderBytes + length);
            if (!OnFrame(type, flags, stream, payload))
            {
                return false;
            }
        }
        return true;
    }

    private bool OnFrame(byte type, byte flags, uint stream, ReadOnlySequence<byte> payload)
    {
        switch (type)
        {
            case Http2Frames.Data:
                return OnData(flags, stream, payload);
            case Http2Frames.Headers:
                return OnHeaders(flags, stream, payload);
            case Http2Frames.Settings:
                if (stream != 0 || ((flags & Http2Frames.Ack) == 0 && payload.Length % 6 != 0))
                {
                    return GoAway(Http2Frames.ProtocolError);
                }
                if ((flags & Http2Frames.Ack) == 0)
                {
                    // Nothing the peer may set changes what this side sends: headers, trailers and control frames, all small.
                    WriteFrame(Http2Frames.Settings, Http2Frames.Ack, 0, []);
                }
                return true;
            case Http2Frames.Ping:
                if (stream != 0 || payload.Length != 8)
                {
                    return GoAway(Http2Frames.FrameSizeError);
                }
                if ((flags & Http2Frames.Ack) == 0)
                {
                    Span<byte> opaque = stackalloc byte[8];
                    payload.CopyTo(opaque);
                    WriteFrame(Http2Frames.Ping, Http2Frames.Ack, 0, opaque);
                }
                return true;
            case Http2Frames.RstStream:
                if (_streams.Remove(stream, out var reset))
                {
                    Release(reset);
                }
                return true;
            case Http2Frames.GoAway:
                // The peer is going away; it opens a new connection when it comes back.
                return false;
            case Http2Frames.PushPromise or Http2Frames.Continuation:
                // A client never pushes, and header blocks that need CONTINUATION are never claimed (see the summary).
                return GoAway(Http2Frames.ProtocolError);
            default:
                // WINDOW_UPDATE (nothing sent here is flow-controlled), PRIORITY, and unknown types (RFC 9113 4.1) are ignored.
                return true;
        }
    }

    private bool OnData(byte flags, uint stream, ReadOnlySequence<byte> payload)
    {
        if (stream == 0)
        {
            return GoAway(Http2Frames.ProtocolError);
        }
        // Flow control counts the whole payload, padding included (RFC 9113 6.9.1).
        _connectionUnacked += payload.Length;
        if (_connectionUnacked > ConnectionWindow)
        {
            return GoAway(Http2Frames.FlowControlError);
        }
        if (!Unpad(ref payload, flags))
        {
            return GoAway(Http2Frames.ProtocolError);
        }
        if (!_streams.TryGetValue(stream, out var s))
        {
            // Data in flight on a stream this side already ended is dropped; data on a stream never opened is an error.
            return stream <= _lastStream || GoAway(Http2Frames.ProtocolError);
        }
        s.Unacked += payload.Length;
        try
        {
            Feed(s, payload);
        }
        catch (InvalidDataException e)
        {
            _owner.CountMalformed();
            EndStream(s, "3", e.Message);
            if ((flags & Http2Frames.EndStream) == 0)
            {
                // Tell the sender to stop this stream (it reconnects); what it already sent is dropped on arrival.
                WriteRstStream(s.Id, Http2Frames.NoError);
            }
            return true;
        }
        if ((flags & Http2Frames.EndStream) != 0)
        {
            EndAtClientEnd(s);
        }
        return true;
    }

    private bool OnHeaders(byte flags, uint stream, ReadOnlySequence<byte> payload)
    {
        if (stream == 0 || (flags & Http2Frames.EndHeaders) == 0 || payload.Length > MaxHeaderBlock)
        {
            return GoAway(Http2Frames.ProtocolError);
        }
        var copy = ArrayPool<byte>.Shared.Rent((int)payload.Length);
        try
        {
            payload.CopyTo(copy);
            if (!HeaderBlock(copy.AsSpan(0, (int)payload.Length), flags, out var block))
            {
                return GoAway(Http2Frames.ProtocolError);
            }
            var request = HpackLiterals.ReadRequest(block);
            if (request == HpackLiterals.Request.Unsupported)
            {
                // The peer's encoder state may now differ from what this side assumes.
                return GoAway(Http2Frames.CompressionError);
            }
            if (_streams.TryGetValue(stream, out var open))
            {
                // Trailers: they must end the stream.
                if ((flags & Http2Frames.EndStream) == 0)
                {
                    return GoAway(Http2Frames.ProtocolError);
                }
                EndAtClientEnd(open);
                return true;
            }
            if ((stream & 1) == 0 || stream <= _lastStream)
            {
                return GoAway(Http2Frames.ProtocolError);
            }
            _lastStream = stream;
            if (request != HpackLiterals.Request.RaftStream)
            {
                WriteRstStream(stream, Http2Frames.RefusedStream);
                return true;
            }
            var s = new PeerStream(stream);
            _streams[stream] = s;
            WriteResponseHeaders(stream);
            if ((flags & Http2Frames.EndStream) != 0)
            {
                EndAtClientEnd(s);
            }
            return true;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(copy);
        }
    }

    // Delivers every whole gRPC message of the stream; a partial one waits for the next DATA frame.
    private void Feed(PeerStream s, ReadOnlySequence<byte> data)
    {
        if (s.PendingCount == 0)
        {
            // The common case, a frame of whole messages: parsed where the connection's buffer holds them.
            while (GrpcFraming.TryParse(ref data, RaftBatch.Parser, out var batch))
            {
                _owner.Deliver(batch!);
            }
            Append(s, data);
            return;
        }
        Append(s, data);
        var pending = new ReadOnlySequence<byte>(s.Pending, 0, s.PendingCount);
        while (GrpcFraming.TryParse(ref pending, RaftBatch.Parser, out var batch))
        {
            _owner.Deliver(batch!);
        }
        var left = (int)pending.Length;
        if (left == 0)
        {
            Release(s);
            return;
        }
        Buffer.BlockCopy(s.Pending, s.PendingCount - left, s.Pending, 0, left);
        s.PendingCount = left;
    }

    private static void Append(PeerStream s, ReadOnlySequence<byte> data)
    {
        if (data.IsEmpty)
        {
            return;
        }
        var need = s.PendingCount + (int)data.Length;
        if (need > GrpcFraming.HeaderBytes + GrpcFraming.MaxFrameBytes)
        {
            throw new InvalidDataException($"a frame of more than {GrpcFraming.MaxFrameBytes} bytes is pending");
        }
        if (need > s.Pending.Length)
        {
            var grown = ArrayPool<byte>.Shared.Rent(Math.Max(need, 4096));
            s.Pending.AsSpan(0, s.PendingCount).CopyTo(grown);
            Release(s, keepCount: true);
            s.Pending = grown;
        }
        data.CopyTo(s.Pending.AsSpan(s.PendingCount));
        s.PendingCount = need;
    }

    private static void Release(PeerStream s, bool keepCount = false)
    {
        if (s.Pending.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(s.Pending);
            s.Pending = [];
        }
        if (!keepCount)
        {
            s.PendingCount = 0;
        }
    }

    // The sender ended its side: a clean end unless it stopped inside a message.
    private void EndAtClientEnd(PeerStream s)
    {
        if (s.PendingCount == 0)
        {
            EndStream(s, "0", null);
            return;
        }
        _owner.CountMalformed();
        EndStream(s, "3", $"stream ended inside a frame ({s.PendingCount} bytes left over)");
    }

    private void EndStream(PeerStream s, string status, string? message)
    {
        _streams.Remove(s.Id);
        Release(s);
        _block.Clear();
        HpackLiterals.WriteLiteral(_block, "grpc-status", status);
        if (message is not null)
        {
            HpackLiterals.WriteLiteral(_block, "grpc-message", Uri.EscapeDataString(message));
        }
        WriteFrame(Http2Frames.Headers, Http2Frames.EndHeaders | Http2Frames.EndStream, s.Id, _block.WrittenSpan);
    }

    private void WriteResponseHeaders(uint stream)
    {
        // :status 200 (static entry 8), then content-type (static name 31) as a literal without indexing.
        _block.Clear();
        _block.Write(GrpcResponseHeaders);
        WriteFrame(Http2Frames.Headers, Http2Frames.EndHeaders, stream, _block.WrittenSpan);
    }

    private void WriteServerPreface()
    {
        Span<byte> settings = stackalloc byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(settings, Http2Frames.SettingsInitialWindowSize);
        BinaryPrimitives.WriteUInt32BigEndian(settings[2..], StreamWindow);
        BinaryPrimitives.WriteUInt16BigEndian(settings[6..], Http2Frames.SettingsMaxFrameSize);
        BinaryPrimitives.WriteUInt32BigEndian(settings[8..], MaxFrame);
        WriteFrame(Http2Frames.Settings, 0, 0, settings);
        WriteWindowUpdate(0, ConnectionWindow - Http2Frames.DefaultWindow);
    }

    private void HandBackWindows()
    {
        if (_connectionUnacked >= WindowStep)
        {
            WriteWindowUpdate(0, (int)_connectionUnacked);
            _connectionUnacked = 0;
        }
        foreach (var s in _streams.Values)
        {
            if (s.Unacked >= WindowStep)
            {
                WriteWindowUpdate(s.Id, (int)s.Unacked);
                s.Unacked = 0;
            }
        }
    }

    private void WriteRstStream(uint stream, uint error)
    {
        Span<byte> payload = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(payload, error);
        WriteFrame(Http2Frames.RstStream, 0, stream, payload);
    }

    private void WriteWindowUpdate(uint stream, int increment)
    {
        Span<byte> payload = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(payload, (uint)increment);
        WriteFrame(Http2Frames.WindowUpdate, 0, stream, payload);
    }

    private bool GoAway(uint error)
    {
        WriteGoAwayIfQuiet(error);
        return false;
    }

    private void WriteGoAwayIfQuiet(uint error)
    {
        if (_goAwayWritten)
        {
            return;
        }
        _goAwayWritten = true;
        Span<byte> payload = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32BigEndian(payload, _lastStream);
        BinaryPrimitives.WriteUInt32BigEndian(payload[4..], error);
        WriteFrame(Http2Frames.GoAway, 0, 0, payload);
    }

    private void WriteFrame(byte type, byte flags, uint stream, ReadOnlySpan<byte> payload)
    {
        var span = _output.GetSpan(Http2Frames.HeaderBytes + payload.Length);
        Http2Frames.WriteFrameHeader(span, payload.Length, type, flags, stream);
        payload.CopyTo(span[Http2Frames.HeaderBytes..]);
        _output.Advance(Http2Frames.HeaderBytes + payload.Length);
        _wrote = true;
    }

    // Strips a DATA frame's padding (RFC 9113 6.1).
    private static bool Unpad(ref ReadOnlySequence<byte> payload, byte flags)
    {
        if ((flags & Http2Frames.Padded) == 0)
        {
            return true;
        }
        if (payload.IsEmpty)
        {
            return false;
        }
        var pad = payload.FirstSpan[0];
        if (pad >= payload.Length)
        {
            return false;
        }
        payload = payload.Slice(1, payload.Length - 1 - pad);
        return true;
    }

    // The field block of a HEADERS payload, without padding and priority (RFC 9113 6.2).
    private static bool HeaderBlock(ReadOnlySpan<byte> payload, byte flags, out ReadOnlySpan<byte> block)
    {
        block = default;
        var pad = 0;
        if ((flags & Http2Frames.Padded) != 0)
        {
            if (payload.IsEmpty)
            {
                return false;
            }
            pad = payload[0];
            payload = payload[1..];
        }
        if ((flags & Http2Frames.PriorityFlag) != 0)
        {
            if (payload.Length < 5)
            {
                return false;
            }
            payload = payload[5..];
        }
        if (pad > payload.Length)
        {
            return false;
        }
        block = payload[..^pad];
        return true;
    }
}
