using System.Text.Json;

namespace Kdb.Provisioning.Tests;

/// <summary>
/// A voter whose heartbeats are merely late (suspect, not dead) does not make placement form a group around it: the
/// group still has a working majority, and a new database lands on a group that already was there. Runs after the
/// kill-for-good test, when the three live nodes are the voters of every group and no fourth node could host a new one.
/// </summary>
public sealed partial class NodeRepairTests
{
    [Fact]
    public async Task C_AVoterWhoseHeartbeatsAreLate_NewDatabasesStillLandOnItsGroup()
    {
        var (token, org) = await cloud.UserAsync("late-voter");
        var (first, _) = await cloud.CreateReadyDatabaseAsync(token, org, "first");
        var placement = await cloud.PlacementAsync(first);
        // Earlier tests in the class can leave more than one group on the three live nodes: placement then picks the
        // least-filled, so the point is that it picks one of them, not a group formed around the late voter.
        var groupsBefore = new HashSet<ulong>();
        foreach (var node in cloud.Nodes.Where(n => n.Running))
        {
            groupsBefore.UnionWith((await Admin(node).StatusAsync()).Groups.Select(g => g.GroupId));
        }
        var leader = placement.TryGetProperty("leaderNodeId", out var l) && l.ValueKind == JsonValueKind.String ? l.GetString() : null;
        var voters = NodeIds(placement);
        var late = cloud.Nodes.First(n => n.Running && voters.Contains(n.NodeId) && n.NodeId != leader);

        await late.PauseAsync();
        try
        {
            // Suspect after 4 s of silence in this cloud, dead after 8: create while it is suspect.
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (await StatusOfAsync(late.NodeId) != "suspect")
            {
                Assert.True(DateTime.UtcNow < deadline, $"{late.NodeId} never turned suspect\n{cloud.Logs}");
                await Task.Delay(100);
            }
            var (second, _) = await cloud.CreateReadyDatabaseAsync(token, org, "second");
            var landed = await cloud.PlacementAsync(second);
            var landedGroup = ulong.Parse(landed.GetProperty("groupId").ToString(), System.Globalization.CultureInfo.InvariantCulture);
            Assert.Contains(landedGroup, groupsBefore);
            Assert.Contains(late.NodeId, NodeIds(landed));
        }
        finally
        {
            await late.ResumeAsync();
        }
        await cloud.WaitForAliveNodesAsync(cloud.Nodes.Count(n => n.Running));
    }

    private async Task<string?> StatusOfAsync(string nodeId) =>
        (await cloud.NodeListAsync()).FirstOrDefault(n => n.GetProperty("nodeId").GetString() == nodeId) is { ValueKind: JsonValueKind.Object } node
            ? node.GetProperty("status").GetString()
            : null;
}
