using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;

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

    /// <summary>Reads one frame. Returns null at a clean end of stream; throws <see cref="InvalidDataException"/> on a bad or truncated frame.</summary>
    public static async ValueTask<byte[]?> ReadFrameAsync(PipeReader reader, CancellationToken ct)
    {
        while (true)
        {
            var result = await reader.ReadAsync(ct);
            var buffer = result.Buffer;
            if (TryParse(ref buffer, out var frame))
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

    private static bool TryParse(ref ReadOnlySequence<byte> buffer, out byte[]? frame)
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
        frame = buffer.Slice(HeaderBytes, len).ToArray();
        buffer = buffer.Slice(HeaderBytes + len);
        return true;
    }
}
