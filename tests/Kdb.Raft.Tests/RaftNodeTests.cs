namespace Kdb.Raft.Tests;

public sealed class RaftNodeTests
{
    [Fact]
    public void Tick_ThreeNodes_ElectsOneLeaderAndCommitsProposals()
    {
        var c = new TestCluster(3);
        c.TickAll(30);
        var leader = c.Leader();
        var r = leader.Propose(new byte[] { 42 });
        Assert.True(r.IsAccepted);
        c.Settle();
        c.TickAll(2);
        foreach (var (_, applied) in c.Applied)
        {
            Assert.Contains(applied, e => e.Index == r.Index && e.Data.Span.SequenceEqual(new byte[] { 42 }));
        }
        Assert.All(c.Nodes.Values, n => Assert.Equal(leader.Id, n.Leader));
    }

    [Fact]
    public void Propose_LargerThanEightMiB_RefusedWithClearError()
    {
        var c = new TestCluster(1);
        c.TickAll(30);
        var leader = c.Leader();
        var r = leader.Propose(new byte[(8 << 20) + 1]);
        Assert.Equal(ProposeStatus.TooLarge, r.Status);
        Assert.Contains("chunks", r.Error, StringComparison.Ordinal);
        Assert.True(leader.Propose(new byte[8 << 20]).IsAccepted);
    }

    [Fact]
    public void Propose_OnFollower_AnswersWithLeaderId()
    {
        var c = new TestCluster(3);
        c.TickAll(30);
        var leader = c.Leader();
        var follower = c.Nodes.Values.First(n => n.Id != leader.Id);
        var r = follower.Propose(new byte[] { 1 });
        Assert.Equal(ProposeStatus.NotLeader, r.Status);
        Assert.Equal(leader.Id, r.Leader);
    }

    [Fact]
    public void ReadIndex_OnFollower_ConfirmedThroughLeader()
    {
        var c = new TestCluster(3);
        c.TickAll(30);
        var leader = c.Leader();
        leader.Propose(new byte[] { 7 });
        c.Settle();
        var follower = c.Nodes.Values.First(n => n.Id != leader.Id);
        Assert.Equal(ReadIndexStatus.Pending, follower.ReadIndex(77));
        c.Settle();
        var rs = Assert.Single(c.Reads[follower.Id]);
        Assert.Equal(77UL, rs.Context);
        Assert.Equal(leader.CommitIndex, rs.Index);
    }

    [Fact]
    public void ReadIndex_LeaderCutOffFromQuorum_NeverConfirms()
    {
        var c = new TestCluster(3);
        c.TickAll(30);
        var leader = c.Leader();
        foreach (var id in c.Nodes.Keys.Where(id => id != leader.Id))
        {
            c.Down.Add(id);
        }
        leader.ReadIndex(5);
        c.TickAll(5);
        Assert.Empty(c.Reads[leader.Id]);
    }

    [Fact]
    public void ProposeConfChange_SecondWhileFirstPending_Refused()
    {
        var c = new TestCluster(3);
        c.TickAll(30);
        var leader = c.Leader();
        Assert.True(leader.ProposeConfChange(new ConfChange(ConfChangeType.AddLearner, 4)).IsAccepted);
        Assert.Equal(ProposeStatus.ConfChangePending, leader.ProposeConfChange(new ConfChange(ConfChangeType.AddLearner, 5)).Status);
    }

