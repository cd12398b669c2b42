namespace Kdb.Raft.Tests;

/// <summary><see cref="RaftConfig.DeferCommitOnlyAppends"/>: while entries past it are in flight, a commit advance alone sends
/// nothing; it rides on the next append with entries, a read index answer to that follower, the advance that drains what is in
/// flight, or the next tick. With nothing in flight it is sent at once.</summary>
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

    /// <summary>Delivers the leader's appends of <paramref name="rd"/> to the followers and returns their acknowledgements.</summary>
    private static List<Message> Deliver(TestCluster c, Ready rd)
    {
        var acks = new List<Message>();
        foreach (var m in Appends(rd))
        {
            var follower = c.Nodes[m.To];
            follower.Step(m);
            var frd = follower.GetReady();
            acks.AddRange(frd.Messages.Where(a => a.Type == MessageType.AppendResponse));
            follower.Advance(frd);
        }
        return acks;
    }

    /// <summary>Feeds acknowledgements to the leader: returns its next round.</summary>
    private static Ready Acknowledge(IRaftNode leader, List<Message> acks)
    {
        Assert.Equal(2, acks.Count);
        foreach (var ack in acks)
        {
            leader.Step(ack);
        }
        var rd = leader.GetReady();
        leader.Advance(rd);
        return rd;
    }

    private static Ready Propose(IRaftNode leader, byte value, out ProposeResult proposal)
    {
        proposal = leader.Propose(new byte[] { value });
        var rd = leader.GetReady();
        leader.Advance(rd);
        return rd;
    }

    /// <summary>Replicates one proposal with nothing else in flight: returns the leader's commit round.</summary>
    private static (Ready Commit, ProposeResult Proposal) ReplicateOne(TestCluster c, IRaftNode leader, byte value)
    {
        var acks = Deliver(c, Propose(leader, value, out var r));
        return (Acknowledge(leader, acks), r);
    }

    /// <summary>
    /// Two proposals in flight; the first is acknowledged and commits while the followers' acknowledgements of the second are
    /// still on their way (returned, not yet fed to the leader).
    /// </summary>
    private static (Ready Commit, ProposeResult First, ProposeResult Second, List<Message> SecondAcks) Pipelined(TestCluster c, IRaftNode leader)
    {
        var firstAcks = Deliver(c, Propose(leader, 1, out var first));
        var secondAcks = Deliver(c, Propose(leader, 2, out var second));
        return (Acknowledge(leader, firstAcks), first, second, secondAcks);
    }

    [Fact]
    public void CommitAdvance_WithNothingInFlight_IsSentAtOnce()
    {
        var (c, leader) = Elected();
        var (commit, r) = ReplicateOne(c, leader, 1);
        var appends = Appends(commit);
        Assert.Equal(2, appends.Count);
        Assert.All(appends, m =>
        {
            Assert.Empty(m.Entries);
            Assert.Equal(r.Index, m.Commit);
        });
    }

    [Fact]
    public void CommitAdvance_WhileEntriesAreInFlight_SendsNoAppend_ButTheLeaderApplies()
    {
        var (c, leader) = Elected();
        var (commit, first, _, _) = Pipelined(c, leader);
        Assert.Contains(commit.CommittedEntries, e => e.Index == first.Index);
        Assert.Empty(Appends(commit));
        Assert.All(c.Nodes.Values.Where(n => n.Id != leader.Id), f => Assert.True(f.CommitIndex < first.Index));
    }

    [Fact]
    public void CommitAdvance_RidesOnTheNextAppendWithEntries()
    {
        var (c, leader) = Elected();
        var (_, first, _, _) = Pipelined(c, leader);
        var rd = Propose(leader, 3, out var third);
        var appends = Appends(rd);
        Assert.Equal(2, appends.Count);
        Assert.All(appends, m => Assert.Equal(first.Index, m.Commit));
        Assert.All(appends, m => Assert.Contains(m.Entries, e => e.Index == third.Index));
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
    public void CommitAdvance_ThatDrainsTheEntriesInFlight_IsSentAtOnce()
    {
        var (c, leader) = Elected();
        var (_, first, second, secondAcks) = Pipelined(c, leader);
        var commit = Acknowledge(leader, secondAcks);
        var appends = Appends(commit);
        Assert.Equal(2, appends.Count);
        foreach (var m in appends)
        {
            Assert.Empty(m.Entries);
            Assert.Equal(second.Index, m.Commit);
            var follower = c.Nodes[m.To];
            follower.Step(m);
            var frd = follower.GetReady();
            Assert.Contains(frd.CommittedEntries, e => e.Index == first.Index);
            Assert.Contains(frd.CommittedEntries, e => e.Index == second.Index);
            follower.Advance(frd);
        }
    }

    [Fact]
    public void CommitAdvance_ReachesFollowersOnTheNextTick()
    {
        var (c, leader) = Elected();
        // The acknowledgements of the second proposal are lost: only the tick tells the followers of the first's commit.
        var (_, first, _, _) = Pipelined(c, leader);
        leader.Tick();
        var rd = leader.GetReady();
        leader.Advance(rd);
        var appends = Appends(rd);
        Assert.Equal(2, appends.Count);
        foreach (var m in appends)
        {
            Assert.Empty(m.Entries);
            Assert.Equal(first.Index, m.Commit);
            var follower = c.Nodes[m.To];
            follower.Step(m);
            var frd = follower.GetReady();
            Assert.Contains(frd.CommittedEntries, e => e.Index == first.Index);
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
        var (_, r, _, _) = Pipelined(c, leader);
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
