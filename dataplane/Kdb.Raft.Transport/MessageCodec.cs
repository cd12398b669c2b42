using Google.Protobuf;
using Kdb.Raft.Transport.Wire;

namespace Kdb.Raft.Transport;

/// <summary>Maps core messages to and from their protobuf form. Decoding validates what protobuf cannot (enum ranges, sizes).</summary>
internal static class MessageCodec
{
    /// <summary>Entry data and snapshot chunks are wrapped, not copied: the core never mutates them once proposed.
    /// <paramref name="withEntries"/> false: the entries are left for the caller to encode (<see cref="WireEncoding"/>).</summary>
    public static RaftMessage ToWire(Message m, bool withEntries = true)
    {
        var w = new RaftMessage
        {
            Type = (uint)m.Type,
            GroupId = m.GroupId,
            From = m.From,
            To = m.To,
            Term = m.Term,
            LogTerm = m.LogTerm,
            Index = m.Index,
            Commit = m.Commit,
            Reject = m.Reject,
            RejectHint = m.RejectHint,
            Context = m.Context,
            SnapshotOffset = m.SnapshotOffset,
            SnapshotDone = m.SnapshotDone,
            Quiesce = m.Quiesce,
        };
        foreach (var e in withEntries ? m.Entries : [])
        {
            w.Entries.Add(new WireEntry { Term = e.Term, Index = e.Index, Type = (uint)e.Type, Data = UnsafeByteOperations.UnsafeWrap(e.Data) });
        }
        if (m.Snapshot is { } s)
        {
            var meta = new WireSnapshotMeta { Index = s.Index, Term = s.Term };
            meta.Voters.Add(s.Conf.Voters);
            meta.Learners.Add(s.Conf.Learners);
            w.Snapshot = meta;
        }
        if (!m.SnapshotChunk.IsEmpty)
        {
            w.SnapshotChunk = UnsafeByteOperations.UnsafeWrap(m.SnapshotChunk);
        }
        return w;
    }

    /// <summary>Converts a decoded wire message; throws <see cref="InvalidDataException"/> on values the core must never see.</summary>
    public static Message FromWire(RaftMessage w)
    {
        if (w.Type is 0 or > (uint)MessageType.ReadIndexResponse)
        {
            throw new InvalidDataException($"unknown raft message type {w.Type}");
        }
        if (w.From == 0 || w.To == 0)
        {
            throw new InvalidDataException("raft message without sender or recipient");
        }
        if (w.Term == 0)
        {
            // Every real message carries a term of at least 1; term 0 would let a forged vote land in the bootstrap term.
            throw new InvalidDataException("raft message with term 0");
        }
        var entries = new Entry[w.Entries.Count];
        for (var i = 0; i < entries.Length; i++)
        {
            var e = w.Entries[i];
            if (e.Type is not ((uint)EntryType.Normal or (uint)EntryType.ConfChange))
            {
                throw new InvalidDataException($"unknown entry type {e.Type}");
            }
            if (i > 0 && e.Index != entries[i - 1].Index + 1)
            {
                throw new InvalidDataException("entries in a message must be consecutive");
            }
            entries[i] = new Entry(e.Term, e.Index, (EntryType)e.Type, e.Data.Memory);
        }
        var type = (MessageType)w.Type;
        if (type == MessageType.Snapshot && w.Snapshot is null)
        {
            throw new InvalidDataException("snapshot message without metadata");
        }
        if (w.SnapshotOffset < 0)
        {
            throw new InvalidDataException("negative snapshot offset");
        }
        return new Message
        {
            Type = type,
            GroupId = w.GroupId,
            From = w.From,
            To = w.To,
            Term = w.Term,
            LogTerm = w.LogTerm,
            Index = w.Index,
            Commit = w.Commit,
            Reject = w.Reject,
            RejectHint = w.RejectHint,
            Context = w.Context,
            Entries = entries,
            Snapshot = w.Snapshot is { } s ? new SnapshotMetadata(s.Index, s.Term, new ConfState([.. s.Voters], [.. s.Learners])) : null,
            SnapshotOffset = w.SnapshotOffset,
            SnapshotChunk = w.SnapshotChunk.Memory,
            SnapshotDone = w.SnapshotDone,
            Quiesce = w.Quiesce,
        };
    }
}
