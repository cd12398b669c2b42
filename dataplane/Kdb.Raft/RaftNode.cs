namespace Kdb.Raft;

/// <summary>etcd-shaped Raft core: every input is a call, every output goes into the next <see cref="Ready"/>.</summary>
internal sealed partial class RaftNode : IRaftNode
{
    private readonly RaftConfig _config;
    private readonly RaftLog _log = new();
    private readonly Dictionary<ulong, Progress> _progress = [];
    private readonly HashSet<ulong> _voters = [];
    // The membership before log index 1 (RaftConfig.BootstrapVoters, or learned from the leader by a joining replica).
    private ulong[] _bootstrap;
    // Learned and not yet handed to the host for persisting.
    private ulong[]? _bootstrapLearned;
    private readonly HashSet<ulong> _learners = [];
    private readonly Dictionary<ulong, bool> _votes = [];
    private readonly List<Message> _messages = [];
    private readonly List<Message> _earlyMessages = [];
    private readonly List<ReadState> _readStates = [];
    private ulong _rng;

    private int _electionElapsed;
    private int _heartbeatElapsed;
    private int _randomizedElectionTimeout;
    // A restarted node may have promised a lease to a leader it no longer remembers: it refuses votes for one election timeout.
    private bool _recentlyStarted = true;
    private bool _quiesced;
    private int _idleTicks;

    private HardState _prevHardState;
    private SoftState _prevSoftState;
    private SnapshotMetadata? _snapshot;
    private ReadOnlyMemory<byte> _snapshotData;
    // CRC32C of _snapshotData, sent with it; null until known (computed on first send).
    private uint? _snapshotChecksum;
    private SnapshotMetadata? _pendingSnapshotToApply;
    private ReadOnlyMemory<byte> _pendingSnapshotData;
    private string? _pendingSnapshotFile;
    private uint _pendingSnapshotChecksum;
    private ulong _readyLastEntry;
    private ulong _readyLastCommitted;
    private bool _readyHadSnapshot;

    public RaftNode(RaftConfig config, PersistedState persisted)
    {
        if (config.Id == 0)
        {
            throw new ArgumentException("node id 0 is reserved for 'none'", nameof(config));
        }
        if (config.ElectionTicks <= config.HeartbeatTicks)
        {
            throw new ArgumentException("election ticks must exceed heartbeat ticks", nameof(config));
        }
        if (config.ReadMode == ReadMode.Lease && !config.CheckQuorum)
        {
            throw new ArgumentException("lease reads need CheckQuorum: followers must refuse votes while a leader's lease runs", nameof(config));
        }
        _config = config;
        _rng = (config.RandomSeed * 0x9E3779B97F4A7C15UL) ^ (config.Id * 0xBF58476D1CE4E5B9UL) | 1;
        _bootstrap = config.BootstrapVoters;
        var conf = persisted.Snapshot?.Conf ?? new ConfState(config.BootstrapVoters, []);
        ApplyConfState(conf);
        if (persisted.Snapshot is { } snap)
        {
            _log.Reset(snap.Index, snap.Term);
            _log.Applied = snap.Index;
            _snapshot = snap;
            _snapshotData = persisted.SnapshotData;
            _snapshotChecksum = persisted.SnapshotChecksum;
        }
        _log.LoadPersisted(persisted.Entries, persisted.HardState.Commit);
        Term = persisted.HardState.Term;
        Vote = persisted.HardState.Vote;
        _prevHardState = new HardState(Term, Vote, _log.Committed);
        BecomeFollower(Term, 0);
        _prevSoftState = new SoftState(0, RaftRole.Follower);
    }

    public ulong Id => _config.Id;
    public ulong Term { get; private set; }
    public ulong Vote { get; private set; }
    public ulong Leader { get; private set; }
    public RaftRole Role { get; private set; }
    public ulong CommitIndex => _log.Committed;
    public ulong AppliedIndex => _log.Applied;
    public ulong LastIndex => _log.LastIndex;
    public ConfState Conf => new([.. _voters], [.. _learners]);
    private int Quorum => (_voters.Count / 2) + 1;
    private bool Promotable => _voters.Contains(Id);
    private long _now;

