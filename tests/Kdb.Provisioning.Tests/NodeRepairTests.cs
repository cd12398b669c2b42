using System.Text.Json;
using Kdb.Testing.Postgres;
using Npgsql;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace Kdb.Provisioning.Tests;

/// <summary>A collection of its own (with its own PostgreSQL), so the slow kill-and-wait tests overlap the three-node ones.</summary>
[CollectionDefinition(Name)]
public sealed class RepairCollection : ICollectionFixture<PostgresFixture>
{
    public const string Name = "Provisioning.Repair";
}

/// <summary>
/// Four real nodes, so a dead node's replicas have somewhere to go; the control plane calls a node dead after 8 s of
/// silence (instead of 30) and provisioning looks for dead nodes every second.
/// </summary>
public sealed class FourNodeCloud(PostgresFixture postgres) : LocalCloud(postgres)
{
    protected override int NodeCount => 4;

    protected override IEnumerable<string> ControlPlaneArguments =>
        ["--Nodes:SuspectAfter=00:00:04", "--Nodes:DeadAfter=00:00:08", "--Provisioning:RepairInterval=00:00:01"];
}

/// <summary>
/// Nodes SIGKILLed: for good (its replicas are replaced on the spare node and placements follow), and for a moment
/// in the middle of provisioning and of a backup (the operation completes or fails cleanly, with no duplicates).
/// </summary>
// The kill-for-good test runs first: afterwards no live node is outside the repaired group, so a node the kill tests
// restart slowly enough to be called dead for a moment has no replacement to be swapped for.
[Collection(RepairCollection.Name)]
[TestCaseOrderer("Kdb.Provisioning.Tests.ByNameOrderer", "Kdb.Provisioning.Tests")]
public sealed partial class NodeRepairTests(FourNodeCloud cloud) : IClassFixture<FourNodeCloud>
{
    [Fact]
    public async Task A_NodeKilledForGood_ItsReplicasMoveToALiveNode_DataAndPlacementsFollow()
    {
        var (token, org) = await cloud.UserAsync("repair");
        var (first, password) = await cloud.CreateReadyDatabaseAsync(token, org, "first");
        var (second, _) = await cloud.CreateReadyDatabaseAsync(token, org, "second");
        var before = await cloud.PlacementAsync(first);
        var replicas = NodeIds(before);
        Assert.Equal(3, replicas.Count);
        var groupId = before.GetProperty("groupId").ToString();
        Assert.Equal(groupId, (await cloud.PlacementAsync(second)).GetProperty("groupId").ToString());
        await ExecAsync(cloud.Nodes.First(n => n.NodeId == replicas[0]).PgPort, first, password,
            "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 2000) g");

        // Kill the group's leader: the survivors elect a new one, and repair works through it.
        var victimId = before.TryGetProperty("leaderNodeId", out var l) && l.ValueKind == JsonValueKind.String ? l.GetString()! : replicas[0];
        var victim = cloud.Nodes.Single(n => n.NodeId == victimId);
        var spare = cloud.Nodes.Single(n => !replicas.Contains(n.NodeId));
        await victim.KillAsync();

        var deadline = DateTime.UtcNow.AddSeconds(120);
        List<string> after;
        while (true)
        {
            after = NodeIds(await cloud.PlacementAsync(first));
            if (!after.Contains(victimId) && after.Contains(spare.NodeId) && !NodeIds(await cloud.PlacementAsync(second)).Contains(victimId))
            {
                break;
            }
            Assert.True(DateTime.UtcNow < deadline, $"placement still [{string.Join(", ", after)}] after killing {victimId}\n{cloud.Logs}");
            await Task.Delay(250);
        }
        Assert.Equal(3, after.Count);
        Assert.Equal(groupId, (await cloud.PlacementAsync(first)).GetProperty("groupId").ToString());
        Assert.Equal(after.Order(), NodeIds(await cloud.PlacementAsync(second)).Order());

        // Every replica of the repaired group agrees on its voters and can name them, the joined one included (it replays the
        // log from the group's initial members, which its leader told it; alone in its own eyes it would elect itself), and
        // the followers (who learn the new member's address from the change itself, so a later leader can reach it).
        await LocalCloud.EventuallyAsync(async () =>
        {
            foreach (var node in cloud.Nodes.Where(n => after.Contains(n.NodeId)))
            {
                var status = await Admin(node).StatusAsync();
                var group = status.Groups.Single(g => g.GroupId.ToString(System.Globalization.CultureInfo.InvariantCulture) == groupId);
                Assert.Equal(after.Order(), group.Voters.Order());
            }
        });

        // The new replica holds the data and serves writes; nothing acknowledged was lost.
        Assert.Equal(2000L, await ScalarAsync(spare.PgPort, first, password, "SELECT count(*) FROM t"));
        await ExecAsync(spare.PgPort, first, password, "INSERT INTO t VALUES (2001, 'after')");
        Assert.Equal(2001L, await ScalarAsync(spare.PgPort, first, password, "SELECT count(*) FROM t"));

        // Repair is done: later rounds change nothing, and new databases still find room on the repaired group.
        await Task.Delay(3000);
        Assert.Equal(after.Order(), NodeIds(await cloud.PlacementAsync(first)).Order());
        var (third, _) = await cloud.CreateReadyDatabaseAsync(token, org, "third");
        Assert.DoesNotContain(victimId, NodeIds(await cloud.PlacementAsync(third)));
    }

    private static List<string> NodeIds(JsonElement placement) =>
        placement.TryGetProperty("replicas", out var r) && r.ValueKind == JsonValueKind.Array
            ? [.. r.EnumerateArray().Select(x => x.GetProperty("nodeId").GetString()!)]
            : [];

    private static async Task ExecAsync(int port, string database, string password, string sql)
    {
        await using var conn = new NpgsqlConnection(LocalCloud.ConnectionString(port, database, password));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync();
    }

    private static async Task<object?> ScalarAsync(int port, string database, string password, string sql)
    {
        await using var conn = new NpgsqlConnection(LocalCloud.ConnectionString(port, database, password));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        return await cmd.ExecuteScalarAsync();
    }
}

/// <summary>Runs a class's tests in ordinal order of their names.</summary>
public sealed class ByNameOrderer : ITestCaseOrderer
{
    public IEnumerable<TTestCase> OrderTestCases<TTestCase>(IEnumerable<TTestCase> testCases) where TTestCase : ITestCase =>
        testCases.OrderBy(t => t.TestMethod.Method.Name, StringComparer.Ordinal);
}
