using Kdb.Proxy.Http;
using Kdb.Proxy.Routing;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kdb.Proxy.Tests;

/// <summary>The HTTP front's YARP clusters follow the route cache's group index, kept entry by entry: the same
/// clusters a walk over every database would give, and no rebuild for a change that touches no group.</summary>
public sealed class GroupRouteIndexTests : IDisposable
{
    private readonly HttpClient _http = new() { BaseAddress = new Uri("http://127.0.0.1:9") };

    [Fact]
    public void Clusters_follow_databases_joining_moving_and_leaving_groups()
    {
        var cache = NewCache();
        using var config = new RouteTableProxyConfig(cache);
        cache.Apply(new RoutesResponse(1, true, [Entry("db_a", "7", "n1", "n2"), Entry("db_b", "7", "n1", "n2"), Entry("db_c", "8", "n3")], []));
        config.Refresh();
        Assert.Equal(["unrouted", "group-7", "group-8"], config.GetConfig().Clusters.Select(c => c.ClusterId));
        Assert.Equal(["n1", "n2"], Destinations(config, "group-7"));
        Assert.Equal("http://n3:80", config.GetConfig().Clusters.Single(c => c.ClusterId == "group-8").Destinations!["n3"].Address);

        // db_c moves to group 7 on a third replica: group 8 has no database left.
        cache.Apply(new RoutesResponse(2, false, [Entry("db_c", "7", "n1", "n2", "n4")], []));
        config.Refresh();
        Assert.Equal(["unrouted", "group-7"], config.GetConfig().Clusters.Select(c => c.ClusterId));
        Assert.Equal(["n1", "n2", "n4"], Destinations(config, "group-7"));

        // n4 stays a destination while any entry names it; it goes with the last one.
        cache.Apply(new RoutesResponse(3, false, [], ["db_c"]));
        config.Refresh();
        Assert.Equal(["n1", "n2"], Destinations(config, "group-7"));

        // A full load that leaves one database out takes its group's replicas with it.
        cache.Apply(new RoutesResponse(4, true, [Entry("db_a", "9", "n5")], []));
        config.Refresh();
        Assert.Equal(["unrouted", "group-9"], config.GetConfig().Clusters.Select(c => c.ClusterId));
        Assert.Equal(["n5"], Destinations(config, "group-9"));
    }

    [Fact]
    public void A_change_that_touches_no_group_keeps_the_configuration_and_its_change_token()
    {
        var cache = NewCache();
        using var config = new RouteTableProxyConfig(cache);
        cache.Apply(new RoutesResponse(1, true, [Entry("db_a", "7", "n1", "n2")], []));
        config.Refresh();
        var before = config.GetConfig();
        long version = cache.GroupsVersion;

        cache.Apply(new RoutesResponse(2, false, [Entry("db_a", "7", "n1", "n2") with { QuotaState = "throttled" }, Entry("db_b", "7", "n2", "n1")], []));
        config.Refresh();

        Assert.Equal(version, cache.GroupsVersion);
        Assert.Same(before, config.GetConfig());
        Assert.False(before.ChangeToken.HasChanged);
    }

    [Fact]
    public void A_new_http_address_for_a_replica_replaces_the_old_one()
    {
        var cache = NewCache();
        using var config = new RouteTableProxyConfig(cache);
        cache.Apply(new RoutesResponse(1, true, [Entry("db_a", "7", "n1")], []));
        config.Refresh();
        var before = config.GetConfig();

        cache.Apply(new RoutesResponse(2, false, [Entry("db_a", "7", "n1") with { Replicas = [new RouteReplica("n1", "127.0.0.1:1", "http://n1:81")] }], []));
        config.Refresh();

        Assert.True(before.ChangeToken.HasChanged);
        Assert.Equal("http://n1:81", config.GetConfig().Clusters.Single(c => c.ClusterId == "group-7").Destinations!["n1"].Address);
    }

    [Fact]
    public async Task Racing_updates_of_many_databases_leave_the_index_equal_to_the_table()
    {
        var cache = NewCache();
        var tasks = new List<Task>();
        for (int worker = 0; worker < 4; worker++)
        {
            int w = worker;
            tasks.Add(Task.Run(() =>
            {
                for (int i = 0; i < 500; i++)
                {
                    string id = "db_" + (i % 50);
                    string group = ((i + w) % 3).ToString(System.Globalization.CultureInfo.InvariantCulture);
                    if ((i + w) % 7 == 0)
                    {
                        cache.Apply(new RoutesResponse(i, false, [], [id]));
                    }
                    else
                    {
                        cache.Apply(new RoutesResponse(i, false, [Entry(id, group, "n" + group, "m" + group)], []));
                    }
                }
            }));
        }

        await Task.WhenAll(tasks);

        var expected = new SortedDictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        foreach (DatabaseState db in cache.Databases)
        {
            if (!expected.TryGetValue(db.Entry.GroupId!, out var nodes))
            {
                expected[db.Entry.GroupId!] = nodes = new SortedSet<string>(StringComparer.Ordinal);
            }

            foreach (RouteReplica r in db.Entry.Replicas!)
            {
                nodes.Add(r.NodeId);
            }
        }

        var actual = cache.GroupDestinations();
        Assert.Equal(expected.Keys, actual.Keys);
        foreach (var (group, nodes) in expected)
        {
            Assert.Equal(nodes, actual[group].Keys);
        }
    }

    private RouteCache NewCache() => new(
        new ControlPlaneClient(_http, "p", _ => ValueTask.FromResult("t")),
        new ProxyOptions { RemovalDrain = TimeSpan.Zero },
        TimeProvider.System,
        NullLogger<RouteCache>.Instance);

    private static string[] Destinations(RouteTableProxyConfig config, string clusterId) =>
        config.GetConfig().Clusters.Single(c => c.ClusterId == clusterId).Destinations!.Keys.Order(StringComparer.Ordinal).ToArray();

    private static RouteEntry Entry(string id, string group, params string[] nodes) => new(
        id, "1", "org_x", group,
        nodes.Select(n => new RouteReplica(n, "127.0.0.1:1", $"http://{n}:80")).ToArray(),
        nodes[0], [], "ok", new RouteLimits(10, 100), null, 1);

    public void Dispose() => _http.Dispose();
}
