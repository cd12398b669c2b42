namespace Kdb.Raft;

internal sealed partial class RaftNode
{
    private SnapshotMetadata? _receiving;
    private MemoryStream? _receiveBuffer;

    private void StartCampaign(bool preVote, bool transfer)
    {
        ulong voteTerm;
        MessageType type;
        if (preVote)
        {
            // A pre-candidate keeps its term and vote: losing a pre-vote disturbs nobody.
            Role = RaftRole.PreCandidate;
            Leader = 0;
            _votes.Clear();
            voteTerm = Term + 1;
            type = MessageType.PreVote;
        }
        else
        {
            ResetTerm(Term + 1);
            Role = RaftRole.Candidate;
            Vote = Id;
            voteTerm = Term;
            type = MessageType.Vote;
        }
        _votes[Id] = true;
        if (CheckElectionWon())
        {
            return;
        }
        foreach (var v in _voters)
        {
            if (v == Id)
            {
                continue;
            }
            Send(new Message
            {
                Type = type,
                To = v,
                Term = voteTerm,
                Index = _log.LastIndex,
                LogTerm = _log.LastTerm,
                Context = transfer ? 1UL : 0UL,
            });
        }
    }

    /// <summary>Returns true if the election (or pre-vote) has been decided.</summary>
    private bool CheckElectionWon()
    {
        var granted = 0;
        var rejected = 0;
        foreach (var (id, g) in _votes)
        {
            if (!_voters.Contains(id))
            {
                continue;
            }
            if (g)
            {
                granted++;
            }
            else
            {
                rejected++;
            }
        }
        if (granted >= Quorum)
        {
            if (Role == RaftRole.PreCandidate)
            {
                StartCampaign(preVote: false, transfer: false);
            }
            else
            {
                BecomeLeader();
            }
            return true;
        }
        if (rejected >= Quorum || rejected > _voters.Count - Quorum)
        {
            BecomeFollower(Term, 0);
            return true;
        }
        return false;
    }

    private void StepCandidate(Message m)
    {
        var expected = Role == RaftRole.PreCandidate ? MessageType.PreVoteResponse : MessageType.VoteResponse;
        switch (m.Type)
        {
            case MessageType.Append:
            case MessageType.Heartbeat:
            case MessageType.Snapshot:
                BecomeFollower(m.Term, m.From);
                StepFollower(m);
                return;
        }
        if (m.Type == expected)
        {
            _votes.TryAdd(m.From, !m.Reject);
            CheckElectionWon();
        }
    }

    private void StepFollower(Message m)
    {
        switch (m.Type)
        {
            case MessageType.Append:
                _electionElapsed = 0;
                Leader = m.From;
                HandleAppend(m);
                break;
            case MessageType.Heartbeat:
                _electionElapsed = 0;
                Leader = m.From;
                _log.CommitTo(Math.Min(m.Commit, _log.LastIndex));
                MaybeFollowQuiesce(m);
                Send(new Message { Type = MessageType.HeartbeatResponse, To = m.From, Term = Term, Context = m.Context });
                break;
            case MessageType.Snapshot:
                _electionElapsed = 0;
                Leader = m.From;
                HandleSnapshotChunk(m);
                break;
            case MessageType.TimeoutNow:
                Hup(transfer: true);
                break;
            case MessageType.ReadIndexResponse:
                _readStates.Add(new ReadState(m.Context, m.Index));
                break;
        }
    }

    private void HandleAppend(Message m)
    {
        if (m.Index < _log.Committed)
        {
            Send(new Message { Type = MessageType.AppendResponse, To = m.From, Term = Term, Index = _log.Committed });
            return;
        }
        if (_log.MaybeAppend(m.Index, m.LogTerm, m.Commit, m.Entries, out var lastNew))
        {
            Send(new Message { Type = MessageType.AppendResponse, To = m.From, Term = Term, Index = lastNew });
            return;
        }
        var hint = _log.FindConflictByTerm(m.Index, m.LogTerm);
        Send(new Message
        {
            Type = MessageType.AppendResponse,
            To = m.From,
            Term = Term,
            Index = m.Index,
            Reject = true,
            RejectHint = hint,
        });
    }

    private void HandleSnapshotChunk(Message m)
    {
        var meta = m.Snapshot!;
        if (meta.Index <= _log.Committed)
        {
            _receiving = null;
            _receiveBuffer = null;
            Send(new Message { Type = MessageType.AppendResponse, To = m.From, Term = Term, Index = _log.Committed });
            return;
        }
        if (_receiving is null || _receiving.Index != meta.Index || _receiving.Term != meta.Term)
        {
            if (m.SnapshotOffset != 0)
            {
                // We lost earlier chunks (restart or a newer snapshot): ask for the stream from the start.
                Send(new Message { Type = MessageType.SnapshotResponse, To = m.From, Term = Term, Index = meta.Index, Context = 0, Reject = true });
                return;
            }
            _receiving = meta;
            _receiveBuffer = new MemoryStream();
        }
        var buffer = _receiveBuffer!;
        if (m.SnapshotOffset == buffer.Length)
        {
            buffer.Write(m.SnapshotChunk.Span);
            if (m.SnapshotDone)
            {
                var data = buffer.ToArray();
                _receiving = null;
                _receiveBuffer = null;
                InstallSnapshot(meta, data);
                Send(new Message { Type = MessageType.AppendResponse, To = m.From, Term = Term, Index = _log.LastIndex });
                return;
            }
        }
        Send(new Message { Type = MessageType.SnapshotResponse, To = m.From, Term = Term, Index = meta.Index, Context = (ulong)buffer.Length });
    }

    private void InstallSnapshot(SnapshotMetadata meta, byte[] data)
    {
        if (_log.MatchTerm(meta.Index, meta.Term))
        {
            // We already have the entries; only the commit index moves.
            _log.CommitTo(meta.Index);
            return;
        }
        _log.Reset(meta.Index, meta.Term);
        ApplyConfState(meta.Conf);
        _pendingSnapshotToApply = meta;
        _pendingSnapshotData = data;
    }
}