    public bool IsQuiesced => _quiesced;

    public void Tick(long nowMs = 0)
    {
        _now = Math.Max(_now, nowMs);
        if (_quiesced)
        {
            // A quiet follower's election timer stands still: it only ever refuses votes for longer, which keeps leases safe.
            return;
        }
        if (Role == RaftRole.Leader)
        {
            TickLeader();
            return;
        }
        _electionElapsed++;
        if (_electionElapsed >= _config.ElectionTicks)
        {
            _recentlyStarted = false;
        }
        if (Promotable && _electionElapsed >= _randomizedElectionTimeout)
        {
            _electionElapsed = 0;
            Hup(transfer: false);
        }
    }

    public void Campaign()
    {
        Wake();
        Hup(transfer: true);
    }

    private void Hup(bool transfer)
    {
        if (Role == RaftRole.Leader || !Promotable || _pendingSnapshotToApply is not null)
        {
            return;
        }
        // Entries of a configuration change not yet applied could change who votes; etcd refuses to campaign then too.
        for (var i = _log.Applied + 1; i <= _log.Committed; i++)
        {
            if (i > _log.CompactedIndex && _log.At(i).Type == EntryType.ConfChange)
            {
                return;
            }
        }
        if (_config.PreVote && !transfer)
        {
            StartCampaign(preVote: true, transfer: false);
        }
        else
        {
            StartCampaign(preVote: false, transfer: transfer);
        }
    }

    public void Step(Message m)
    {
        if (m.To != Id || m.GroupId != _config.GroupId)
        {
            return;
        }
        if (_quiesced && WakesQuiescedNode(m))
        {
            Wake();
        }
        if (m.Term > Term)
        {
            if (m.Type is MessageType.Vote or MessageType.PreVote)
            {
                var force = m.Context == 1;
                var inLease = _config.CheckQuorum && (Leader != 0 || _recentlyStarted) && _electionElapsed < _config.ElectionTicks;
                if (!force && inLease)
                {
                    return;
                }
            }
            if (m.Type == MessageType.PreVote)
            {
                // A pre-vote never changes our term.
            }
            else if (m.Type == MessageType.PreVoteResponse && !m.Reject)
            {
                // A granted pre-vote carries the future term; we move only when we win.
            }
            else if (m.Type is MessageType.Append or MessageType.Heartbeat or MessageType.Snapshot)
            {
                BecomeFollower(m.Term, m.From);
            }
            else
            {
                BecomeFollower(m.Term, 0);
            }
        }
        else if (m.Term < Term)
        {
            if ((_config.CheckQuorum || _config.PreVote) && m.Type is MessageType.Append or MessageType.Heartbeat)
            {
                // Tell a stale leader cut off by a one-way partition that a newer term exists.
                Send(new Message { Type = MessageType.AppendResponse, To = m.From, Term = Term });
            }
            else if (m.Type == MessageType.PreVote)
            {
                Send(new Message { Type = MessageType.PreVoteResponse, To = m.From, Term = Term, Reject = true });
            }
            return;
        }

        switch (m.Type)
        {
            case MessageType.Vote:
            case MessageType.PreVote:
                HandleVoteRequest(m);
                return;
        }

        switch (Role)
        {
            case RaftRole.Leader:
                StepLeader(m);
                break;
            case RaftRole.Candidate:
            case RaftRole.PreCandidate:
                StepCandidate(m);
                break;
            default:
                StepFollower(m);
                break;
        }
    }

    private void HandleVoteRequest(Message m)
    {
        var pre = m.Type == MessageType.PreVote;
        var canVote = Vote == m.From || (Vote == 0 && Leader == 0) || (pre && m.Term > Term);
        var respType = pre ? MessageType.PreVoteResponse : MessageType.VoteResponse;
        if (canVote && _log.IsUpToDate(m.Index, m.LogTerm) && _voters.Contains(m.From))
        {
            Send(new Message { Type = respType, To = m.From, Term = m.Term });
            if (!pre)
            {
                _electionElapsed = 0;
                Vote = m.From;
            }
        }
        else
        {
            Send(new Message { Type = respType, To = m.From, Term = Term, Reject = true });
        }
    }

