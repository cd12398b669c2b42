namespace Kdb.Raft;

/// <summary>One member of one Raft group: a deterministic state machine with no threads, clocks or I/O.
/// Not thread-safe: the host serializes calls.</summary>
public interface IRaftNode
{
    ulong Id { get; }
    ulong Term { get; }
    ulong Leader { get; }
    RaftRole Role { get; }
    ulong CommitIndex { get; }
    ulong AppliedIndex { get; }
    ulong LastIndex { get; }
    ConfState Conf { get; }

    /// <summary>Advances logical time by one tick. <paramref name="nowMs"/> is the host's monotonic clock, used only by lease reads.</summary>
    void Tick(long nowMs = 0);

    /// <summary>Feeds a message received from a peer. Messages for another node or group are ignored.</summary>
    void Step(Message message);

    /// <summary>Appends a command if this node is the leader.</summary>
    ProposeResult Propose(ReadOnlyMemory<byte> command);

    /// <summary>Proposes a membership change; at most one is pending at a time.</summary>
    ProposeResult ProposeConfChange(ConfChange change);

    /// <summary>Asks for a linearizable read point (also on followers, through the leader).</summary>
    ReadIndexStatus ReadIndex(ulong context, long nowMs = 0);

    /// <summary>Asks the leader to hand leadership to <paramref name="target"/>. Returns false if not leader or target is not a voter.</summary>
    bool TransferLeadership(ulong target);

    /// <summary>Forces an election now (tests and operator tools).</summary>
    void Campaign();

    /// <summary>True when <see cref="GetReady"/> has something. A leader sends the appends its proposals and commit advances
    /// owe followers when asked (one per follower, however many proposals came since the last Ready).</summary>
    bool HasReady { get; }
    Ready GetReady();
    void Advance(Ready ready);

    /// <summary>Records a snapshot of the state machine at <see cref="AppliedIndex"/> and drops in-memory log entries up to
    /// <c>AppliedIndex - retainEntries</c>. Returns the snapshot's metadata for the host to persist.</summary>
    SnapshotMetadata Compact(ReadOnlyMemory<byte> stateMachineSnapshot, ulong retainEntries);

    /// <summary>The metadata a snapshot of the state machine as applied now carries (<see cref="AppliedIndex"/>, its term,
    /// the membership at that index). A host that packs its snapshot off the loop captures this together with its state
    /// machine's checkpoint, then hands both to <see cref="Compact(SnapshotMetadata, ReadOnlyMemory{byte}, uint, ulong)"/>.</summary>
    SnapshotMetadata CaptureSnapshotMetadata();

    /// <summary>Whether <see cref="Compact(SnapshotMetadata, ReadOnlyMemory{byte}, uint, ulong)"/> would take this snapshot
    /// now: false once it is superseded (a newer snapshot was taken or installed from the leader since it was captured).
    /// The host asks before it persists the snapshot.</summary>
    bool CanCompact(SnapshotMetadata snapshot);

    /// <summary>Takes a snapshot packed off the loop at <paramref name="snapshot"/> (from <see cref="CaptureSnapshotMetadata"/>;
    /// the state machine has applied further since) and drops in-memory log entries up to
    /// <c>snapshot.Index - retainEntries</c>. <paramref name="checksum"/>: CRC32C of <paramref name="data"/>, sent with it to
    /// followers, which verify it before installing. False, and nothing changes, when the snapshot is superseded.</summary>
    bool Compact(SnapshotMetadata snapshot, ReadOnlyMemory<byte> data, uint checksum, ulong retainEntries);

    /// <summary>The leader's view of a peer, or null if not leader or not a member.</summary>
    PeerProgress? GetProgress(ulong peer);

    /// <summary>Host-clock time (ms, the clock passed to <see cref="Tick"/>) until which this node may serve a read at
    /// <see cref="CommitIndex"/> without asking anyone: a leader in <see cref="ReadMode.Lease"/> whose lease runs, whose
    /// term has committed an entry and that is not transferring leadership. <see cref="long.MinValue"/> otherwise. Lets a
    /// host answer lease reads on other threads from a value it publishes after each <see cref="GetReady"/>.</summary>
    long LeaseReadUntil => long.MinValue;

    /// <summary>True while the group is quiet (<see cref="RaftConfig.QuiesceAfterTicks"/>): <see cref="Tick"/> does nothing, so the host may skip it.</summary>
    bool IsQuiesced => false;

    /// <summary>The host's failure detector suspects <paramref name="peer"/> is down or cut off. A quiesced node wakes: a follower
    /// resumes its election timer (from where it stopped, so a leader's lease stays safe), a leader resumes heartbeats and CheckQuorum.</summary>
    void ReportUnreachable(ulong peer)
    {
    }
}

/// <summary>Creates Raft nodes.</summary>
public static class RaftNodeFactory
{
    /// <summary>Starts (or restarts, from <paramref name="persisted"/>) a group member.</summary>
    public static IRaftNode Create(RaftConfig config, PersistedState? persisted = null) =>
        new RaftNode(config, persisted ?? PersistedState.Empty);
}
