namespace Kdb.Raft;

internal sealed partial class RaftNode
{
    private readonly List<PendingRead> _pendingReads = [];
    private readonly Dictionary<ulong, long> _roundSentAt = [];
    private ulong _round;
    private long _leaseUntil = long.MinValue;
    private ulong _leadTransferee;
    private ulong _pendingConfIndex;
    private bool _leaseDisabled;

    private readonly record struct PendingRead(ulong Context, ulong Index, ulong Round, ulong From);

    private void BecomeLeader()
    {
        ResetTerm(Term);
        Role = RaftRole.Leader;
        Leader = Id;
        _progress.Clear();
        foreach (var v in _voters)
        {
            _progress[v] = new Progress(_log.LastIndex + 1, false, _config.MaxInflightMessages);
        }
        foreach (var l in _learners)
        {
            _progress[l] = new Progress(_log.LastIndex + 1, true, _config.MaxInflightMessages);
        }
        // No membership change until everything before our first entry has been applied (etcd's rule; avoids the single-server change bug).
        _pendingConfIndex = _log.LastIndex + 1;
        AppendEntry(EntryType.Normal, ReadOnlyMemory<byte>.Empty);
        BroadcastAppend();
    }

    private void TickLeader()
    {
        if (MaybeQuiesce())
        {
            return;
        }
        _heartbeatElapsed++;
        _electionElapsed++;
        if (_electionElapsed >= _config.ElectionTicks)
        {
            _electionElapsed = 0;
            if (_config.CheckQuorum)
            {
                var active = 0;
                foreach (var (id, pr) in _progress)
                {
                    if (id == Id || (pr.RecentActive && !pr.IsLearner && _voters.Contains(id)))
                    {
                        active++;
                    }
                    pr.RecentActive = id == Id;
                }
                if (active < Quorum)
                {
                    BecomeFollower(Term, 0);
                    return;
                }
            }
            _leadTransferee = 0;
        }
        if (_config.DeferCommitOnlyAppends)
        {
            SendDeferredCommits();
        }
        if (_heartbeatElapsed >= _config.HeartbeatTicks)
        {
            _heartbeatElapsed = 0;
            BroadcastHeartbeat(_now);
            foreach (var (id, pr) in _progress)
            {
                if (id != Id && pr.State == ProgressState.Snapshot)
                {
                    // No chunk acknowledged since the last heartbeat: resend from what the follower has.
                    if (!pr.SnapshotProgressed)
                    {
                        pr.SnapshotSent = pr.SnapshotAcked;
                        SendSnapshotChunks(id, pr);
                    }
                    pr.SnapshotProgressed = false;
                }
            }
        }
    }

    public ProposeResult Propose(ReadOnlyMemory<byte> command)
    {
        if (command.Length > _config.MaxEntryBytes)
        {
            return new ProposeResult(ProposeStatus.TooLarge, 0, 0, Leader,
                $"proposal of {command.Length} bytes exceeds the {_config.MaxEntryBytes}-byte entry limit; stage large transactions in chunks");
        }
        if (Role != RaftRole.Leader)
        {
            return new ProposeResult(ProposeStatus.NotLeader, 0, 0, Leader, "not the leader");
        }
        Wake();
        if (_leadTransferee != 0)
        {
            return new ProposeResult(ProposeStatus.TransferInProgress, 0, 0, _leadTransferee, "leadership transfer in progress");
        }
        var index = AppendEntry(EntryType.Normal, command);
        OweAppends();
        return new ProposeResult(ProposeStatus.Accepted, index, Term, Id);
    }

    public ProposeResult ProposeConfChange(ConfChange change)
    {
        if (Role != RaftRole.Leader)
        {
            return new ProposeResult(ProposeStatus.NotLeader, 0, 0, Leader, "not the leader");
        }
        Wake();
        if (_leadTransferee != 0)
        {
            return new ProposeResult(ProposeStatus.TransferInProgress, 0, 0, _leadTransferee, "leadership transfer in progress");
        }
        if (_pendingConfIndex > _log.Applied)
        {
            return new ProposeResult(ProposeStatus.ConfChangePending, 0, 0, Id, "a membership change is still pending");
        }
        var error = change.Type switch
        {
            _ when change.NodeId == 0 => "node id 0 is reserved",
            ConfChangeType.AddVoter when _voters.Contains(change.NodeId) => "already a voter",
            ConfChangeType.AddLearner when _voters.Contains(change.NodeId) || _learners.Contains(change.NodeId) => "already a member",
            ConfChangeType.RemoveNode when !_voters.Contains(change.NodeId) && !_learners.Contains(change.NodeId) => "not a member",
            ConfChangeType.RemoveNode when _voters.Count == 1 && _voters.Contains(change.NodeId) => "cannot remove the last voter",
            ConfChangeType.AddVoter or ConfChangeType.AddLearner or ConfChangeType.RemoveNode => null,
            _ => "unknown change type",
        };
        if (error is not null)
        {
            return new ProposeResult(ProposeStatus.InvalidConfChange, 0, 0, Id, error);
        }
        var index = AppendEntry(EntryType.ConfChange, change.Encode());
        _pendingConfIndex = index;
        BroadcastAppend();
        return new ProposeResult(ProposeStatus.Accepted, index, Term, Id);
    }