    private void BecomeFollower(ulong term, ulong leader)
    {
        ResetTerm(term);
        Role = RaftRole.Follower;
        Leader = leader;
    }

    private void ResetTerm(ulong term)
    {
        if (Term != term)
        {
            Term = term;
            Vote = 0;
        }
        Leader = 0;
        _electionElapsed = 0;
        _heartbeatElapsed = 0;
        _randomizedElectionTimeout = _config.ElectionTicks + (int)(NextRandom() % (ulong)_config.ElectionTicks);
        _votes.Clear();
        _leadTransferee = 0;
        _pendingReads.Clear();
        _roundSentAt.Clear();
        _round = 0;
        _leaseUntil = long.MinValue;
        _leaseDisabled = false;
        _quiesced = false;
        _idleTicks = 0;
        _appendsOwed = false;
    }

    private ulong NextRandom()
    {
        _rng ^= _rng << 13;
        _rng ^= _rng >> 7;
        _rng ^= _rng << 17;
        return _rng;
    }

    private void Send(Message m)
    {
        // Appends and heartbeats of a leader whose term and vote are already durable depend on nothing the next Ready persists:
        // the leader does not count its own unpersisted entries toward a commit (see MaybeCommit).
        var early = _config.AsyncLeaderAppend && Role == RaftRole.Leader && m.Type is MessageType.Append or MessageType.Heartbeat
            && Term == _prevHardState.Term && Vote == _prevHardState.Vote;
        (early ? _earlyMessages : _messages).Add(new Message
        {
            Type = m.Type,
            GroupId = _config.GroupId,
            From = Id,
            To = m.To,
            Term = m.Term,
            LogTerm = m.LogTerm,
            Index = m.Index,
            Commit = m.Commit,
            Reject = m.Reject,
            RejectHint = m.RejectHint,
            Context = m.Context,
            Entries = m.Entries,
            Snapshot = m.Snapshot,
            SnapshotOffset = m.SnapshotOffset,
            SnapshotChunk = m.SnapshotChunk,
            SnapshotDone = m.SnapshotDone,
            Quiesce = m.Quiesce,
        });
    }

    private void ApplyConfState(ConfState conf)
    {
        _voters.Clear();
        _learners.Clear();
        foreach (var v in conf.Voters)
        {
            _voters.Add(v);
        }
        foreach (var l in conf.Learners)
        {
            _learners.Add(l);
        }
    }

    private HardState CurrentHardState => new(Term, Vote, _log.Committed);

    // Appends owed to followers (OweAppends) are built by GetReady, so owing them is itself something to hand out.
    public bool HasReady =>
        _appendsOwed
        || _messages.Count > 0
        || _earlyMessages.Count > 0
        || _readStates.Count > 0
        || _log.LastIndex > _log.Stabled
        || CurrentHardState != _prevHardState
        || _pendingSnapshotToApply is not null
        || _bootstrapLearned is not null
        || Math.Min(_log.Committed, _log.LastIndex) > Math.Max(_log.Applied, _log.CompactedIndex)
        || new SoftState(Leader, Role) != _prevSoftState;

    public Ready GetReady()
    {
        SendOwedAppends();
        var unstable = _log.LastIndex > _log.Stabled ? _log.Slice(_log.Stabled + 1, _log.LastIndex, long.MaxValue) : [];
        var applyFrom = Math.Max(_log.Applied, _log.CompactedIndex) + 1;
        var committed = _log.Committed >= applyFrom ? _log.Slice(applyFrom, _log.Committed, long.MaxValue) : [];
        var hs = CurrentHardState;
        var ss = new SoftState(Leader, Role);
        var ready = new Ready
        {
            SoftState = ss != _prevSoftState ? ss : null,
            HardState = hs != _prevHardState ? hs : null,
            Entries = unstable,
            CommittedEntries = committed,
            Messages = [.. _messages],
            EarlyMessages = _earlyMessages.Count == 0 ? [] : [.. _earlyMessages],
            ReadStates = [.. _readStates],
            Snapshot = _pendingSnapshotToApply,
            SnapshotData = _pendingSnapshotData,
            SnapshotFile = _pendingSnapshotFile,
            SnapshotChecksum = _pendingSnapshotChecksum,
            MustSync = unstable.Length > 0 || hs.Term != _prevHardState.Term || hs.Vote != _prevHardState.Vote || _pendingSnapshotToApply is not null,
            Bootstrap = _bootstrapLearned,
        };
        _bootstrapLearned = null;
        _messages.Clear();
        _earlyMessages.Clear();
        _readStates.Clear();
        _readyLastEntry = unstable.Length > 0 ? unstable[^1].Index : 0;
        _readyLastCommitted = committed.Length > 0 ? committed[^1].Index : 0;
        _readyHadSnapshot = _pendingSnapshotToApply is not null;
        _prevHardState = hs;
        _prevSoftState = ss;
        return ready;
    }

