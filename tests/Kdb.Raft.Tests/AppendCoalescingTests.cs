namespace Kdb.Raft.Tests;

/// <summary>A leader sends each follower one append per Ready, however many proposals and commit advances came since the
/// last one (each message costs both sides a decode, a step and a reply).</summary>
public sealed class AppendCoalescingTests
{
    private static (TestCluster Cluster, IRaftNode Leader) Elected()
    {
        var c = new TestCluster(3, cfg => cfg with { AsyncLeaderAppend = true });
        c.TickAll(30);
        return (c, c.Leader());
    }

    private static List<Message> Appends(Ready rd) =>
        [.. rd.EarlyMessages.Concat(rd.Messages).Where(m => m.Type == MessageType.Append)];

    [Fact]
    public void GetReady_ManyProposalsInOneRound_OneAppendPerFollowerCarryingAll()
    {
        var (c, leader) = Elected();
        var indexes = Enumerable.Range(0, 10).Select(i => leader.Propose(new byte[] { (byte)i }).Index).ToArray();
        Assert.True(leader.HasReady);
        var rd = leader.GetReady();
        var appends = Appends(rd);
        Assert.Equal(2, appends.Count);
        Assert.Equal(2, appends.Select(m => m.To).Distinct().Count());
        Assert.All(appends, m => Assert.Equal(indexes, m.Entries.Select(e => e.Index)));
        leader.Advance(rd);
        foreach (var m in appends)
        {
            c.Nodes[m.To].Step(m);
        }
        c.Settle();
        Assert.All(c.Applied.Values, applied => Assert.Equal(indexes, applied.Select(e => e.Index).Where(indexes.Contains)));
    }

    [Fact]
    public void GetReady_TwoAcknowledgementsAdvanceCommit_EachFollowerHearsTheCommitOnce()
    {
        var (c, leader) = Elected();
        var r = leader.Propose(new byte[] { 7 });
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
        Assert.True(leader.HasReady);
        var commit = leader.GetReady();
        Assert.Contains(commit.CommittedEntries, e => e.Index == r.Index);
        var appends = Appends(commit);
        Assert.Equal(2, appends.Count);
        Assert.All(appends, m => Assert.Equal(r.Index, m.Commit));
        leader.Advance(commit);
        // Nothing new to say: no further (empty) appends.
        Assert.False(leader.HasReady);
    }

    [Fact]
    public void GetReady_ProposalAfterAnAcknowledgementInTheSameRound_NoExtraEmptyAppend()
    {
        var (c, leader) = Elected();
        var first = leader.Propose(new byte[] { 1 });
        var rd = leader.GetReady();
        leader.Advance(rd);
        var toFollower = Appends(rd)[0];
        var follower = c.Nodes[toFollower.To];
        follower.Step(toFollower);
        var frd = follower.GetReady();
        follower.Advance(frd);
        // The acknowledgement commits the first entry; a second proposal arrives in the same round.
        leader.Step(frd.Messages.Single(m => m.Type == MessageType.AppendResponse));
        var second = leader.Propose(new byte[] { 2 });
        var next = leader.GetReady();
        var appends = Appends(next);
        Assert.Equal(2, appends.Count);
        Assert.All(appends, m => Assert.Equal(first.Index, m.Commit));
        Assert.All(appends, m => Assert.Contains(m.Entries, e => e.Index == second.Index));
    }

    [Fact]
    public void GetReady_LeaderSteppedDownBeforeTheRound_OwedAppendsAreNotSent()
    {
        var (_, leader) = Elected();
        leader.Propose(new byte[] { 3 });
        // A higher term arrives before the host asks for the round: a follower sends no appends.
        leader.Step(new Message { Type = MessageType.Heartbeat, GroupId = 9, From = leader.Id % 3 + 1, To = leader.Id, Term = leader.Term + 1 });
        Assert.Equal(RaftRole.Follower, leader.Role);
        var rd = leader.GetReady();
        Assert.Empty(Appends(rd));
    }

    [Fact]
    public void CommitOnlyAppend_ToACaughtUpFollower_IsNotAnswered_AndTheEntryApplies()
    {
        var (c, leader) = Elected();
        var r = leader.Propose(new byte[] { 5 });
        var rd = leader.GetReady();
        leader.Advance(rd);
        var acks = new List<Message>();
        foreach (var m in Appends(rd))
        {
            Assert.Equal(0UL, m.Context);
            var follower = c.Nodes[m.To];
            follower.Step(m);
            var frd = follower.GetReady();
            acks.AddRange(frd.Messages.Where(a => a.Type == MessageType.AppendResponse));
            follower.Advance(frd);
        }
        foreach (var ack in acks)
        {
            leader.Step(ack);
        }
        var commit = leader.GetReady();
        leader.Advance(commit);
        var commitOnly = Appends(commit);
        Assert.Equal(2, commitOnly.Count);
        foreach (var m in commitOnly)
        {
            Assert.Empty(m.Entries);
            Assert.Equal(Message.NoReply, m.Context);
            var follower = c.Nodes[m.To];
            follower.Step(m);
            var frd = follower.GetReady();
            Assert.DoesNotContain(frd.Messages, a => a.Type == MessageType.AppendResponse);
            Assert.Contains(frd.CommittedEntries, e => e.Index == r.Index);
            follower.Advance(frd);
        }
    }

    [Fact]
    public void CommitOnlyAppend_ThatTheFollowerRejects_IsStillAnswered()
    {
        var (c, leader) = Elected();
        var follower = c.Nodes.Values.First(n => n.Id != leader.Id);
        // A commit-only append claiming an entry the follower never received: the rejection must reach the leader.
        var bogus = new Message
        {
            Type = MessageType.Append,
            GroupId = 9,
            From = leader.Id,
            To = follower.Id,
            Term = leader.Term,
            Index = follower.LastIndex + 5,
            LogTerm = leader.Term,
            Context = Message.NoReply,
        };
        follower.Step(bogus);
        var frd = follower.GetReady();
        Assert.Contains(frd.Messages, a => a.Type == MessageType.AppendResponse && a.Reject);
        follower.Advance(frd);
    }
}
