namespace Kdb.Raft.Tests;

/// <summary><see cref="RaftConfig.DeferCommitOnlyAppends"/>: a commit advance alone sends nothing; it rides on the next append
/// with entries, a read index answer to that follower, or the next tick.</summary>
public sealed class DeferredCommitTests
{
    private static (TestCluster Cluster, IRaftNode Leader) Elected()
    {
        var c = new TestCluster(3, cfg => cfg with { AsyncLeaderAppend = true, DeferCommitOnlyAppends = true, HeartbeatTicks = 5 });
        c.TickAll(60);
        c.Settle();
        return (c, c.Leader());
    }

    private static List<Message> Appends(Ready rd) =>
        [.. rd.EarlyMessages.Concat(rd.Messages).Where(m => m.Type == MessageType.Append)];

    /// <summary>Replicates one proposal and feeds both acknowledgements back: returns the leader's commit round.</summary>
    private static (Ready Commit, ProposeResult Proposal) ReplicateOne(TestCluster c, IRaftNode leader, byte value)
    {
        var r = leader.Propose(new byte[] { value });
        var rd = leader.GetReady();
        leader.Advance(rd);
        var acks = new List<Message>();
        foreach (var m in Appends(rd))
        {
            var follower = c.Nodes[m.To];
            follower.Step(m);
            var frd = follower.GetReady();
            acks.AddRange(frd.Messages.Where(a => a.Type == MessageType.AppendResponse));
            follower.Advance(frd);
        }
        Assert.Equal(2, acks.Count);
        foreach (var ack in acks)
        {
            leader.Step(ack);
        }
        var commit = leader.GetReady();
        leader.Advance(commit);
        return (commit, r);
    }

    [Fact]
    public void CommitAdvance_Alone_SendsNoAppend_ButTheLeaderApplies()
    {
        var (c, leader) = Elected();
        var (commit, r) = ReplicateOne(c, leader, 1);
        Assert.Contains(commit.CommittedEntries, e => e.Index == r.Index);
        Assert.Empty(Appends(commit));
        Assert.All(c.Nodes.Values.Where(n => n.Id != leader.Id), f => Assert.True(f.CommitIndex < r.Index));
    }

    [Fact]
    public void CommitAdvance_RidesOnTheNextAppendWithEntries()
    {
        var (c, leader) = Elected();
        var (_, first) = ReplicateOne(c, leader, 1);
        var second = leader.Propose(new byte[] { 2 });
        var rd = leader.GetReady();
        leader.Advance(rd);
        var appends = Appends(rd);
        Assert.Equal(2, appends.Count);
        Assert.All(appends, m => Assert.Equal(first.Index, m.Commit));
        Assert.All(appends, m => Assert.Contains(m.Entries, e => e.Index == second.Index));
        foreach (var m in appends)
        {
            var follower = c.Nodes[m.To];
            follower.Step(m);
            var frd = follower.GetReady();
            Assert.Contains(frd.CommittedEntries, e => e.Index == first.Index);
            follower.Advance(frd);
        }
    }

    [Fact]
    public void CommitAdvance_ReachesFollowersOnTheNextTick()
    {
        var (c, leader) = Elected();
        var (_, r) = ReplicateOne(c, leader, 1);
        leader.Tick();
        var rd = leader.GetReady();
        leader.Advance(rd);
        var appends = Appends(rd);
        Assert.Equal(2, appends.Count);
        foreach (var m in appends)
        {
            Assert.Empty(m.Entries);
            Assert.Equal(r.Index, m.Commit);
            var follower = c.Nodes[m.To];
            follower.Step(m);
            var frd = follower.GetReady();
            Assert.Contains(frd.CommittedEntries, e => e.Index == r.Index);
            follower.Advance(frd);
        }
        // Sent once: the next tick has nothing more to tell.
        leader.Tick();
        Assert.Empty(Appends(leader.GetReady()));
    }

    [Fact]
    public void FollowerRead_GetsTheCommitIndexWithTheReadAnswer()
    {
        var (c, leader) = Elected();
        var (_, r) = ReplicateOne(c, leader, 1);
        var follower = c.Nodes.Values.First(n => n.Id != leader.Id);
        Assert.Equal(ReadIndexStatus.Pending, follower.ReadIndex(42));
        var frd = follower.GetReady();
        follower.Advance(frd);
        leader.Step(frd.Messages.Single(m => m.Type == MessageType.ReadIndex));
        // Without a lease the leader confirms with a heartbeat round first; the other follower's answer makes the quorum (a
        // heartbeat would carry the commit index to the reading follower too).
        var hb = leader.GetReady();
        leader.Advance(hb);
        foreach (var m in hb.EarlyMessages.Concat(hb.Messages).Where(m => m.Type == MessageType.Heartbeat && m.To != follower.Id))
        {
            var f = c.Nodes[m.To];
            f.Step(m);
            var answer = f.GetReady();
            f.Advance(answer);
            foreach (var a in answer.Messages.Where(a => a.Type == MessageType.HeartbeatResponse))
            {
                leader.Step(a);
            }
        }
        var rd = leader.GetReady();
        leader.Advance(rd);
        var toFollower = rd.EarlyMessages.Concat(rd.Messages).Where(m => m.To == follower.Id).ToList();
        Assert.Contains(toFollower, m => m.Type == MessageType.ReadIndexResponse && m.Index >= r.Index);
        foreach (var m in toFollower)
        {
            follower.Step(m);
        }
        var applied = follower.GetReady();
        Assert.Contains(applied.ReadStates, s => s.Context == 42 && s.Index >= r.Index);
        Assert.Contains(applied.CommittedEntries, e => e.Index == r.Index);
        follower.Advance(applied);
        Assert.True(follower.AppliedIndex >= r.Index);
    }
}
