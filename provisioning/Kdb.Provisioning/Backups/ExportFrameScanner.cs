using System.Diagnostics.CodeAnalysis;

namespace Kdb.Provisioning.Backups;

/// <summary>
/// Follows the framing of a node's export stream (u32 LE length, then a <c>BackupChunk</c> message) as its bytes go by,
/// in pieces of any size, without copying or buffering them: it reads only the frame lengths and the message's field
/// tags and varints, and steps over the pairs (field 2) by their length. That is all a backup needs to learn from the
/// stream — where the last frame ends, and the totals it carries — where a full protobuf parse of every frame copied
/// each megabyte of pairs into a fresh buffer. The pairs themselves are checked by the node on import (CRC32C per chunk
/// and in total), and the whole stream by the SHA-256 in the manifest.
/// </summary>
internal sealed class ExportFrameScanner
{
    /// <summary>The node frames chunks of about 1 MiB; anything near this is not an export stream.</summary>
    internal const int MaxFrameBytes = 16 << 20;

    // BackupChunk's fields this reads (admin.proto); every other field is stepped over whatever its number.
    private const int LastField = 4;
    private const int RaftIndexField = 5;
    private const int TotalCrc32CField = 6;
    private const int TotalRowsField = 7;

    private enum Expect : byte
    {
        FrameLength,
        Tag,
        VarintValue,
        Length,
        Skip,
    }

    private Expect _expect = Expect.FrameLength;
    private int _lengthBytes;
    private uint _length;
    private long _frameLeft;
    private long _skipLeft;
    private ulong _varint;
    private int _varintShift;
    private int _field;
    private bool _last;
    private ulong _raftIndex;
    private ulong _totalCrc32C;
    private long _totalRows;

    /// <summary>The last frame has been read whole; nothing after it belongs to the export.</summary>
    public bool Done { get; private set; }

    /// <summary>The Raft index, rows and CRC32C of the closing frame, once <see cref="Done"/>.</summary>
    public (ulong RaftIndex, long Rows, ulong TotalCrc32C) Totals => Done ? (_raftIndex, _totalRows, _totalCrc32C) : throw new InvalidOperationException("the export's last frame has not been read yet");

    /// <summary>
    /// Takes the next bytes of the stream; returns how many of them belong to the export — all of them, or fewer when
    /// the last frame ends inside <paramref name="bytes"/>. Throws <see cref="InvalidDataException"/> for a malformed frame.
    /// </summary>
    public int Advance(ReadOnlySpan<byte> bytes)
    {
        var i = 0;
        while (i < bytes.Length && !Done)
        {
            switch (_expect)
            {
                case Expect.FrameLength:
                    _length |= (uint)bytes[i++] << (8 * _lengthBytes);
                    if (++_lengthBytes == 4)
                    {
                        StartFrame();
                    }
                    continue;
                case Expect.Skip:
                    // The pairs of a frame: stepped over in one go, however many of them this piece holds.
                    var step = (int)Math.Min(_skipLeft, bytes.Length - i);
                    i += step;
                    _skipLeft -= step;
                    _frameLeft -= step;
                    if (_skipLeft == 0)
                    {
                        _expect = Expect.Tag;
                    }
                    break;
                default:
                    var b = bytes[i++];
                    _frameLeft--;
                    // Ten bytes at most, the tenth's surplus bits dropped, as protobuf's own reader does.
                    if (_varintShift == 63 && b >= 0x80)
                    {
                        Fail("a varint is longer than ten bytes");
                    }
                    _varint |= (ulong)(b & 0x7F) << _varintShift;
                    _varintShift += 7;
                    if ((b & 0x80) == 0)
                    {
                        var value = _varint;
                        _varint = 0;
                        _varintShift = 0;
                        OnVarint(value);
                    }
                    break;
            }
            if (_frameLeft == 0)
            {
                EndFrame();
            }
        }
        return i;
    }

    /// <summary>Throws for a stream that ended before its last frame (whether between frames or inside one).</summary>
    [DoesNotReturn]
    public void ThrowEndedEarly() => throw new InvalidDataException(_expect == Expect.FrameLength && _lengthBytes == 0
        ? "the export stream ended before its last chunk"
        : "the export stream is truncated");

    private void StartFrame()
    {
        if (_length > MaxFrameBytes)
        {
            Fail($"an export frame length is out of range ({_length} bytes)");
        }
        _frameLeft = _length;
        _lengthBytes = 0;
        _length = 0;
        _last = false;
        _raftIndex = 0;
        _totalCrc32C = 0;
        _totalRows = 0;
        _expect = Expect.Tag;
        if (_frameLeft == 0)
        {
            EndFrame();
        }
    }

    private void OnVarint(ulong value)
    {
        switch (_expect)
        {
            case Expect.Tag:
                // Tags and lengths are 32-bit: protobuf keeps the low bits of a longer varint, and so does this.
                var tag = (uint)value;
                if (tag >> 3 == 0)
                {
                    Fail($"an export frame holds an invalid field tag ({tag})");
                }
                _field = (int)(tag >> 3);
                switch ((int)(tag & 7))
                {
                    case 0:
                        _expect = Expect.VarintValue;
                        break;
                    case 1:
                        StartSkip(8);
                        break;
                    case 2:
                        _expect = Expect.Length;
                        break;
                    case 5:
                        StartSkip(4);
                        break;
                    default:
                        Fail($"an export frame holds field {_field} of wire type {tag & 7}, which a BackupChunk never has");
                        break;
                }
                break;
            case Expect.VarintValue:
                switch (_field)
                {
                    case LastField:
                        _last = value != 0;
                        break;
                    case RaftIndexField:
                        _raftIndex = value;
                        break;
                    case TotalCrc32CField:
                        _totalCrc32C = value;
                        break;
                    case TotalRowsField:
                        _totalRows = (long)value;
                        break;
                }
                _expect = Expect.Tag;
                break;
            case Expect.Length:
                StartSkip((uint)value);
                break;
        }
    }

    private void StartSkip(ulong length)
    {
        if (length > (ulong)_frameLeft)
        {
            Fail($"field {_field} of an export frame runs past the frame's end");
        }
        _skipLeft = (long)length;
        _expect = _skipLeft == 0 ? Expect.Tag : Expect.Skip;
    }

    private void EndFrame()
    {
        if (_expect != Expect.Tag || _varintShift != 0)
        {
            Fail("an export frame ends inside a field");
        }
        _expect = Expect.FrameLength;
        Done = _last;
    }

    [DoesNotReturn]
    private static void Fail(string detail) => throw new InvalidDataException(detail);
}
