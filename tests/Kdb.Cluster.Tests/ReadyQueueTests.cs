using System.Diagnostics;
using Kdb.Sql.Sessions;

namespace Kdb.Cluster.Tests;

/// <summary>
/// One in-process host with many single-replica groups (each elects itself; nothing leaves the process): the loop's ready
/// queue visits only the groups that were touched, so a busy group's rounds do not walk the idle ones.
/// </summary>
public sealed class ReadyQueueTests
{
    private const int Groups = 60;
    private const int Proposals = 200;

    [Fact]
    public async Task Rounds_visit_only_touched_groups_so_idle_groups_cost_only_their_ticks()
    {
        using var dir = new TempDirectory();
        // Long ticks: between two ticks the only work is the busy group's, which is what the figure isolates.
        var options = new ClusterOptions
        {
            DataDirectory = dir.Path,
            NodeId = "node-a",
            InternalUrl = "http://127.0.0.1:1",
            TickMs = 500,
            ElectionTicks = 2,
            HeartbeatTicks = 1,
            MemtableBytes = 1 << 20,
        };
        using var host = ClusterHost.Open(options, _ => { }, _ => { });
        var self = new GroupMember(options.NodeId, host.RaftId, options.InternalUrl);
        for (ulong g = 1; g <= Groups; g++)
        {
            await host.CreateGroupAsync(g, [self], join: false);
        }
        var deadline = Stopwatch.StartNew();
        while (!Enumerable.Range(1, Groups).All(g => host.IsLeader((ulong)g)))
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(60), "every single-replica group elects itself");
            await Task.Delay(50);
        }

        var visitsBefore = host.GroupVisits;
        var ticksBefore = host.Ticks;
        var owner = new DatabaseRole("owner", SqlRoleKind.Owner, "SCRAM-SHA-256$4096:c2FsdA==$a:b");
        for (var i = 0; i < Proposals; i++)
        {
            var outcome = await host.ProposeAsync(7, ShardCommand.CreateDatabase($"db_q{i}", (ulong)i + 1, owner));
            Assert.Equal(ApplyStatus.Ok, outcome.Result?.Status);
        }
        var visits = host.GroupVisits - visitsBefore;
        var ticks = host.Ticks - ticksBefore;

        // Walking every group each round would cost at least Proposals × Groups visits (12,000). With the queue: each tick
        // touches every group (twice at most: the tick, then its heartbeat round), each proposal a few rounds of one group.
        Assert.True(visits <= ((ticks + 1) * Groups * 2) + (Proposals * 8),
            $"{visits} group visits for {Proposals} proposals on one group over {ticks} ticks with {Groups} groups");
        Assert.Equal(Proposals, host.DatabaseCount(7));
        Assert.Equal(0, host.DatabaseCount(8));
        Assert.Equal(Proposals, host.Status(7).Databases);
        Assert.Equal(ApplyStatus.Ok, (await host.ProposeAsync(7, ShardCommand.DropDatabase("db_q0"))).Result?.Status);
        Assert.Equal(ApplyStatus.NotFound, (await host.ProposeAsync(7, ShardCommand.DropDatabase("db_q0"))).Result?.Status);
        Assert.Equal(Proposals - 1, host.DatabaseCount(7));
    }
}
