namespace Kdb.Raft.Tests;

/// <summary>The two opt-ins: a leader's appends leaving before its own fsync, and idle groups going quiet.</summary>
public sealed class AsyncAppendAndQuiesceTests
{
    private static IRaftNode ElectSingleVoter(bool asyncAppend)
    {
        var node = RaftNodeFactory.Create(new RaftConfig { Id = 1, GroupId = 3, BootstrapVoters = [1], AsyncLeaderAppend = asyncAppend });
        node.Campaign();
        while (node.HasReady)
        {
            node.Advance(node.GetReady());
        }
        Assert.Equal(RaftRole.Leader, node.Role);
        return node;
    }

    [Fact]
    public void GetReady_DefaultConfig_NoEarlyMessagesAndLeaderCountsItsEntriesAtOnce()
    {
        var leader = ElectSingleVoter(asyncAppend: false);
        var r = leader.Propose(new byte[] { 1 });
        var rd = leader.GetReady();
        Assert.Empty(rd.EarlyMessages);
        Assert.Contains(rd.Entries, e => e.Index == r.Index);
        Assert.Contains(rd.CommittedEntries, e => e.Index == r.Index);
    }

    [Fact]
    public void Advance_AsyncLeaderAppend_LeaderCountsItsOwnEntryOnlyOncePersisted()
    {
        var leader = ElectSingleVoter(asyncAppend: true);
        var r = leader.Propose(new byte[] { 1 });
        var rd = leader.GetReady();
        Assert.Contains(rd.Entries, e => e.Index == r.Index);
        Assert.DoesNotContain(rd.CommittedEntries, e => e.Index == r.Index);
        Assert.True(rd.MustSync);
        leader.Advance(rd);
        Assert.True(leader.HasReady);
        var next = leader.GetReady();
        Assert.Contains(next.CommittedEntries, e => e.Index == r.Index);
        Assert.Empty(next.Entries);
    }

    [Fact]
    public void GetReady_AsyncLeaderAppend_OnlyLeaderAppendsAndHeartbeatsAreEarly()
    {
        var c = new TestCluster(3, cfg => cfg with { AsyncLeaderAppend = true });
        c.TickAll(30);
        var leader = c.Leader();
        var r = leader.Propose(new byte[] { 5 });
        var rd = leader.GetReady();
        Assert.Equal(2, rd.EarlyMessages.Count(m => m.Type == MessageType.Append && m.Entries.Any(e => e.Index == r.Index)));
        Assert.DoesNotContain(rd.Messages, m => m.Type == MessageType.Append);
        var follower = c.Nodes[rd.EarlyMessages[0].To];
        leader.Advance(rd);
        follower.Step(rd.EarlyMessages[0]);
        var frd = follower.GetReady();
        // A follower acknowledges only what it has persisted: its responses wait for the fsync.
        Assert.Empty(frd.EarlyMessages);
        Assert.Contains(frd.Messages, m => m.Type == MessageType.AppendResponse && m.Index == r.Index);
        follower.Advance(frd);
        foreach (var m in frd.Messages.Concat(rd.EarlyMessages.Skip(1)))
        {
            c.Nodes[m.To].Step(m);
        }
        c.Settle();
        Assert.All(c.Applied.Values, applied => Assert.Contains(applied, e => e.Index == r.Index));
    }

    [Fact]
    public void GetReady_AsyncLeaderAppend_CandidateVotesWaitForPersistence()
    {
        var c = new TestCluster(3, cfg => cfg with { AsyncLeaderAppend = true });
        var n = c.Nodes[1];
        n.Campaign();
        var rd = n.GetReady();
        Assert.Empty(rd.EarlyMessages);
        Assert.Equal(2, rd.Messages.Count(m => m.Type == MessageType.Vote));
        Assert.True(rd.MustSync);
    }

    private static TestCluster QuiescedCluster()
    {
        var c = new TestCluster(3, cfg => cfg with { QuiesceAfterTicks = 3 });
        c.TickAll(30);
        c.Leader().Propose(new byte[] { 1 });
        c.Settle();
        c.TickAll(6);
        Assert.All(c.Nodes.Values, n => Assert.True(n.IsQuiesced, $"node {n.Id} ({n.Role}) is not quiesced"));
        return c;
    }

    [Fact]
    public void Tick_IdleGroup_QuiescesAndSendsNothing()
    {
        var c = QuiescedCluster();
        var sent = c.Sent.Count;
        var leader = c.Leader();
        var term = leader.Term;
        c.TickAll(100);
        Assert.Equal(sent, c.Sent.Count);
        Assert.Equal(term, leader.Term);
        Assert.All(c.Nodes.Values, n => Assert.Equal(leader.Id, n.Leader));
    }

    [Fact]
    public void Propose_QuiescedGroup_WakesCommitsEverywhereAndQuiescesAgain()
    {
        var c = QuiescedCluster();
        var leader = c.Leader();
        var r = leader.Propose(new byte[] { 9 });
        Assert.True(r.IsAccepted);
        Assert.False(leader.IsQuiesced);
        c.Settle();
        Assert.All(c.Nodes.Values, n => Assert.False(n.IsQuiesced));
        Assert.All(c.Applied.Values, applied => Assert.Contains(applied, e => e.Index == r.Index));
        c.TickAll(6);
        Assert.All(c.Nodes.Values, n => Assert.True(n.IsQuiesced));
    }

    [Fact]
    public void ReadIndex_OnQuiescedFollower_ServedThroughWokenLeader()
    {
        var c = QuiescedCluster();
        var leader = c.Leader();
        var follower = c.Nodes.Values.First(n => n.Id != leader.Id);
        Assert.Equal(ReadIndexStatus.Pending, follower.ReadIndex(31));
        c.Settle();
        c.TickAll(2);
        var rs = Assert.Single(c.Reads[follower.Id]);
        Assert.Equal(leader.CommitIndex, rs.Index);
    }

    [Fact]
    public void ReportUnreachable_QuiescedFollowersOfDeadLeader_ElectANewLeader()
    {
        var c = QuiescedCluster();
        var old = c.Leader();
        c.Down.Add(old.Id);
        c.TickAll(60);
        // Quiet followers do not notice a dead leader on their own: that is the host failure detector's job.
        Assert.DoesNotContain(c.Nodes.Values, n => n.Id != old.Id && n.Role == RaftRole.Leader);
        foreach (var n in c.Nodes.Values.Where(n => n.Id != old.Id))
        {
            n.ReportUnreachable(old.Id);
            Assert.False(n.IsQuiesced);
        }
        c.TickAll(60);
        var leader = c.Leader();
        Assert.NotEqual(old.Id, leader.Id);
        Assert.True(leader.Term > old.Term);
    }

    [Fact]
    public void Step_QuiescedLeaderHearsAVoteRequest_WakesAndHeartbeats()
    {
        var c = QuiescedCluster();
        var leader = c.Leader();
        var follower = c.Nodes.Values.First(n => n.Id != leader.Id);
        var sent = c.Sent.Count;
        // A restarted member that missed the quiesce heartbeat campaigns; the leader must answer with heartbeats.
        leader.Step(new Message { Type = MessageType.PreVote, GroupId = 9, From = follower.Id, To = leader.Id, Term = leader.Term + 1, Index = leader.LastIndex, LogTerm = leader.Term });
        Assert.False(leader.IsQuiesced);
        c.TickAll(1);
        Assert.Contains(c.Sent.Skip(sent), m => m.Type == MessageType.Heartbeat && m.From == leader.Id);
        Assert.Equal(RaftRole.Leader, leader.Role);
    }
}
