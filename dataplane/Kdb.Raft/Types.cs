namespace Kdb.Raft;

/// <summary>Wire type of a Raft message. Persisted/wire values: append only, never renumber.</summary>
public enum MessageType : byte
{
    Append = 1,
    AppendResponse = 2,
    Heartbeat = 3,
    HeartbeatResponse = 4,
    Vote = 5,
    VoteResponse = 6,
    PreVote = 7,
    PreVoteResponse = 8,
    Snapshot = 9,
    SnapshotResponse = 10,
    TimeoutNow = 11,
    ReadIndex = 12,
    ReadIndexResponse = 13,
}

/// <summary>Kind of a log entry. Persisted: append only.</summary>
public enum EntryType : byte
{
    Normal = 1,
    ConfChange = 2,
}

/// <summary>Membership change carried by a <see cref="EntryType.ConfChange"/> entry. Persisted: append only.</summary>
public enum ConfChangeType : byte
{
    AddVoter = 1,
    AddLearner = 2,
    RemoveNode = 3,
}

/// <summary>Role of a node in its group.</summary>
public enum RaftRole : byte
{
    Follower = 1,
    PreCandidate = 2,
    Candidate = 3,
    Leader = 4,
}

/// <summary>How linearizable reads are confirmed.</summary>
public enum ReadMode : byte
{
    /// <summary>Default: a heartbeat round acknowledged by a quorum confirms leadership for each read batch.</summary>
    ReadIndex = 1,
    /// <summary>Opt-in: the leader answers from its lease while it is valid (needs a bound on clock drift).</summary>
    Lease = 2,
}

/// <summary>One log entry. <paramref name="Data"/> is opaque to Raft.</summary>
public sealed record Entry(ulong Term, ulong Index, EntryType Type, ReadOnlyMemory<byte> Data);

/// <summary>State that must be durable before any message that depends on it is sent.</summary>
public readonly record struct HardState(ulong Term, ulong Vote, ulong Commit);

/// <summary>Membership of a group: voters count for quorums, learners only receive the log.</summary>
public sealed record ConfState(ulong[] Voters, ulong[] Learners)
{
    public static readonly ConfState Empty = new([], []);
}

/// <summary>Identifies a snapshot: the last index and term it covers and the membership at that index.</summary>
public sealed record SnapshotMetadata(ulong Index, ulong Term, ConfState Conf);

/// <summary>A membership change proposal. <paramref name="Context"/> is opaque to Raft and travels in the entry after the
/// change itself: a host records there what every member must learn of the node (its address), since followers and later
/// leaders see only the entry. Entries written before the context existed are the fixed part alone.</summary>
public readonly record struct ConfChange(ConfChangeType Type, ulong NodeId, ReadOnlyMemory<byte> Context = default)
{
    /// <summary>The fixed part: the change type and the node id.</summary>
    public const int EncodedLength = 9;

    public byte[] Encode()
    {
        var b = new byte[EncodedLength + Context.Length];
        b[0] = (byte)Type;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(1), NodeId);
        Context.Span.CopyTo(b.AsSpan(EncodedLength));
        return b;
    }

    public static ConfChange Decode(ReadOnlySpan<byte> data)
    {
        if (data.Length < EncodedLength)
        {
            throw new InvalidDataException($"conf change entry must be at least {EncodedLength} bytes, got {data.Length}");
        }
        return new ConfChange((ConfChangeType)data[0], System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(data[1..]),
            data.Length > EncodedLength ? data[EncodedLength..].ToArray() : default);
    }
}

/// <summary>A message between the members of one group. Immutable once built, so a network may duplicate it.</summary>
public sealed class Message
{
    public MessageType Type { get; init; }
    public ulong GroupId { get; init; }
    public ulong From { get; init; }
    public ulong To { get; init; }
    public ulong Term { get; init; }
    /// <summary>Append: term of the entry at <see cref="Index"/>. Votes: term of the candidate's last entry.</summary>
    public ulong LogTerm { get; init; }
    /// <summary>Append: index preceding <see cref="Entries"/>. Responses: the index acknowledged or rejected. Votes: candidate's last index.</summary>
    public ulong Index { get; init; }
    public ulong Commit { get; init; }
    public bool Reject { get; init; }
    public ulong RejectHint { get; init; }
    /// <summary>Heartbeats: round number. Reads: the caller's read id. Votes: 1 when forced by a leadership transfer. Snapshot responses: bytes received.
    /// Snapshot chunks: <c>1 &lt;&lt; 32 | CRC32C</c> of the whole snapshot data (0 from a sender that does not know it: not checked).
    /// Appends: <see cref="NoReply"/> when the append carries only a commit index the follower needs no answer for.</summary>
    public ulong Context { get; init; }

