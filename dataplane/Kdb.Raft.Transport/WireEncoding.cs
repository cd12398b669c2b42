using System.Buffers;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Kdb.Raft.Transport.Wire;

namespace Kdb.Raft.Transport;

/// <summary>A slice of bytes queued for a stream. <see cref="Release"/>: a pooled array returned once every byte up to
/// and including this piece is in the kernel (a piece of <see cref="Count"/> 0 only releases).</summary>
internal readonly record struct Piece(byte[] Array, int Offset, int Count, byte[]? Release);

/// <summary>gRPC-framed <see cref="RaftBatch"/> bytes as pieces: small messages are encoded into pooled arrays, while a
/// large entry's data is referenced where it lies instead of copied (a 4 MiB import entry was copied into the send buffer
/// once per follower, then again into frames, on the leader's loop).</summary>
internal static class WireEncoding
{
    /// <summary>Entry data from this size on is sent from its own memory.</summary>
    public const int SpliceBytes = 32 << 10;

    private const byte BatchMessagesTag = (1 << 3) | 2;
    private const byte MessageEntriesTag = (12 << 3) | 2;
    private const byte EntryDataTag = (4 << 3) | 2;

    /// <summary>True when <paramref name="m"/> carries entry data worth sending in place.</summary>
    public static bool WantsSplice(Message m)
    {
        foreach (var e in m.Entries)
        {
            if (Spliced(e))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Encodes a batch of wire messages as one gRPC message in a pooled array; returns its length.</summary>
    public static int EncodeBatch(RaftBatch batch, Queue<Piece> into)
    {
        var size = batch.CalculateSize();
        var buffer = ArrayPool<byte>.Shared.Rent(GrpcFraming.HeaderBytes + size);
        GrpcFraming.WriteHeader(buffer, size);
        batch.WriteTo(buffer.AsSpan(GrpcFraming.HeaderBytes, size));
        into.Enqueue(new Piece(buffer, 0, GrpcFraming.HeaderBytes + size, buffer));
        return GrpcFraming.HeaderBytes + size;
    }

    /// <summary>Encodes <paramref name="m"/> alone as one gRPC message whose large entry data are pieces of their own
    /// (protobuf fields may come in any order: the entries follow the message's other fields); returns its length. The
    /// bytes are exactly what <see cref="RaftBatch.Parser"/> reads as a batch of this one message.</summary>
    public static int EncodeSpliced(Message m, Queue<Piece> into)
    {
        var head = MessageCodec.ToWire(m, withEntries: false);
        var headSize = head.CalculateSize();
        var entries = new WireEntry[m.Entries.Length];
        long messageSize = headSize;
        long inline = headSize;
        for (var i = 0; i < entries.Length; i++)
        {
            var e = m.Entries[i];
            entries[i] = new WireEntry { Term = e.Term, Index = e.Index, Type = (uint)e.Type };
            var inner = EntrySize(entries[i], e.Data.Length);
            var field = 1 + CodedOutputStream.ComputeLengthSize(inner) + inner;
            messageSize += field;
            inline += Spliced(e) ? field - e.Data.Length : field;
        }
        if (messageSize > int.MaxValue - 64)
        {
            throw new InvalidOperationException($"a raft message of {messageSize} bytes cannot be framed");
        }
        var batchSize = 1 + CodedOutputStream.ComputeLengthSize((int)messageSize) + (int)messageSize;
        var buffer = ArrayPool<byte>.Shared.Rent((int)inline + GrpcFraming.HeaderBytes + 1 + 5);
        GrpcFraming.WriteHeader(buffer, batchSize);
        var pos = GrpcFraming.HeaderBytes;
        buffer[pos++] = BatchMessagesTag;
        pos += WriteVarint(buffer.AsSpan(pos), (uint)messageSize);
        head.WriteTo(buffer.AsSpan(pos, headSize));
        pos += headSize;
        var start = 0;
        for (var i = 0; i < entries.Length; i++)
        {
            var e = m.Entries[i];
            var fields = entries[i].CalculateSize();
            buffer[pos++] = MessageEntriesTag;
            pos += WriteVarint(buffer.AsSpan(pos), (uint)EntrySize(entries[i], e.Data.Length));
            entries[i].WriteTo(buffer.AsSpan(pos, fields));
            pos += fields;
            if (e.Data.Length == 0)
            {
                continue;
            }
            buffer[pos++] = EntryDataTag;
            pos += WriteVarint(buffer.AsSpan(pos), (uint)e.Data.Length);
            if (Spliced(e) && MemoryMarshal.TryGetArray(e.Data, out var data))
            {
                into.Enqueue(new Piece(buffer, start, pos - start, null));
                into.Enqueue(new Piece(data.Array!, data.Offset, data.Count, null));
                start = pos;
            }
            else
            {
                e.Data.Span.CopyTo(buffer.AsSpan(pos));
                pos += e.Data.Length;
            }
        }
        // The last piece of the pooled array releases it: every earlier piece is sent by then.
        into.Enqueue(new Piece(buffer, start, pos - start, buffer));
        return GrpcFraming.HeaderBytes + batchSize;
    }

    private static bool Spliced(Entry e) => e.Data.Length >= SpliceBytes && MemoryMarshal.TryGetArray(e.Data, out _);

    private static int EntrySize(WireEntry fields, int dataLength) =>
        fields.CalculateSize() + (dataLength == 0 ? 0 : 1 + CodedOutputStream.ComputeLengthSize(dataLength) + dataLength);

    private static int WriteVarint(Span<byte> dest, uint value)
    {
        var n = 0;
        while (value >= 0x80)
        {
            dest[n++] = (byte)(value | 0x80);
            value >>= 7;
        }
        dest[n++] = (byte)value;
        return n;
    }
}
