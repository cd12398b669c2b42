using Kdb.Node.Admin;
using Kdb.Node.Admin.Wire;
using Kdb.Testing.Cluster;
using Npgsql;

namespace Kdb.Cluster.Tests;

/// <summary>Replica changes: a new replica joins as a learner, catches up, is promoted; a replica is removed.</summary>
[Collection(ClusterCollection.Name)]
public sealed class MembershipTests(ThreeNodeCluster cluster)
{
    [Fact]
    public async Task A_learner_catches_up_is_promoted_and_a_member_can_be_removed()
    {
        var (n1, n2, n3) = (cluster.Nodes[0], cluster.Nodes[1], cluster.Nodes[2]);
        var groupId = (ulong)Random.Shared.NextInt64(1, long.MaxValue);
        var pair = new CreateGroupRequest { GroupId = groupId };
        pair.Members.Add(new Member { NodeId = n1.NodeId, InternalUrl = n1.InternalUrl });
        pair.Members.Add(new Member { NodeId = n2.NodeId, InternalUrl = n2.InternalUrl });
        await cluster.Admin(n1).CreateGroupAsync(pair);
        await cluster.Admin(n2).CreateGroupAsync(pair);
        var leader = await cluster.LeaderOfAsync(groupId);
        var (db, _) = await cluster.CreateDatabaseAsync(groupId, leader);
        await using (var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(leader, db)))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("CREATE TABLE m (id int PRIMARY KEY); INSERT INTO m SELECT g FROM generate_series(1, 1000) g", conn);
            await cmd.ExecuteNonQueryAsync();
        }

        // The new replica starts empty and waits to be added.
        var joining = new CreateGroupRequest { GroupId = groupId, Join = true };
        joining.Members.Add(pair.Members);
        joining.Members.Add(new Member { NodeId = n3.NodeId, InternalUrl = n3.InternalUrl });
        await cluster.Admin(n3).CreateGroupAsync(joining);
        var learner = new Member { NodeId = n3.NodeId, InternalUrl = n3.InternalUrl };
        // A follower refuses membership changes and names the leader.
        var follower = leader == n1 ? n2 : n1;
        var refused = await Assert.ThrowsAsync<NodeAdminException>(() => cluster.Admin(follower).ChangeReplicaAsync(groupId, new ChangeReplicaRequest { Change = ReplicaChange.AddLearner, Member = learner }));
        Assert.Equal(System.Net.HttpStatusCode.Conflict, refused.Status);
        Assert.Equal(leader.NodeId, refused.LeaderNodeId);

        await cluster.Admin(leader).ChangeReplicaAsync(groupId, new ChangeReplicaRequest { Change = ReplicaChange.AddLearner, Member = learner });
        await WaitCaughtUpAsync(groupId, [n1, n2, n3]);
        await cluster.Admin(leader).ChangeReplicaAsync(groupId, new ChangeReplicaRequest { Change = ReplicaChange.Promote, Member = learner });
        var status = await cluster.Admin(leader).StatusAsync();
        Assert.Contains(n3.NodeId, status.Groups.Single(g => g.GroupId == groupId).Voters);
        // The joined replica sees the whole membership too (replaying the log from the group's initial members, which its
        // leader told it), not itself alone: a lone voter in its own eyes would elect itself once the leader fell silent.
        await AgreesOnVotersAsync(groupId, leader, n3);

        // The promoted replica serves SQL.
        await using (var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(n3, db)))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("INSERT INTO m VALUES (1001); SELECT count(*) FROM m", conn);
            Assert.Equal(1001L, await cmd.ExecuteScalarAsync());
        }

        // Remove the member that is not the leader; the group keeps committing with the other two.
        var removed = leader == n1 ? n2 : n1;
        await cluster.Admin(leader).ChangeReplicaAsync(groupId, new ChangeReplicaRequest { Change = ReplicaChange.Remove, Member = new Member { NodeId = removed.NodeId, InternalUrl = removed.InternalUrl } });
        status = await cluster.Admin(leader).StatusAsync();
        Assert.DoesNotContain(removed.NodeId, status.Groups.Single(g => g.GroupId == groupId).Voters);
        await using (var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(n3, db)))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("INSERT INTO m VALUES (1002); SELECT count(*) FROM m", conn);
            Assert.Equal(1002L, await cmd.ExecuteScalarAsync());
        }
        await AgreesOnVotersAsync(groupId, leader, n3);

        // After a restart the joined replica rebuilds the same membership from what it persisted.
        await n3.KillAsync();
        await cluster.RestartAsync(n3);
        await AgreesOnVotersAsync(groupId, leader, n3);
    }

    private async Task AgreesOnVotersAsync(ulong groupId, ClusterNodeProcess leader, ClusterNodeProcess joined)
    {
        var expected = (await cluster.Admin(leader).StatusAsync()).Groups.Single(g => g.GroupId == groupId).Voters.Order().ToList();
        Assert.Contains(leader.NodeId, expected);
        Assert.Contains(joined.NodeId, expected);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                var seen = (await cluster.Admin(joined).StatusAsync()).Groups.Single(g => g.GroupId == groupId);
                if (seen.Voters.Order().SequenceEqual(expected) && seen.Learners.Count == 0)
                {
                    return;
                }
                Assert.True(DateTime.UtcNow < deadline, $"{joined.NodeId} lists voters [{string.Join(", ", seen.Voters)}], the leader [{string.Join(", ", expected)}]");
            }
            catch (HttpRequestException) when (DateTime.UtcNow < deadline)
            {
                // Still starting after a restart.
            }
            await Task.Delay(200);
        }
    }

    private async Task WaitCaughtUpAsync(ulong groupId, ClusterNodeProcess[] nodes)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var hashes = new List<StateHashResponse>();
            foreach (var n in nodes)
            {
                hashes.Add(await cluster.Admin(n).StateHashAsync(groupId));
            }
            if (hashes.Select(h => h.AppliedIndex).Distinct().Count() == 1 && hashes.Select(h => h.Sha256).Distinct().Count() == 1)
            {
                return;
            }
            Assert.True(DateTime.UtcNow < deadline, "the learner did not catch up: " + string.Join(", ", hashes.Select(h => h.AppliedIndex)));
            await Task.Delay(200);
        }
    }
}