    /// <summary>An append's <see cref="Context"/> when it carries no entries and the leader already knows the follower holds
    /// everything up to its <see cref="Index"/>: a successful answer would tell the leader nothing, so the follower sends
    /// none (a rejection is still answered). A follower that does not know the flag answers anyway, which is harmless.</summary>
    public const ulong NoReply = 1;
    public Entry[] Entries { get; init; } = [];
    public SnapshotMetadata? Snapshot { get; init; }
    public long SnapshotOffset { get; init; }
    public ReadOnlyMemory<byte> SnapshotChunk { get; init; }
    public bool SnapshotDone { get; init; }
    /// <summary>Heartbeat: the leader is going quiet (see <see cref="RaftConfig.QuiesceAfterTicks"/>); a caught-up follower stops its election timer until it hears anything again.</summary>
    public bool Quiesce { get; init; }

    public override string ToString() =>
        $"{Type} {From}->{To} t{Term} i{Index} lt{LogTerm} c{Commit} n{Entries.Length} rej{Reject} ctx{Context}";
}

/// <summary>A confirmed read: once the local state machine has applied <see cref="Index"/>, the read identified by <see cref="Context"/> may be served.</summary>
public readonly record struct ReadState(ulong Context, ulong Index);

/// <summary>Volatile state, reported when it changes.</summary>
public readonly record struct SoftState(ulong Leader, RaftRole Role);

/// <summary>Outcome of <see cref="IRaftNode.Propose"/>.</summary>
public enum ProposeStatus : byte
{
    /// <summary>Appended at <see cref="ProposeResult.Index"/> in <see cref="ProposeResult.Term"/>; it is applied only if that index commits with that term.</summary>
    Accepted = 1,
    /// <summary>This node is not the leader; <see cref="ProposeResult.Leader"/> is the known leader (0 if none).</summary>
    NotLeader = 2,
    /// <summary>The command exceeds <see cref="RaftConfig.MaxEntryBytes"/>; stage large transactions in chunks.</summary>
    TooLarge = 3,
    /// <summary>A leadership transfer is in progress; retry on the new leader.</summary>
    TransferInProgress = 4,
    /// <summary>A membership change is still being applied; only one change at a time.</summary>
    ConfChangePending = 5,
    /// <summary>The membership change is not valid for the current configuration.</summary>
    InvalidConfChange = 6,
}

/// <summary>Result of a proposal.</summary>
public readonly record struct ProposeResult(ProposeStatus Status, ulong Index, ulong Term, ulong Leader, string? Error = null)
{
    public bool IsAccepted => Status == ProposeStatus.Accepted;
}

/// <summary>Outcome of <see cref="IRaftNode.ReadIndex"/>.</summary>
public enum ReadIndexStatus : byte
{
    /// <summary>A <see cref="ReadState"/> for the context will appear in a later (or the next) <see cref="Ready"/>.</summary>
    Pending = 1,
    /// <summary>No leader is known; retry later.</summary>
    NoLeader = 2,
    /// <summary>The leader has not committed an entry of its term yet; retry shortly.</summary>
    NotReady = 3,
}

/// <summary>Configuration of one group member.</summary>
public sealed record RaftConfig
{
    public ulong Id { get; init; }
    public ulong GroupId { get; init; }
    /// <summary>The membership the group was created with: the configuration before its first log entry, which replaying
    /// the log from index 1 starts from. Empty for a replica joining an existing group, which does not know it: it learns it
    /// from the leader's append from the start of the log (<see cref="Ready.Bootstrap"/>), or takes the membership of a
    /// snapshot instead.</summary>
    public ulong[] BootstrapVoters { get; init; } = [];
    public int ElectionTicks { get; init; } = 10;
    public int HeartbeatTicks { get; init; } = 1;
    /// <summary>Milliseconds per tick, used only for the lease.</summary>
    public int TickMs { get; init; } = 100;
    public bool PreVote { get; init; } = true;
    public bool CheckQuorum { get; init; } = true;
    public ReadMode ReadMode { get; init; } = ReadMode.ReadIndex;
    /// <summary>Upper bound on clock drift over one election timeout, subtracted from the lease.</summary>
    public int MaxClockDriftMs { get; init; } = 200;
    /// <summary>Batching: bytes of entries per append message.</summary>
    public int MaxBytesPerMessage { get; init; } = 1 << 20;
    /// <summary>Flow control: append messages in flight per follower.</summary>
    public int MaxInflightMessages { get; init; } = 256;
    /// <summary>No log entry is larger (8 MiB).</summary>
    public int MaxEntryBytes { get; init; } = 8 << 20;
    public int SnapshotChunkBytes { get; init; } = 256 << 10;
    /// <summary>Flow control for snapshots: chunks in flight per follower.</summary>
    public int SnapshotWindowChunks { get; init; } = 4;
    /// <summary>Seeds the randomized election timeout so a run is reproducible.</summary>
    public ulong RandomSeed { get; init; } = 1;
    /// <summary>Opt-in (etcd's leader-side parallel append, Raft thesis 10.2.1): a leader's appends and heartbeats go into
    /// <see cref="Ready.EarlyMessages"/>, which the host may send before or while it persists that Ready, and the leader counts
    /// its own entries toward the commit quorum only once <see cref="IRaftNode.Advance"/> reports them persisted.
    /// Off (default): <see cref="Ready.EarlyMessages"/> stays empty and every message waits for persistence.</summary>
    public bool AsyncLeaderAppend { get; init; }
    /// <summary>Opt-in quiescence: after this many ticks with nothing to replicate, commit or read, the leader sends one last
    /// heartbeat marked <see cref="Message.Quiesce"/> and stops heartbeating; caught-up followers stop their election timers.
    /// The group wakes on a proposal, a read, any message, or <see cref="IRaftNode.ReportUnreachable"/> from the host's
    /// failure detector (needed: a quiesced follower does not notice a dead leader by itself). 0 (default): never quiesce.</summary>
    public int QuiesceAfterTicks { get; init; }
    /// <summary>Opt-in: while entries past the new commit index are in flight to a follower, a leader does not send it an
    /// append that would carry only the commit advance; the commit index rides on the next append with entries, a read index
    /// answer to that follower, the advance that drains the follower's in-flight entries, or the next tick, whichever comes
    /// first. Under a steady write load about every other append carried nothing else, and each cost the follower a wake-up, a
    /// hard-state write and an apply pass of its own. Delaying a send is always safe; once the group falls idle followers are
    /// as current as without the option. Off (default): commit advances are sent with the next Ready.</summary>
    public bool DeferCommitOnlyAppends { get; init; }
    /// <summary>Where a snapshot received from the leader is staged (e.g. <see cref="Storage.IRaftLogStore.CreateSnapshotSink"/>:
    /// a file, bounded memory). Null (default): in memory.</summary>
    public Func<SnapshotMetadata, ISnapshotSink>? SnapshotSink { get; init; }
}