    private void ApplyConfChange(ConfChange cc)
    {
        switch (cc.Type)
        {
            case ConfChangeType.AddVoter:
                _learners.Remove(cc.NodeId);
                _voters.Add(cc.NodeId);
                break;
            case ConfChangeType.AddLearner:
                if (!_voters.Contains(cc.NodeId))
                {
                    _learners.Add(cc.NodeId);
                }
                break;
            case ConfChangeType.RemoveNode:
                _voters.Remove(cc.NodeId);
                _learners.Remove(cc.NodeId);
                break;
        }
        if (Role != RaftRole.Leader)
        {
            return;
        }
        if (cc.Type == ConfChangeType.RemoveNode)
        {
            _progress.Remove(cc.NodeId);
            if (cc.NodeId == Id)
            {
                BecomeFollower(Term, 0);
                return;
            }
            if (_leadTransferee == cc.NodeId)
            {
                _leadTransferee = 0;
            }
        }
        else if (_progress.TryGetValue(cc.NodeId, out var pr))
        {
            pr.IsLearner = _learners.Contains(cc.NodeId);
        }
        else
        {
            _progress[cc.NodeId] = new Progress(_log.LastIndex + 1, cc.Type == ConfChangeType.AddLearner, _config.MaxInflightMessages);
        }
        if (MaybeCommit())
        {
            BroadcastAppend();
        }
    }

    private ulong AppendEntry(EntryType type, ReadOnlyMemory<byte> data)
    {
        var index = _log.LastIndex + 1;
        _log.Append(new Entry(Term, index, type, data));
        if (_progress.TryGetValue(Id, out var self))
        {
            self.MaybeUpdate(index);
        }
        MaybeCommit();
        return index;
    }

    private bool MaybeCommit()
    {
        Span<ulong> matches = stackalloc ulong[_voters.Count];
        var n = 0;
        foreach (var v in _voters)
        {
            matches[n++] = v == Id ? SelfMatch : (_progress.TryGetValue(v, out var pr) ? pr.Match : 0);
        }
        if (n == 0)
        {
            return false;
        }
        matches.Sort();
        var candidate = matches[n - Quorum];
        if (candidate > _log.Committed && _log.TermAt(candidate) == Term)
        {
            _log.CommitTo(candidate);
            return true;
        }
        return false;
    }

    /// <summary>How far the leader's own log counts toward a quorum: all of it when the host persists before sending, else what is durable.</summary>
    private ulong SelfMatch => _config.AsyncLeaderAppend ? _log.Stabled : _log.LastIndex;

    /// <summary>
    /// Every follower is owed an append (new entries, or a commit index it has not been sent): sent once, when the host
    /// next asks for a Ready. A round that takes many proposals and acknowledgements then sends each follower one append
    /// carrying all of them, instead of one per proposal and one per commit advance, and each follower answers once
    /// (each message is a decode, a step, a reply and a share of a frame on both sides). Delaying a send is always safe.
    /// </summary>
    private void OweAppends() => _appendsOwed = true;

    private bool _appendsOwed;

    private void SendOwedAppends()
    {
        if (!_appendsOwed)
        {
            return;
        }
        _appendsOwed = false;
        if (Role != RaftRole.Leader)
        {
            return;
        }
        foreach (var (id, pr) in _progress)
        {
            if (id != Id)
            {
                // An append already sent this round with the current commit index carries everything: send only what is new.
                SendAppend(id, sendIfEmpty: pr.CommitSent < _log.Committed && !CommitCanWait(pr));
            }
        }
    }

