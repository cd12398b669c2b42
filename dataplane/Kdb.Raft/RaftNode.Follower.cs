namespace Kdb.Raft;

internal sealed partial class RaftNode
{
    /// <summary>Snapshot chunks carry <c>SnapshotChecksumPresent | CRC32C</c> of the whole data in <see cref="Message.Context"/>.</summary>
    internal const ulong SnapshotChecksumPresent = 1UL << 32;

    // The snapshot being received: chunks go to a sink (a staging file when the host configured one) as they arrive, so a
    // follower holds at most one chunk of it in memory; the checksum runs along.
    private SnapshotMetadata? _receiving;
    private ISnapshotSink? _receiveSink;
    private ulong _receivingFrom;
    private ulong _receiveExpected;
    private long _received;
    private uint _receiveCrc;
    // A restart from offset 0 was asked for: chunks of the old stream still in flight are answered "0 bytes" instead of
    // each asking again (every ask makes the leader resend a window from the start).
    private bool _restartAsked;

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
        if (m.Index == 0 && m.Snapshot is { Index: 0, Conf.Voters.Length: > 0 } start)
        {
            LearnBootstrap(start.Conf.Voters);
        }
        if (_log.MaybeAppend(m.Index, m.LogTerm, m.Commit, m.Entries, out var lastNew))
        {
            if (m.Entries.Length > 0 || m.Context != Message.NoReply)
            {
                Send(new Message { Type = MessageType.AppendResponse, To = m.From, Term = Term, Index = lastNew });
            }
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

    /// <summary>
    /// A joining replica (no bootstrap membership, nothing in its log, no snapshot) takes the group's initial membership from
    /// its leader before replaying the log from index 1. Without it, replaying only the membership changes would leave the
    /// joiner believing it is the group's only voter once promoted: it would then elect itself alone (a second leader) as
    /// soon as it stopped hearing from the real one.
    /// </summary>
    private void LearnBootstrap(ulong[] voters)
    {
        if (_bootstrap.Length > 0 || _snapshot is not null || _pendingSnapshotToApply is not null || _log.LastIndex > 0)
        {
            return;
        }
        _bootstrap = [.. voters];
        _bootstrapLearned = _bootstrap;
        ApplyConfState(new ConfState(_bootstrap, []));
    }

    private void HandleSnapshotChunk(Message m)
    {
        var meta = m.Snapshot!;
        if (meta.Index <= _log.Committed)
        {
            DropReceive();
            Send(new Message { Type = MessageType.AppendResponse, To = m.From, Term = Term, Index = _log.Committed });
            return;
        }
        // Another snapshot, another sender or other bytes (a new leader may pack the same index differently): a new stream.
        if (_receiving is null || _receiving.Index != meta.Index || _receiving.Term != meta.Term || _receivingFrom != m.From
            || _receiveExpected != m.Context)
        {
            DropReceive();
            if (m.SnapshotOffset != 0)
            {
                // We lost earlier chunks (restart or a newer snapshot): ask for the stream from the start.
                if (_restartAsked)
                {
                    // Asked already; if that answer was lost, the leader restarts on its own once it sees no progress.
                    Send(new Message { Type = MessageType.SnapshotResponse, To = m.From, Term = Term, Index = meta.Index, Context = 0 });
                    return;
                }
                RejectSnapshot(m, meta);
                return;
            }
            _restartAsked = false;
            _receiveSink = _config.SnapshotSink?.Invoke(meta) ?? new MemorySnapshotSink();
            _receiving = meta;
            _receivingFrom = m.From;
            _receiveExpected = m.Context;
            _received = 0;
            _receiveCrc = Crc32C.Initial;
        }
        if (m.SnapshotOffset == _received)
        {
            var chunk = m.SnapshotChunk.Span;
            try
            {
                _receiveSink!.Write(chunk);
            }
            catch (IOException)
            {
                // The staging file could not take it (disk full, I/O error): start over later; the old state stays.
                DropReceive();
                RejectSnapshot(m, meta);
                return;
            }
            _received += chunk.Length;
            _receiveCrc = Crc32C.Update(_receiveCrc, chunk);
            if (m.SnapshotDone)
            {
                CompleteSnapshot(m, meta);
                return;
            }
        }
        Send(new Message { Type = MessageType.SnapshotResponse, To = m.From, Term = Term, Index = meta.Index, Context = (ulong)_received });
    }

    private void CompleteSnapshot(Message m, SnapshotMetadata meta)
    {
        var checksum = Crc32C.Finish(_receiveCrc);
        if ((_receiveExpected & SnapshotChecksumPresent) != 0 && (uint)_receiveExpected != checksum)
        {
            // Corrupted or truncated on the way: nothing is installed; the leader sends the whole snapshot again.
            DropReceive();
            RejectSnapshot(m, meta);
            return;
        }
        if (_log.MatchTerm(meta.Index, meta.Term))
        {
            // We already have the entries; only the commit index moves.
            DropReceive();
            _log.CommitTo(meta.Index);
            Send(new Message { Type = MessageType.AppendResponse, To = m.From, Term = Term, Index = _log.LastIndex });
            return;
        }
        var sink = _receiveSink!;
        ReadOnlyMemory<byte> data;
        string? path;
        try
        {
            data = sink.Complete(out path);
        }
        catch (IOException)
        {
            DropReceive();
            RejectSnapshot(m, meta);
            return;
        }
        _receiveSink = null;
        _receiving = null;
        sink.Dispose();
        _log.Reset(meta.Index, meta.Term);
        ApplyConfState(meta.Conf);
        _pendingSnapshotToApply = meta;
        _pendingSnapshotData = data;
        _pendingSnapshotFile = path;
        _pendingSnapshotChecksum = checksum;
        Send(new Message { Type = MessageType.AppendResponse, To = m.From, Term = Term, Index = _log.LastIndex });
    }

    private void RejectSnapshot(Message m, SnapshotMetadata meta)
    {
        _restartAsked = true;
        Send(new Message { Type = MessageType.SnapshotResponse, To = m.From, Term = Term, Index = meta.Index, Context = 0, Reject = true });
    }

    private void DropReceive()
    {
        _receiveSink?.Dispose();
        _receiveSink = null;
        _receiving = null;
        _received = 0;
    }

    /// <summary>The default sink: the snapshot in memory.</summary>
    private sealed class MemorySnapshotSink : ISnapshotSink
    {
        private readonly MemoryStream _buffer = new();

        public void Write(ReadOnlySpan<byte> chunk) => _buffer.Write(chunk);

        public ReadOnlyMemory<byte> Complete(out string? path)
        {
            path = null;
            return _buffer.ToArray();
        }

        public void Dispose() => _buffer.Dispose();
    }
}