/// <summary>What the host must do, in order: send <see cref="EarlyMessages"/> (empty unless <see cref="RaftConfig.AsyncLeaderAppend"/>; they may also go out
/// while persisting), persist <see cref="Snapshot"/>, <see cref="Entries"/> and <see cref="HardState"/> (fsync if <see cref="MustSync"/>),
/// then send <see cref="Messages"/>, then apply <see cref="Snapshot"/> and <see cref="CommittedEntries"/>, then call <see cref="IRaftNode.Advance"/>.</summary>
public sealed class Ready
{
    /// <summary>A leader's messages that depend on nothing in this Ready being durable: the host may send them before persisting.</summary>
    public IReadOnlyList<Message> EarlyMessages { get; init; } = [];
    public SoftState? SoftState { get; init; }
    public HardState? HardState { get; init; }
    public IReadOnlyList<Entry> Entries { get; init; } = [];
    public IReadOnlyList<Entry> CommittedEntries { get; init; } = [];
    public IReadOnlyList<Message> Messages { get; init; } = [];
    public IReadOnlyList<ReadState> ReadStates { get; init; } = [];
    public SnapshotMetadata? Snapshot { get; init; }
    public ReadOnlyMemory<byte> SnapshotData { get; init; }
    /// <summary>With <see cref="Snapshot"/>, when a <see cref="RaftConfig.SnapshotSink"/> staged it in a file: that file, complete,
    /// checksum-verified and fsynced (persist it with <see cref="Storage.IRaftLogStore.SaveSnapshotFile"/>, which moves it).</summary>
    public string? SnapshotFile { get; init; }
    /// <summary>With <see cref="Snapshot"/>: CRC32C of <see cref="SnapshotData"/>.</summary>
    public uint SnapshotChecksum { get; init; }
    public bool MustSync { get; init; }
    /// <summary>A joining replica learned the group's <see cref="RaftConfig.BootstrapVoters"/> from its leader: persist them
    /// before <see cref="Entries"/> (a restart that replays those entries from an empty membership would take a lone
    /// joiner for the whole group).</summary>
    public ulong[]? Bootstrap { get; init; }
}

/// <summary>Where a follower collects a snapshot streamed from its leader, chunk by chunk (<see cref="RaftConfig.SnapshotSink"/>),
/// so a large snapshot never sits in memory. Disposing a sink that was not completed discards what it staged.</summary>
public interface ISnapshotSink : IDisposable
{
    /// <summary>Appends the next chunk.</summary>
    void Write(ReadOnlySpan<byte> chunk);

    /// <summary>Every byte arrived and matched the leader's checksum: makes them durable and returns them to install and to
    /// serve to other members; <paramref name="path"/> is the staged file (null when the data is held in memory).</summary>
    ReadOnlyMemory<byte> Complete(out string? path);
}

/// <summary>What a node recovered from its durable log.</summary>
public sealed record PersistedState(HardState HardState, SnapshotMetadata? Snapshot, ReadOnlyMemory<byte> SnapshotData, IReadOnlyList<Entry> Entries)
{
    /// <summary>CRC32C of <see cref="SnapshotData"/> when the store knows it (null: computed when first needed).</summary>
    public uint? SnapshotChecksum { get; init; }

    public static readonly PersistedState Empty = new(default, null, ReadOnlyMemory<byte>.Empty, []);
}

/// <summary>Leader's view of a member's replication, for hosts deciding when a learner has caught up.</summary>
public readonly record struct PeerProgress(ulong Match, ulong Next, bool IsLearner, bool RecentActive);
