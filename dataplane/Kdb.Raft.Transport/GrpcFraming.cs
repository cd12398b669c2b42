using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Google.Protobuf;

namespace Kdb.Raft.Transport;

/// <summary>gRPC length-prefixed framing: [compressed u8 = 0][length u32 big-endian][payload].</summary>
internal static class GrpcFraming
{
    public const int HeaderBytes = 5;
    /// <summary>An 8 MiB entry plus message overhead fits; anything larger is a malformed frame.</summary>
    public const int MaxFrameBytes = 16 << 20;

    public static void WriteHeader(Span<byte> dest, int length)
    {
        dest[0] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(dest[1..], (uint)length);
    }

    /// <summary>Reads one frame and parses it in place (no copy of the frame: a large frame copied into an array lands on
    /// the large-object heap, which only a full collection frees, and a follower receiving a burst of appends kept tens of
    /// megabytes of them). Returns null at a clean end of stream; throws <see cref="InvalidDataException"/> on a bad,
    /// truncated or unparsable frame.</summary>
    public static async ValueTask<T?> ReadFrameAsync<T>(PipeReader reader, MessageParser<T> parser, CancellationToken ct)
        where T : class, IMessage<T>
    {
        while (true)
        {
            var result = await reader.ReadAsync(ct);
            var buffer = result.Buffer;
            if (TryParse(ref buffer, parser, out var frame))
            {
                reader.AdvanceTo(buffer.Start);
                return frame;
            }
            if (result.IsCompleted)
            {
                var leftover = buffer.Length;
                reader.AdvanceTo(buffer.End);
                if (leftover == 0)
                {
                    return null;
                }
                throw new InvalidDataException($"stream ended inside a frame ({leftover} bytes left over)");
            }
            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>Parses one whole frame off the front of <paramref name="buffer"/>; false when it is not all there yet.</summary>
    internal static bool TryParse<T>(ref ReadOnlySequence<byte> buffer, MessageParser<T> parser, out T? frame)
        where T : class, IMessage<T>
    {
        frame = null;
        if (buffer.Length < HeaderBytes)
        {
            return false;
        }
        Span<byte> header = stackalloc byte[HeaderBytes];
        buffer.Slice(0, HeaderBytes).CopyTo(header);
        if (header[0] != 0)
        {
            throw new InvalidDataException($"compressed or unknown frame flag {header[0]}: compression is not negotiated");
        }
        var len = BinaryPrimitives.ReadUInt32BigEndian(header[1..]);
        if (len > MaxFrameBytes)
        {
            throw new InvalidDataException($"frame of {len} bytes exceeds the {MaxFrameBytes}-byte limit");
        }
        if (buffer.Length < HeaderBytes + len)
        {
            return false;
        }
        try
        {
            frame = parser.ParseFrom(buffer.Slice(HeaderBytes, len));
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException("frame is not a valid " + typeof(T).Name + ": " + e.Message, e);
        }
        buffer = buffer.Slice(HeaderBytes + len);
        return true;
    }
}
