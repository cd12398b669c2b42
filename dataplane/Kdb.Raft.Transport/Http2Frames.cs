using System.Buffers.Binary;

namespace Kdb.Raft.Transport;

/// <summary>The parts of HTTP/2 (RFC 9113) that both ends of a direct peer connection speak: frame types, flags, the
/// nine-byte frame header.</summary>
internal static class Http2Frames
{
    public const int HeaderBytes = 9;
    public const byte Data = 0x0, Headers = 0x1, Priority = 0x2, RstStream = 0x3, Settings = 0x4, PushPromise = 0x5, Ping = 0x6,
        GoAway = 0x7, WindowUpdate = 0x8, Continuation = 0x9;
    public const byte EndStream = 0x1, Ack = 0x1, EndHeaders = 0x4, Padded = 0x8, PriorityFlag = 0x20;
    public const ushort SettingsEnablePush = 0x2, SettingsInitialWindowSize = 0x4, SettingsMaxFrameSize = 0x5;
    public const uint NoError = 0x0, ProtocolError = 0x1, FlowControlError = 0x3, FrameSizeError = 0x6, RefusedStream = 0x7,
        CompressionError = 0x9;
    /// <summary>Both windows start here (RFC 9113 6.9.2) until SETTINGS or WINDOW_UPDATE say otherwise.</summary>
    public const int DefaultWindow = 65_535;
    /// <summary>Frames are at most this large until the receiver's SETTINGS allow more (6.5.2).</summary>
    public const int DefaultMaxFrame = 16_384;

    public static ReadOnlySpan<byte> Preface => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8;

    public static void WriteFrameHeader(Span<byte> dest, int length, byte type, byte flags, uint stream)
    {
        dest[0] = (byte)(length >> 16);
        dest[1] = (byte)(length >> 8);
        dest[2] = (byte)length;
        dest[3] = type;
        dest[4] = flags;
        BinaryPrimitives.WriteUInt32BigEndian(dest[5..], stream);
    }

    /// <summary>Reads a frame header: payload length, type, flags and stream id (the reserved bit dropped).</summary>
    public static (int Length, byte Type, byte Flags, uint Stream) ReadFrameHeader(ReadOnlySpan<byte> header) =>
        ((header[0] << 16) | (header[1] << 8) | header[2], header[3], header[4], BinaryPrimitives.ReadUInt32BigEndian(header[5..]) & 0x7fffffff);
}
