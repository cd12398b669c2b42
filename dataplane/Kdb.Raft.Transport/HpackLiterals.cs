using System.Buffers;
using System.Text;

namespace Kdb.Raft.Transport;

/// <summary>
/// The corner of HPACK (RFC 7541) a direct peer connection needs: reading a request's <c>:method</c> and <c>:path</c> from a
/// header block that uses neither Huffman coding nor the dynamic table (as <see cref="DirectPeerSender"/> and HttpClient's
/// encoder write them), and writing response headers as literals. Anything else is reported as unsupported, never guessed
/// at: a connection whose first request uses it is left to Kestrel's full HTTP/2 server.
/// </summary>
internal static class HpackLiterals
{
    public enum Request
    {
        /// <summary>A POST to the Raft peer stream's path.</summary>
        RaftStream,
        /// <summary>Decoded, but some other request.</summary>
        Other,
        /// <summary>Uses Huffman coding or the dynamic table, or is malformed.</summary>
        Unsupported,
    }

    // Static table entries (RFC 7541 appendix A) that name the two fields read here.
    private const int MethodGet = 2, MethodPost = 3, PathRoot = 4, PathIndex = 5, StaticEntries = 61;

    private static ReadOnlySpan<byte> StreamPath => "/kdb.raft.v1.Raft/Stream"u8;

    public static Request ReadRequest(ReadOnlySpan<byte> block)
    {
        var post = false;
        var raftPath = false;
        var pos = 0;
        while (pos < block.Length)
        {
            var b = block[pos];
            if ((b & 0x80) != 0)
            {
                // Indexed field: only the static table's method and path entries are known values.
                if (!TryInteger(block, ref pos, 7, out var index) || index is 0 or > StaticEntries)
                {
                    return Request.Unsupported;
                }
                if (index is MethodGet or MethodPost)
                {
                    post = index == MethodPost;
                }
                else if (index is PathRoot or PathIndex)
                {
                    raftPath = false;
                }
                continue;
            }
            if ((b & 0xc0) == 0x40)
            {
                // Literal with incremental indexing: it would fill a dynamic table this reader does not keep.
                return Request.Unsupported;
            }
            if ((b & 0xe0) == 0x20)
            {
                // Dynamic table size update: nothing is ever indexed, so the size does not matter.
                if (!TryInteger(block, ref pos, 5, out _))
                {
                    return Request.Unsupported;
                }
                continue;
            }
            // Literal without indexing (0000) or never indexed (0001).
            if (!TryInteger(block, ref pos, 4, out var nameIndex) || nameIndex > StaticEntries)
            {
                return Request.Unsupported;
            }
            var name = ReadOnlySpan<byte>.Empty;
            if (nameIndex == 0)
            {
                if (!TryString(block, ref pos, out var nameStart, out var nameLength))
                {
                    return Request.Unsupported;
                }
                name = block.Slice(nameStart, nameLength);
            }
            if (!TryString(block, ref pos, out var valueStart, out var valueLength))
            {
                return Request.Unsupported;
            }
            var value = block.Slice(valueStart, valueLength);
            if (nameIndex is MethodGet or MethodPost || (nameIndex == 0 && name.SequenceEqual(":method"u8)))
            {
                post = value.SequenceEqual("POST"u8);
            }
            else if (nameIndex is PathRoot or PathIndex || (nameIndex == 0 && name.SequenceEqual(":path"u8)))
            {
                raftPath = value.SequenceEqual(StreamPath);
            }
        }
        return post && raftPath ? Request.RaftStream : Request.Other;
    }

    /// <summary>True when the header block decodes under the same limits (trailers a client sends on a stream).</summary>
    public static bool IsReadable(ReadOnlySpan<byte> block) => ReadRequest(block) != Request.Unsupported;

    /// <summary>Writes a literal field without indexing, with a new name (no Huffman coding).</summary>
    public static void WriteLiteral(IBufferWriter<byte> into, string name, string value)
    {
        into.GetSpan(1)[0] = 0x00;
        into.Advance(1);
        WriteString(into, name);
        WriteString(into, value);
    }

    private static void WriteString(IBufferWriter<byte> into, string value)
    {
        var length = Encoding.ASCII.GetByteCount(value);
        var span = into.GetSpan(length + 6);
        var n = WriteInteger(span, 7, length, 0x00);
        n += Encoding.ASCII.GetBytes(value, span[n..]);
        into.Advance(n);
    }

    private static int WriteInteger(Span<byte> dest, int prefixBits, int value, byte firstBits)
    {
        var max = (1 << prefixBits) - 1;
        if (value < max)
        {
            dest[0] = (byte)(firstBits | value);
            return 1;
        }
        dest[0] = (byte)(firstBits | max);
        value -= max;
        var n = 1;
        while (value >= 0x80)
        {
            dest[n++] = (byte)((value & 0x7f) | 0x80);
            value >>= 7;
        }
        dest[n++] = (byte)value;
        return n;
    }

    private static bool TryInteger(ReadOnlySpan<byte> block, ref int pos, int prefixBits, out int value)
    {
        var max = (1 << prefixBits) - 1;
        value = block[pos++] & max;
        if (value < max)
        {
            return true;
        }
        for (var shift = 0; shift <= 21; shift += 7)
        {
            if (pos >= block.Length)
            {
                return false;
            }
            var b = block[pos++];
            value += (b & 0x7f) << shift;
            if ((b & 0x80) == 0)
            {
                return true;
            }
        }
        return false;
    }

    private static bool TryString(ReadOnlySpan<byte> block, ref int pos, out int start, out int length)
    {
        start = 0;
        length = 0;
        if (pos >= block.Length || (block[pos] & 0x80) != 0)
        {
            // Huffman-coded (or missing): not decoded here.
            return false;
        }
        if (!TryInteger(block, ref pos, 7, out length) || length > block.Length - pos)
        {
            return false;
        }
        start = pos;
        pos += length;
        return true;
    }
}