    public void Advance(Ready ready)
    {
        if (_readyHadSnapshot && ready.Snapshot is { } snap)
        {
            _log.Applied = Math.Max(_log.Applied, snap.Index);
            _snapshot = snap;
            _snapshotData = ready.SnapshotData;
            _snapshotChecksum = ready.SnapshotChecksum;
            _pendingSnapshotToApply = null;
            _pendingSnapshotData = default;
            _pendingSnapshotFile = null;
        }
        if (_readyLastEntry > 0)
        {
            _log.Stabled = Math.Max(_log.Stabled, Math.Min(_readyLastEntry, _log.LastIndex));
            if (_config.AsyncLeaderAppend && Role == RaftRole.Leader && MaybeCommit())
            {
                // Our own append just became durable and completed a quorum.
                OweAppends();
            }
        }
        foreach (var e in ready.CommittedEntries)
        {
            if (e.Index <= _log.Applied)
            {
                continue;
            }
            _log.Applied = e.Index;
            if (e.Type == EntryType.ConfChange)
            {
                ApplyConfChange(ConfChange.Decode(e.Data.Span));
            }
        }
        _readyLastEntry = 0;
        _readyLastCommitted = 0;
        _readyHadSnapshot = false;
    }

    public SnapshotMetadata Compact(ReadOnlyMemory<byte> stateMachineSnapshot, ulong retainEntries)
    {
        var index = _log.Applied;
        if (_snapshot is not null && index <= _snapshot.Index)
        {
            return _snapshot;
        }
        var term = _log.TermAt(index) ?? throw new InvalidOperationException($"no term known at applied index {index}");
        _snapshot = new SnapshotMetadata(index, term, Conf);
        _snapshotData = stateMachineSnapshot;
        _snapshotChecksum = null;
        if (index > retainEntries)
        {
            _log.CompactTo(Math.Min(index - retainEntries, _log.Stabled));
        }
        return _snapshot;
    }

    public SnapshotMetadata CaptureSnapshotMetadata()
    {
        var index = _log.Applied;
        if (_snapshot is not null && index <= _snapshot.Index)
        {
            return _snapshot;
        }
        var term = _log.TermAt(index) ?? throw new InvalidOperationException($"no term known at applied index {index}");
        return new SnapshotMetadata(index, term, Conf);
    }

    public bool CanCompact(SnapshotMetadata snapshot) =>
        _pendingSnapshotToApply is null
        && (_snapshot is null || snapshot.Index > _snapshot.Index)
        && snapshot.Index <= _log.Applied
        // A leader's snapshot installed meanwhile moved the log past it (the term there is no longer known).
        && _log.TermAt(snapshot.Index) == snapshot.Term;

    public bool Compact(SnapshotMetadata snapshot, ReadOnlyMemory<byte> data, uint checksum, ulong retainEntries)
    {
        if (!CanCompact(snapshot))
        {
            return false;
        }
        _snapshot = snapshot;
        _snapshotData = data;
        _snapshotChecksum = checksum;
        if (snapshot.Index > retainEntries)
        {
            _log.CompactTo(Math.Min(snapshot.Index - retainEntries, _log.Stabled));
        }
        return true;
    }

    /// <summary>CRC32C of the snapshot this leader sends, computed once when the host did not supply it.</summary>
    private uint SnapshotChecksum() => _snapshotChecksum ??= Crc32C.Compute(_snapshotData.Span);
}
