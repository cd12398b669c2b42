using Kdb.Cluster;
using Kdb.Node.Cluster;
using Kdb.ServiceDefaults;

namespace Kdb.Node.Tests.Cluster;

/// <summary>A group can leave the node between a listing of its groups and the read of one's status (a move or a repair
/// removes it). Readers that walk the listing (metrics, the heartbeat, the GC threshold service, the admin status) use
/// <see cref="ClusterHost.TryStatus"/>: an exception from a background service once stopped a whole node.</summary>
public sealed class GroupStatusTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kdb-status-").FullName;

    [Fact]
    public async Task TryStatus_IsNullOnceTheGroupLeaves_WhereStatusThrows_AndMetricsStillRender()
    {
        using var host = ClusterHost.Open(new ClusterOptions { DataDirectory = _dir, NodeId = "n1", InternalUrl = "http://127.0.0.1:1" }, _ => { }, _ => { });
        using var metrics = new ClusterMetrics(host);
        using var exporter = new PrometheusExporter(m => m.Name == "Kdb.Node.Cluster");
        // A replica that joins an existing group: it has no leader yet, so the node may drop it.
        await host.CreateGroupAsync(7, [new GroupMember("n2", GroupMember.RaftIdOf("n2"), "http://127.0.0.1:2")], join: true);
        Assert.Equal(7UL, host.TryStatus(7)?.GroupId);
        Assert.Contains("kdb_group_term{group=\"7\"}", exporter.Render(), StringComparison.Ordinal);

        Assert.True(await host.RemoveGroupAsync(7));
        Assert.Null(host.TryStatus(7));
        Assert.Equal("42704", Assert.Throws<ClusterException>(() => host.Status(7)).Code);
        Assert.DoesNotContain("group=\"7\"", exporter.Render(), StringComparison.Ordinal);
        Assert.Null(host.TryStatus(8));
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
