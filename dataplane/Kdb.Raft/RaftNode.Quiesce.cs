namespace Kdb.Raft;

/// <summary>Quiescence: an idle group sends nothing and ticks for free until something needs it.</summary>
internal sealed partial class RaftNode
{
    public void ReportUnreachable(ulong peer)
    {
        if (_quiesced && (Role == RaftRole.Leader ? _progress.ContainsKey(peer) : peer == Leader))
        {
            Wake();
        }
    }

    private void Wake()
    {
        if (!_quiesced)
        {
            return;
        }
        _quiesced = false;
        _idleTicks = 0;
        if (Role == RaftRole.Leader)
        {
            // What we heard before going quiet says nothing about now: CheckQuorum starts a fresh period and heartbeats resume at once.
            _electionElapsed = 0;
            _heartbeatElapsed = _config.HeartbeatTicks;
            foreach (var (id, pr) in _progress)
            {
                pr.RecentActive = id == Id;
            }
        }
    }

    /// <summary>A quiet leader keeps sleeping through the acknowledgements of its last heartbeat; anything else needs it awake.</summary>
    private bool WakesQuiescedNode(Message m) =>
        Role != RaftRole.Leader
        || m.Term != Term
        || !(m.Type == MessageType.HeartbeatResponse || (m.Type == MessageType.AppendResponse && !m.Reject));

    /// <summary>Counts idle leader ticks; returns true when the group went quiet on this tick (the quiesce heartbeat is queued).</summary>
    private bool MaybeQuiesce()
    {
        if (_config.QuiesceAfterTicks <= 0)
        {
            return false;
        }
        if (!IsIdle())
        {
            _idleTicks = 0;
            return false;
        }
        if (++_idleTicks < _config.QuiesceAfterTicks)
        {
            return false;
        }
        BroadcastHeartbeat(_now, quiesce: true);
        _quiesced = true;
        return true;
    }

    /// <summary>Nothing to replicate, commit, apply, read or change: every member holds the whole log and will learn the commit index from the quiesce heartbeat.</summary>
    private bool IsIdle()
    {
        var last = _log.LastIndex;
        if (_log.Applied != last || _log.Stabled != last || _pendingReads.Count > 0 || _leadTransferee != 0 || _pendingConfIndex > _log.Applied)
        {
            return false;
        }
        foreach (var (id, pr) in _progress)
        {
            if (id != Id && (pr.Match != last || pr.State != ProgressState.Replicate))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Follower side: goes quiet only when fully caught up with the quiesce heartbeat of its own leader.</summary>
    private void MaybeFollowQuiesce(Message heartbeat)
    {
        if (heartbeat.Quiesce && heartbeat.From == Leader && _log.Committed == heartbeat.Commit && _log.LastIndex == heartbeat.Commit)
        {
            _quiesced = true;
        }
    }
}