    /// <summary>
    /// With <see cref="RaftConfig.DeferCommitOnlyAppends"/>, a commit advance waits only while entries past it are in flight to
    /// the follower: their acknowledgement advances the commit again, and the advance that finds nothing left in flight is
    /// sent at once. So under a steady write load the commit rides on appends that carry entries, and a group that falls idle
    /// leaves no follower behind (a follower that never answers still gets it on the next tick).
    /// </summary>
    private bool CommitCanWait(Progress pr) => _config.DeferCommitOnlyAppends && pr.Next - 1 > _log.Committed;

    /// <summary>Sends the commit index to every follower that has not been sent it yet (<see cref="RaftConfig.DeferCommitOnlyAppends"/>).</summary>
    private void SendDeferredCommits()
    {
        foreach (var (id, pr) in _progress)
        {
            if (id != Id && pr.CommitSent < _log.Committed)
            {
                SendAppend(id, sendIfEmpty: true);
            }
        }
    }

    private void BroadcastAppend()
    {
        foreach (var id in _progress.Keys)
        {
            if (id != Id)
            {
                SendAppend(id, sendIfEmpty: true);
            }
        }
    }

    /// <summary>Sends the next batch to <paramref name="to"/>; returns false if nothing was sent.</summary>
    private bool SendAppend(ulong to, bool sendIfEmpty)
    {
        var pr = _progress[to];
        if (pr.IsPaused)
        {
            return false;
        }
        var prevIndex = pr.Next - 1;
        var prevTerm = _log.TermAt(prevIndex);
        if (prevTerm is null)
        {
            SendSnapshot(to, pr);
            return true;
        }
        var entries = _log.Slice(pr.Next, _log.LastIndex, _config.MaxBytesPerMessage);
        if (entries.Length == 0 && !sendIfEmpty)
        {
            return false;
        }
        Send(new Message
        {
            Type = MessageType.Append,
            To = to,
            Term = Term,
            Index = prevIndex,
            LogTerm = prevTerm.Value,
            Entries = entries,
            Commit = _log.Committed,
            // Under a steady write load about every other append only carries a commit advance; its answer would repeat the
            // match the leader already has and cost both sides a message (heartbeats still prove the follower alive).
            Context = entries.Length == 0 && pr.State == ProgressState.Replicate && pr.Match == prevIndex ? Message.NoReply : 0,
            // From the very start of the log: a replica that joined the group replays it from the membership the group began
            // with, which no entry records (a snapshot would carry membership; the log from index 1 does not).
            Snapshot = prevIndex == 0 && _bootstrap.Length > 0 ? new SnapshotMetadata(0, 0, new ConfState(_bootstrap, [])) : null,
        });
        pr.CommitSent = _log.Committed;
        if (entries.Length > 0)
        {
            if (pr.State == ProgressState.Replicate)
            {
                pr.OptimisticUpdate(entries[^1].Index);
            }
            else
            {
                pr.ProbeSent = true;
            }
        }
        else if (pr.State == ProgressState.Probe)
        {
            pr.ProbeSent = true;
        }
        return true;
    }

    private void SendSnapshot(ulong to, Progress pr)
    {
        if (_snapshot is null)
        {
            throw new InvalidOperationException("log compacted without a snapshot");
        }
        if (!pr.RecentActive)
        {
            // Do not stream a snapshot to a peer we have not heard from lately.
            return;
        }
        pr.BecomeSnapshot(_snapshot.Index);
        SendSnapshotChunks(to, pr);
    }

    private void SendSnapshotChunks(ulong to, Progress pr)
    {
        if (_snapshot is null || _snapshot.Index != pr.PendingSnapshot)
        {
            pr.BecomeProbe();
            return;
        }
        var total = _snapshotData.Length;
        if (total > 0 && pr.SnapshotSent >= total)
        {
            // Everything is out: an acknowledgement must not send an empty final chunk again (each would be answered).
            return;
        }
        var window = (long)_config.SnapshotChunkBytes * _config.SnapshotWindowChunks;
        var checksum = SnapshotChecksumPresent | SnapshotChecksum();
        do
        {
            var offset = pr.SnapshotSent;
            var len = (int)Math.Min(_config.SnapshotChunkBytes, total - offset);
            Send(new Message
            {
                Type = MessageType.Snapshot,
                To = to,
                Term = Term,
                Snapshot = _snapshot,
                SnapshotOffset = offset,
                SnapshotChunk = _snapshotData.Slice((int)offset, len),
                SnapshotDone = offset + len == total,
                Commit = _log.Committed,
                Context = checksum,
            });
            pr.SnapshotSent = offset + len;
        }
        while (pr.SnapshotSent < total && pr.SnapshotSent - pr.SnapshotAcked < window);
    }

