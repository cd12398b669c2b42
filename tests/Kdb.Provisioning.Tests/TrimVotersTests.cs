using Kdb.Node.Admin.Wire;

using static Kdb.Testing.Provisioning.LocalCloud;

namespace Kdb.Provisioning.Tests;

/// <summary>
/// A group with one voter too many (what a replaced node that comes back mid-repair leaves) is trimmed back to three,
/// and placement follows the voters, not every node that still holds a copy of the group. Runs last in its class: it
/// brings back the node the first test killed for good.
/// </summary>
public sealed partial class NodeRepairTests
{
    [Fact]
    public async Task Z_GroupWithASurplusVoter_IsTrimmedBackToThree_AndPlacementFollowsTheVoters()
    {
        foreach (var stopped in cloud.Nodes.Where(n => !n.Running))
        {
            await stopped.RestartAsync();
        }
        await cloud.WaitForAliveNodesAsync(cloud.Nodes.Count);

        // A group of three formed by hand, then a fourth member joined and promoted.
        var groupId = (ulong)Random.Shared.NextInt64(1, long.MaxValue);
        var members = cloud.Nodes.Select(n => new Member { NodeId = n.NodeId, InternalUrl = n.InternalUrl }).ToList();
        var create = new CreateGroupRequest { GroupId = groupId };
        create.Members.AddRange(members.Take(3));
        foreach (var node in cloud.Nodes.Take(3))
        {
            await Admin(node).CreateGroupAsync(create);
        }
        var join = new CreateGroupRequest { GroupId = groupId, Join = true };
        join.Members.AddRange(members);
        await Admin(cloud.Nodes[3]).CreateGroupAsync(join);
        await EventuallyAsync(async () =>
        {
            var leader = await LeaderOfAsync(groupId);
            var group = await GroupAsync(leader, groupId);
            if (!group.Voters.Contains(members[3].NodeId))
            {
                if (!group.Learners.Contains(members[3].NodeId))
                {
                    await Admin(leader).ChangeReplicaAsync(groupId, new ChangeReplicaRequest { Change = ReplicaChange.AddLearner, Member = members[3] });
                }
                await Admin(leader).ChangeReplicaAsync(groupId, new ChangeReplicaRequest { Change = ReplicaChange.Promote, Member = members[3] });
            }
        });

        // Repair (every second in this cloud) removes one voter, never the leader.
        GroupInfo trimmed = null!;
        await EventuallyAsync(async () =>
        {
            trimmed = await GroupAsync(await LeaderOfAsync(groupId), groupId);
            Assert.Equal(3, trimmed.Voters.Count);
            Assert.Empty(trimmed.Learners);
        });
        Assert.Contains(trimmed.LeaderNodeId, trimmed.Voters);
        // Repair then deletes the copy the trimmed voter still holds (DELETE /internal/v1/groups/{id} on that node).
        var removed = cloud.Nodes.Single(n => !trimmed.Voters.Contains(n.NodeId));
        await EventuallyAsync(async () =>
        {
            Assert.DoesNotContain((await Admin(removed).StatusAsync()).Groups, g => g.GroupId == groupId);
            // The node closes the replica and deletes its files a second after it leaves the lookups.
            Assert.False(Directory.Exists(Path.Combine(removed.DataDirectory, "groups", groupId.ToString(System.Globalization.CultureInfo.InvariantCulture))));
        });

        // The removed replica (and the node that came back) still hold copies and report them in heartbeats; a new
        // database is placed on its group's voters only, and works.
        var (token, org) = await cloud.UserAsync("trim");
        var (id, password) = await cloud.CreateReadyDatabaseAsync(token, org, "aftertrim");
        var placement = await cloud.PlacementAsync(id);
        var placed = ulong.Parse(placement.GetProperty("groupId").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        var voters = (await GroupAsync(await LeaderOfAsync(placed), placed)).Voters.Order(StringComparer.Ordinal).ToList();
        var replicas = placement.GetProperty("replicas").EnumerateArray().Select(r => r.GetProperty("nodeId").GetString()!).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(voters, replicas);
        foreach (var node in cloud.Nodes.Where(n => replicas.Contains(n.NodeId)))
        {
            await EventuallyAsync(async () => Assert.Equal(1, await ScalarAsync(node.PgPort, id, password, "SELECT 1")));
        }
    }

    private async Task<Kdb.Testing.Provisioning.CloudNode> LeaderOfAsync(ulong groupId)
    {
        foreach (var node in cloud.Nodes.Where(n => n.Running))
        {
            if ((await Admin(node).StatusAsync()).Groups.FirstOrDefault(g => g.GroupId == groupId) is { Role: "leader" })
            {
                return node;
            }
        }
        throw new InvalidOperationException($"group {groupId} has no leader yet");
    }

    private async Task<GroupInfo> GroupAsync(Kdb.Testing.Provisioning.CloudNode node, ulong groupId) =>
        (await Admin(node).StatusAsync()).Groups.First(g => g.GroupId == groupId);
}