    [Fact]
    public void ProposeConfChange_RemoveLastVoter_Invalid()
    {
        var c = new TestCluster(1);
        c.TickAll(30);
        var r = c.Leader().ProposeConfChange(new ConfChange(ConfChangeType.RemoveNode, 1));
        Assert.Equal(ProposeStatus.InvalidConfChange, r.Status);
        Assert.Contains("last voter", r.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void ProposeConfChange_LearnerCatchesUpThenPromoted_CountsForQuorum()
    {
        var (c, leader) = ThreeVotersWithEntries();
        c.Add(4, [1, 2, 3]);
        Assert.True(leader.ProposeConfChange(new ConfChange(ConfChangeType.AddLearner, 4)).IsAccepted);
        c.TickAll(3);
        Assert.Contains(4UL, leader.Conf.Learners);
        Assert.Equal(leader.LastIndex, leader.GetProgress(4)!.Value.Match);
        Assert.Equal(ProposeStatus.InvalidConfChange, leader.ProposeConfChange(new ConfChange(ConfChangeType.AddLearner, 4)).Status);
        Assert.True(leader.ProposeConfChange(new ConfChange(ConfChangeType.AddVoter, 4)).IsAccepted);
        c.TickAll(3);
        Assert.Contains(4UL, leader.Conf.Voters);
        Assert.Contains(4UL, c.Nodes[4].Conf.Voters);
        // With 4 voters a quorum is 3: two nodes down stall commits.
        var others = c.Nodes.Keys.Where(id => id != leader.Id).Take(2).ToList();
        others.ForEach(id => c.Down.Add(id));
        var r = leader.Propose(new byte[] { 99 });
        c.Settle();
        Assert.True(leader.CommitIndex < r.Index);
    }

    [Fact]
    public void JoiningReplica_WithoutBootstrap_LearnsTheInitialMembership_AndCannotElectItselfAlone()
    {
        var (c, leader) = ThreeVotersWithEntries();
        // As a node repair creates it: the group exists elsewhere, and this replica knows nothing of its membership.
        c.Add(4, []);
        Assert.True(leader.ProposeConfChange(new ConfChange(ConfChangeType.AddLearner, 4)).IsAccepted);
        c.TickAll(3);
        Assert.Equal(leader.LastIndex, leader.GetProgress(4)!.Value.Match);
        Assert.Equal(new ulong[] { 1, 2, 3 }, c.Nodes[4].Conf.Voters.Order());
        Assert.Equal([4UL], c.Nodes[4].Conf.Learners);
        var learned = Assert.Single(c.Bootstraps[4]);
        Assert.Equal(new ulong[] { 1, 2, 3 }, learned.Order());
        Assert.Equal([4UL], c.Bootstraps.Keys);

        Assert.True(leader.ProposeConfChange(new ConfChange(ConfChangeType.AddVoter, 4)).IsAccepted);
        c.TickAll(3);
        var replaced = c.Nodes.Keys.First(id => id != leader.Id && id != 4);
        Assert.True(leader.ProposeConfChange(new ConfChange(ConfChangeType.RemoveNode, replaced)).IsAccepted);
        c.TickAll(3);
        var expected = leader.Conf.Voters.Order().ToArray();
        Assert.Equal(3, expected.Length);
        Assert.Equal(expected, c.Nodes[4].Conf.Voters.Order());
        Assert.Empty(c.Nodes[4].Conf.Learners);

        // With the leader and the other survivor gone, the joiner is one voter of three: it must not lead alone.
        c.Down.Add(leader.Id);
        c.Down.Add(c.Nodes.Keys.First(id => id != leader.Id && id != 4 && id != replaced));
        c.TickAll(60);
        Assert.NotEqual(RaftRole.Leader, c.Nodes[4].Role);
    }

    /// <summary>Three voters with a leader and five committed entries, settled.</summary>
    private static (TestCluster Cluster, IRaftNode Leader) ThreeVotersWithEntries()
    {
        var c = new TestCluster(3);
        c.TickAll(30);
        var leader = c.Leader();
        for (var i = 0; i < 5; i++)
        {
            leader.Propose(new byte[] { (byte)i });
        }
        c.Settle();
        return (c, leader);
    }

    [Fact]
    public void TransferLeadership_ToFollower_TargetBecomesLeader()
    {
        var c = new TestCluster(3);
        c.TickAll(30);
        var leader = c.Leader();
        var target = c.Nodes.Keys.First(id => id != leader.Id);
        Assert.True(leader.TransferLeadership(target));
        Assert.Equal(ProposeStatus.TransferInProgress, leader.Propose(new byte[] { 1 }).Status);
        c.Settle();
        Assert.Equal(RaftRole.Leader, c.Nodes[target].Role);
        Assert.True(c.Nodes[target].Term > 1);
    }

    [Fact]
    public void Compact_FollowerFarBehind_ReceivesSnapshotInChunks()
    {
        var c = new TestCluster(3, cfg => cfg with { SnapshotChunkBytes = 100, SnapshotWindowChunks = 2 });
        c.TickAll(30);
        var leader = c.Leader();
        var lagging = c.Nodes.Keys.First(id => id != leader.Id);
        c.Down.Add(lagging);
        for (var i = 0; i < 20; i++)
        {
            leader.Propose(new byte[] { (byte)i });
            c.Settle();
        }
        var snapshot = new byte[1000];
        new Random(1).NextBytes(snapshot);
        var meta = leader.Compact(snapshot, retainEntries: 0);
        Assert.Equal(leader.AppliedIndex, meta.Index);
        c.Down.Remove(lagging);
        var installed = false;
        // Watch the lagging node's Ready stream for the snapshot.
        for (var t = 0; t < 20 && !installed; t++)
        {
            foreach (var n in c.Nodes.Values)
            {
                n.Tick();
            }
            for (var k = 0; k < 50; k++)
            {
                var msgs = new List<Message>();
                foreach (var (id, n) in c.Nodes)
                {
                    while (n.HasReady)
                    {
                        var rd = n.GetReady();
                        if (id == lagging && rd.Snapshot is not null)
                        {
                            Assert.Equal(snapshot, rd.SnapshotData.ToArray());
                            Assert.Equal(meta.Index, rd.Snapshot.Index);
                            installed = true;
                        }
                        msgs.AddRange(rd.Messages);
                        c.Sent.AddRange(rd.Messages);
                        n.Advance(rd);
                    }
                }
                msgs.ForEach(m => c.Nodes[m.To].Step(m));
            }
        }
        Assert.True(installed);
        Assert.True(c.Sent.Count(m => m.Type == MessageType.Snapshot && m.To == lagging) >= 10);
        Assert.Equal(leader.CommitIndex, c.Nodes[lagging].CommitIndex);
    }

    [Fact]
    public void Step_MessageForAnotherGroupOrNode_Ignored()
    {
        var c = new TestCluster(3);
        var n = c.Nodes[1];
        n.Step(new Message { Type = MessageType.Vote, GroupId = 8, From = 2, To = 1, Term = 5 });
        n.Step(new Message { Type = MessageType.Vote, GroupId = 9, From = 2, To = 3, Term = 5 });
        Assert.Equal(0UL, n.Term);
    }

    [Fact]
    public void Step_PreVoteFromPartitionedNode_DoesNotDisturbLeader()
    {
        var c = new TestCluster(3);
        c.TickAll(30);
        var leader = c.Leader();
        var term = leader.Term;
        var follower = c.Nodes.Keys.First(id => id != leader.Id);
        // One-way partition: the follower cannot hear the leader, times out and pre-votes repeatedly; the others are in lease and refuse.
        c.Blocked.Add((leader.Id, follower));
        c.TickAll(200);
        Assert.Equal(RaftRole.Leader, leader.Role);
        Assert.Equal(term, leader.Term);
        Assert.Equal(term, c.Nodes[follower].Term);
        Assert.Contains(c.Sent, m => m.Type == MessageType.PreVote && m.From == follower);
    }

    [Fact]
    public void Restart_FromPersistedState_KeepsTermVoteAndLog()
    {
        var cfg = new RaftConfig { Id = 1, GroupId = 1, BootstrapVoters = [1] };
        var hs = new HardState(4, 1, 2);
        var entries = new[] { new Entry(1, 1, EntryType.Normal, new byte[] { 1 }), new Entry(4, 2, EntryType.Normal, new byte[] { 2 }) };
        var node = RaftNodeFactory.Create(cfg, new PersistedState(hs, null, default, entries));
        Assert.Equal(4UL, node.Term);
        Assert.Equal(2UL, node.LastIndex);
        Assert.Equal(2UL, node.CommitIndex);
        var rd = node.GetReady();
        Assert.Equal(2, rd.CommittedEntries.Count);
        Assert.Empty(rd.Entries);
    }
}