    private void BroadcastHeartbeat(long now, bool quiesce = false)
    {
        if (_progress.Count <= 1)
        {
            // A single-member group has nobody to tell: idle groups of one cost nothing per tick.
            return;
        }
        _round++;
        if (_config.ReadMode == ReadMode.Lease)
        {
            _roundSentAt[_round] = now;
        }
        foreach (var (id, pr) in _progress)
        {
            if (id == Id)
            {
                continue;
            }
            Send(new Message
            {
                Type = MessageType.Heartbeat,
                To = id,
                Term = Term,
                Commit = Math.Min(pr.Match, _log.Committed),
                Context = _round,
                Quiesce = quiesce,
            });
        }
    }

    private void StepLeader(Message m)
    {
        if (!_progress.TryGetValue(m.From, out var pr))
        {
            if (m.Type == MessageType.ReadIndex)
            {
                // Reads from a learner not yet in our progress map are still served.
                HandleReadRequest(m.Context, m.From, _now);
            }
            return;
        }
        switch (m.Type)
        {
            case MessageType.AppendResponse:
                pr.RecentActive = true;
                HandleAppendResponse(m, pr);
                break;
            case MessageType.HeartbeatResponse:
                pr.RecentActive = true;
                pr.ProbeSent = false;
                pr.FreeFirstInflight();
                if (m.Context > pr.HeartbeatRoundAcked && m.Context <= _round)
                {
                    pr.HeartbeatRoundAcked = m.Context;
                    ReleaseReads();
                }
                if (pr.Match < _log.LastIndex)
                {
                    SendAppend(m.From, sendIfEmpty: true);
                }
                break;
            case MessageType.SnapshotResponse:
                pr.RecentActive = true;
                if (pr.State == ProgressState.Snapshot && m.Index == pr.PendingSnapshot)
                {
                    var acked = (long)m.Context;
                    if (m.Reject || acked != pr.SnapshotAcked)
                    {
                        pr.SnapshotProgressed = true;
                    }
                    pr.SnapshotAcked = acked;
                    if (m.Reject || pr.SnapshotSent < acked)
                    {
                        pr.SnapshotSent = acked;
                    }
                    SendSnapshotChunks(m.From, pr);
                }
                break;
            case MessageType.ReadIndex:
                HandleReadRequest(m.Context, m.From, _now);
                break;
        }
    }

    private void HandleAppendResponse(Message m, Progress pr)
    {
        if (m.Reject)
        {
            if (pr.MaybeDecrTo(m.Index, m.RejectHint))
            {
                if (pr.State == ProgressState.Replicate)
                {
                    pr.BecomeProbe();
                }
                SendAppend(m.From, sendIfEmpty: true);
            }
            return;
        }
        var wasPaused = pr.IsPaused;
        if (!pr.MaybeUpdate(m.Index))
        {
            return;
        }
        switch (pr.State)
        {
            case ProgressState.Probe:
                pr.BecomeReplicate();
                break;
            case ProgressState.Snapshot when pr.Match >= pr.PendingSnapshot:
                pr.BecomeProbe();
                pr.BecomeReplicate();
                break;
            case ProgressState.Replicate:
                pr.FreeInflightsTo(m.Index);
                break;
        }
        if (MaybeCommit())
        {
            OweAppends();
        }
        else if (wasPaused)
        {
            SendAppend(m.From, sendIfEmpty: false);
        }
        // Pipelining: keep the follower's window full.
        while (SendAppend(m.From, sendIfEmpty: false))
        {
        }
        if (m.From == _leadTransferee && pr.Match == _log.LastIndex)
        {
            Send(new Message { Type = MessageType.TimeoutNow, To = m.From, Term = Term });
        }
    }

    public ReadIndexStatus ReadIndex(ulong context, long nowMs = 0)
    {
        _now = Math.Max(_now, nowMs);
        if (Role == RaftRole.Leader)
        {
            Wake();
            return HandleReadRequest(context, Id, _now);
        }
        if (Leader == 0)
        {
            return ReadIndexStatus.NoLeader;
        }
        Send(new Message { Type = MessageType.ReadIndex, To = Leader, Term = Term, Context = context });
        return ReadIndexStatus.Pending;
    }

