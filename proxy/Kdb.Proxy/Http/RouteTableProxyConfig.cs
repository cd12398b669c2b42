using Kdb.Proxy.Routing;
using Microsoft.Extensions.Primitives;
using Yarp.ReverseProxy.Configuration;

namespace Kdb.Proxy.Http;

/// <summary>
/// YARP's configuration from the route table, updated live: one cluster per shard group whose destinations are the
/// group's replicas (by node id, at their HTTP endpoints), and one route for DESIGN's path form. The route points at a
/// cluster with no destination: the front's pipeline step reassigns each request to its database's group cluster,
/// since a route per database would not scale with the table. Clusters come from the route cache's group index, so a
/// route change costs the groups, not the databases, and one that touches no group's replicas costs nothing. (The
/// host form is rewritten onto the path form before routing.)
/// </summary>
internal sealed class RouteTableProxyConfig : IProxyConfigProvider, IDisposable
{
    public const string RouteId = "data-api";
    public const string UnroutedCluster = "unrouted";

    private readonly IRouteCache _routes;
    private readonly Lock _gate = new();
    private Snapshot _current;
    private long _builtFrom;

    public RouteTableProxyConfig(IRouteCache routes)
    {
        _routes = routes;
        _builtFrom = routes.GroupsVersion;
        _current = Build(routes);
        routes.Changed += Refresh;
    }

    /// <summary>The cluster id of a shard group.</summary>
    public static string ClusterId(string groupId) => "group-" + groupId;

    public IProxyConfig GetConfig() => _current;

    /// <summary>Rebuilds the configuration when the groups or their replicas changed; YARP applies it on the signal.</summary>
    public void Refresh()
    {
        Snapshot previous;
        Snapshot next;
        lock (_gate)
        {
            long version = _routes.GroupsVersion;
            if (version == _builtFrom)
            {
                return;
            }

            _builtFrom = version;
            next = Build(_routes);
            if (Same(_current.Clusters, next.Clusters))
            {
                return;
            }

            previous = _current;
            _current = next;
        }

        previous.Signal();
    }

    public void Dispose() => _routes.Changed -= Refresh;

    private static Snapshot Build(IRouteCache routes)
    {
        SortedDictionary<string, SortedDictionary<string, string>> groups = routes.GroupDestinations();
        var clusters = new List<ClusterConfig>(groups.Count + 1) { new() { ClusterId = UnroutedCluster } };
        foreach (var (group, nodes) in groups)
        {
            var destinations = new Dictionary<string, DestinationConfig>(nodes.Count, StringComparer.Ordinal);
            foreach (var (node, address) in nodes)
            {
                destinations[node] = new DestinationConfig { Address = address };
            }

            clusters.Add(new ClusterConfig
            {
                ClusterId = ClusterId(group),
                Destinations = destinations,
                HttpRequest = new Yarp.ReverseProxy.Forwarder.ForwarderRequestConfig { ActivityTimeout = TimeSpan.FromSeconds(100) },
            });
        }

        RouteConfig route = new()
        {
            RouteId = RouteId,
            ClusterId = UnroutedCluster,
            Match = new RouteMatch { Path = "/v1/databases/{databaseId}/{**rest}" },
        };
        return new Snapshot([route], clusters);
    }

    private static bool Same(IReadOnlyList<ClusterConfig> a, IReadOnlyList<ClusterConfig> b)
    {
        if (a.Count != b.Count)
        {
            return false;
        }

        for (int i = 0; i < a.Count; i++)
        {
            if (!a[i].Equals(b[i]))
            {
                return false;
            }
        }

        return true;
    }

    private sealed class Snapshot : IProxyConfig
    {
        private readonly CancellationTokenSource _changed = new();

        public Snapshot(IReadOnlyList<RouteConfig> routes, IReadOnlyList<ClusterConfig> clusters)
        {
            Routes = routes;
            Clusters = clusters;
            ChangeToken = new CancellationChangeToken(_changed.Token);
        }

        public IReadOnlyList<RouteConfig> Routes { get; }

        public IReadOnlyList<ClusterConfig> Clusters { get; }

        public IChangeToken ChangeToken { get; }

        public void Signal() => _changed.Cancel();
    }
}
