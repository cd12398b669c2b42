using System.Globalization;
using System.Net;
using Kdb.Node.Admin;
using Kdb.Node.Admin.Wire;

using static Kdb.Testing.Provisioning.LocalCloud;

namespace Kdb.Provisioning.Tests;

/// <summary><c>DELETE /internal/v1/groups/{id}</c>: a node drops its copy of a group it has left, never one it leads.</summary>
public sealed partial class LocalCloudTests
{
    [Fact]
    public async Task LeftGroupsFiles_AreRemoved_WhileTheLeadersCopyIsRefused()
    {
        var token = await cloud.ServiceTokenAsync("kdb-provisioning", LocalCloud.ProvisioningSecret);
        var (a, b) = (cloud.Nodes[0], cloud.Nodes[1]);
        var adminA = new NodeAdminClient(AdminHttp, new Uri(a.InternalUrl), _ => ValueTask.FromResult(token));
        var adminB = new NodeAdminClient(AdminHttp, new Uri(b.InternalUrl), _ => ValueTask.FromResult(token));
        var members = new[] { new Member { NodeId = a.NodeId, InternalUrl = a.InternalUrl } };
        // A group of one voter that A leads (placement never picks a group of fewer than three).
        var led = 0x7E57_0000_0000_0000UL | (ulong)Random.Shared.NextInt64(1, int.MaxValue);
        await adminA.CreateGroupAsync(new CreateGroupRequest { GroupId = led, Members = { members } });
        await EventuallyAsync(async () => Assert.Equal("leader", (await adminA.StatusAsync()).Groups.Single(g => g.GroupId == led).Role));
        // B holds a copy of a group it is not a member of, as a replica repair removed does. No node leads that group,
        // so repair's own sweep leaves it to this test.
        var left = led + 1;
        await adminB.CreateGroupAsync(new CreateGroupRequest { GroupId = left, Members = { members }, Join = true });
        var directory = Path.Combine(b.DataDirectory, "groups", left.ToString(CultureInfo.InvariantCulture));
        Assert.True(Directory.Exists(directory));

        var leads = await Assert.ThrowsAsync<NodeAdminException>(() => adminA.RemoveGroupAsync(led));
        Assert.Equal(HttpStatusCode.Conflict, leads.Status);
        await adminB.RemoveGroupAsync(left);

        Assert.DoesNotContain((await adminB.StatusAsync()).Groups, g => g.GroupId == left);
        Assert.False(Directory.Exists(directory));
        Assert.Equal(HttpStatusCode.NotFound, (await Assert.ThrowsAsync<NodeAdminException>(() => adminB.RemoveGroupAsync(left))).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await Assert.ThrowsAsync<NodeAdminException>(() => adminB.RemoveGroupAsync(0))).Status);
        // The leader's copy is untouched, and B can take a fresh copy again.
        Assert.Contains((await adminA.StatusAsync()).Groups, g => g.GroupId == led && g.Role == "leader");
        await adminB.CreateGroupAsync(new CreateGroupRequest { GroupId = left, Members = { members }, Join = true });
        Assert.Contains((await adminB.StatusAsync()).Groups, g => g.GroupId == left);
        await adminB.RemoveGroupAsync(left);
    }
}