    public long LeaseReadUntil =>
        Role == RaftRole.Leader && _config.ReadMode == ReadMode.Lease && !_leaseDisabled && _log.TermAt(_log.Committed) == Term
            ? _leaseUntil
            : long.MinValue;

    private ReadIndexStatus HandleReadRequest(ulong context, ulong from, long now)
    {
        if (_log.TermAt(_log.Committed) != Term)
        {
            // Our commit index may lag the true one until an entry of our term commits.
            return ReadIndexStatus.NotReady;
        }
        var index = _log.Committed;
        if (_voters.Count == 1 && _voters.Contains(Id))
        {
            CompleteRead(context, index, from);
            return ReadIndexStatus.Pending;
        }
        if (_config.ReadMode == ReadMode.Lease && !_leaseDisabled && now < _leaseUntil)
        {
            CompleteRead(context, index, from);
            return ReadIndexStatus.Pending;
        }
        BroadcastHeartbeat(now);
        _pendingReads.Add(new PendingRead(context, index, _round, from));
        return ReadIndexStatus.Pending;
    }

    private void CompleteRead(ulong context, ulong index, ulong from)
    {
        if (from == Id)
        {
            _readStates.Add(new ReadState(context, index));
        }
        else
        {
            Send(new Message { Type = MessageType.ReadIndexResponse, To = from, Term = Term, Context = context, Index = index });
            // The follower applies up to the read index before it answers: a commit index held back for the next append
            // would hold the read back with it.
            if (_config.DeferCommitOnlyAppends && _progress.TryGetValue(from, out var pr) && pr.CommitSent < index)
            {
                SendAppend(from, sendIfEmpty: true);
            }
        }
    }

    /// <summary>Releases reads whose heartbeat round a quorum of voters acknowledged, and extends the lease.</summary>
    private void ReleaseReads()
    {
        Span<ulong> acked = stackalloc ulong[_voters.Count];
        var n = 0;
        foreach (var v in _voters)
        {
            acked[n++] = v == Id ? _round : (_progress.TryGetValue(v, out var pr) ? pr.HeartbeatRoundAcked : 0);
        }
        acked.Sort();
        var quorumRound = acked[n - Quorum];
        if (quorumRound == 0)
        {
            return;
        }
        if (_roundSentAt.TryGetValue(quorumRound, out var sentAt))
        {
            // Followers that acknowledged this round refuse votes for an election timeout measured from receipt, which is after sentAt.
            // One tick is lost to granularity: a follower may tick right after resetting its election timer.
            var leaseMs = ((long)(_config.ElectionTicks - 1) * _config.TickMs) - _config.MaxClockDriftMs;
            _leaseUntil = Math.Max(_leaseUntil, sentAt + leaseMs);
        }
        var kept = 0;
        for (var i = 0; i < _pendingReads.Count; i++)
        {
            var r = _pendingReads[i];
            if (r.Round <= quorumRound)
            {
                CompleteRead(r.Context, r.Index, r.From);
            }
            else
            {
                _pendingReads[kept++] = r;
            }
        }
        _pendingReads.RemoveRange(kept, _pendingReads.Count - kept);
        // Rounds at or below the quorum round are never needed again.
        List<ulong>? stale = null;
        foreach (var r in _roundSentAt.Keys)
        {
            if (r < quorumRound)
            {
                (stale ??= []).Add(r);
            }
        }
        if (stale is not null)
        {
            foreach (var r in stale)
            {
                _roundSentAt.Remove(r);
            }
        }
    }

    public bool TransferLeadership(ulong target)
    {
        if (Role != RaftRole.Leader || target == Id || !_voters.Contains(target) || !_progress.TryGetValue(target, out var pr))
        {
            return false;
        }
        Wake();
        _leadTransferee = target;
        // A TimeoutNow may be delivered late and elect the target at any time in this term: no lease reads until the term ends.
        _leaseDisabled = true;
        _electionElapsed = 0;
        if (pr.Match == _log.LastIndex)
        {
            Send(new Message { Type = MessageType.TimeoutNow, To = target, Term = Term });
        }
        else
        {
            SendAppend(target, sendIfEmpty: true);
        }
        return true;
    }

    public PeerProgress? GetProgress(ulong peer) =>
        Role == RaftRole.Leader && _progress.TryGetValue(peer, out var pr)
            ? new PeerProgress(peer == Id ? _log.LastIndex : pr.Match, pr.Next, pr.IsLearner, pr.RecentActive)
            : null;
}
