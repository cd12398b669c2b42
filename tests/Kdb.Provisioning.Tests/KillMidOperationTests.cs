using System.Net;
using Kdb.Node.Admin;

using static Kdb.Testing.Provisioning.LocalCloud;

namespace Kdb.Provisioning.Tests;

/// <summary>
/// A node SIGKILLed while an operation runs on its group and started again at once (before the control plane calls
/// it dead, so repair stays out of it): the operation completes or fails cleanly, and nothing is duplicated.
/// </summary>
public sealed partial class NodeRepairTests
{
    // A bigger backup (a longer window to kill into) under `./kdb test --soak`.
    private static readonly int Rows = Environment.GetEnvironmentVariable("KDB_SOAK") == "1" ? 100_000 : 5_000;

    [Fact]
    public async Task B_NodeKilledDuringProvisioning_DatabaseEndsReadyOrFailed_NeverTwice()
    {
        var (token, org) = await cloud.UserAsync("killprov");
        var (existing, _) = await cloud.CreateReadyDatabaseAsync(token, org, "existing");
        var leader = await LeaderNodeAsync(existing);

        var (status, created) = await cloud.SendAsync(HttpMethod.Post, $"/v1/orgs/{org}/databases", token, new { name = "during" });
        Assert.True(status == HttpStatusCode.Accepted, created.ToString());
        var id = created.GetProperty("database").GetProperty("id").GetString()!;
        var password = created.GetProperty("credentials").GetProperty("password").GetString()!;
        await KillAndRestartAsync(leader);

        var done = await cloud.WaitForAsync($"/v1/databases/{id}", token, d => d.GetProperty("status").GetString() is "ready" or "failed", seconds: 150);
        var groups = await GroupsHostingAsync(id);
        if (done.GetProperty("status").GetString() == "ready")
        {
            // A replica's listing is as of the group's commit index only once the group has a leader again: a kill right after
            // the create committed can leave every survivor's local state without it until the new leader's first commit.
            await EventuallyAsync(async () =>
            {
                groups = await GroupsHostingAsync(id);
                Assert.Single(groups);
            });
            Assert.Equal(groups[0].ToString(System.Globalization.CultureInfo.InvariantCulture), (await cloud.PlacementAsync(id)).GetProperty("groupId").ToString());
            await EventuallyAsync(async () => Assert.Equal(1, await ScalarAsync(await cloud.ReplicaPgPortAsync(id), id, password, "SELECT 1")));
        }
        else
        {
            Assert.True(groups.Count <= 1, $"database {id} on groups [{string.Join(", ", groups)}]");
        }
    }

    [Fact]
    public async Task B_NodeKilledDuringBackup_BackupCompletesOrFailsCleanly_OneManifest_RestorableWhenCompleted()
    {
        var (token, org) = await cloud.UserAsync("killbackup");
        var (id, password) = await cloud.CreateReadyDatabaseAsync(token, org, "source");
        await EventuallyAsync(async () => await ExecAsync(await cloud.ReplicaPgPortAsync(id), id, password,
            $"CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, {Rows}) g"));
        var leader = await LeaderNodeAsync(id);

        var (status, started) = await cloud.SendAsync(HttpMethod.Post, $"/v1/databases/{id}/backups", token, new { });
        Assert.True(status == HttpStatusCode.Accepted, started.ToString());
        var backupId = started.GetProperty("backup").GetProperty("id").GetString()!;
        await KillAndRestartAsync(leader);

        var backup = await cloud.WaitForAsync($"/v1/databases/{id}/backups/{backupId}", token, b => b.GetProperty("status").GetString() is "completed" or "failed", seconds: 150);
        var manifests = Directory.Exists(Path.Combine(cloud.ObjectStorePath, "backups", backupId))
            ? Directory.GetFiles(Path.Combine(cloud.ObjectStorePath, "backups", backupId), "manifest*")
            : [];
        var (_, list) = await cloud.SendAsync(HttpMethod.Get, $"/v1/databases/{id}/backups", token);
        Assert.Single(list.GetProperty("items").EnumerateArray(), b => b.GetProperty("id").GetString() == backupId);
        if (backup.GetProperty("status").GetString() == "failed")
        {
            Assert.Empty(manifests);
            return;
        }
        Assert.Single(manifests);
        var (restoreStatus, restore) = await cloud.SendAsync(HttpMethod.Post, $"/v1/databases/{id}/restore", token, new { backupId, target = "new", name = "copy" });
        Assert.True(restoreStatus == HttpStatusCode.Accepted, restore.ToString());
        var operation = restore.GetProperty("operation").GetProperty("id").GetString()!;
        var target = restore.GetProperty("database").GetProperty("id").GetString()!;
        var outcome = await cloud.WaitForAsync($"/v1/operations/{operation}", token, o => o.GetProperty("status").GetString() != "running", seconds: 150);
        Assert.True(outcome.GetProperty("status").GetString() == "succeeded", outcome.ToString());
        await EventuallyAsync(async () => Assert.Equal((long)Rows, await ScalarAsync(await cloud.ReplicaPgPortAsync(target), target, password, "SELECT count(*) FROM t")));
    }

    /// <summary>The node leading the database's group, from the nodes' own status (placements may lag an election).</summary>
    private async Task<Kdb.Testing.Provisioning.CloudNode> LeaderNodeAsync(string databaseId)
    {
        var group = ulong.Parse((await cloud.PlacementAsync(databaseId)).GetProperty("groupId").ToString(), System.Globalization.CultureInfo.InvariantCulture);
        foreach (var node in cloud.Nodes.Where(n => n.Running))
        {
            var status = await Admin(node).StatusAsync();
            if (status.Groups.Any(g => g.GroupId == group && g.Role == "leader"))
            {
                return node;
            }
        }
        throw new InvalidOperationException($"no running node leads group {group}");
    }

    private static async Task KillAndRestartAsync(Kdb.Testing.Provisioning.CloudNode node)
    {
        await Task.Delay(Random.Shared.Next(20, 200));
        await node.KillAsync();
        await node.RestartAsync();
    }

    /// <summary>Groups, over every running node, whose replica lists the database.</summary>
    private async Task<List<ulong>> GroupsHostingAsync(string databaseId)
    {
        var groups = new HashSet<ulong>();
        foreach (var node in cloud.Nodes.Where(n => n.Running))
        {
            await EventuallyAsync(async () =>
            {
                foreach (var g in (await Admin(node).StatusAsync()).Groups)
                {
                    if ((await Admin(node).DatabasesAsync(g.GroupId)).Databases.Any(d => d.DatabaseId == databaseId))
                    {
                        groups.Add(g.GroupId);
                    }
                }
            });
        }
        return [.. groups];
    }

    private NodeAdminClient Admin(Kdb.Testing.Provisioning.CloudNode node) =>
        new(AdminHttp, new Uri(node.InternalUrl), async _ => await cloud.ServiceTokenAsync("kdb-provisioning", LocalCloud.ProvisioningSecret));

    private static readonly HttpClient AdminHttp = NodeAdminClient.CreateHttpClient();
}
