namespace Kdb.Proxy.Routing;

/// <summary>
/// The shard groups the routed databases live on and the replicas their entries name, kept up to date entry by entry:
/// the HTTP front's YARP clusters are built from it in time proportional to the groups, not to the databases (a
/// million routed databases would otherwise be walked on every route change). A replica stays a destination of its
/// group while any routed database's entry names it, with the HTTP address the latest such entry gave.
/// </summary>
internal sealed class GroupRouteIndex
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Group> _groups = new(StringComparer.Ordinal);
    private long _version;

    /// <summary>Moves on whenever a group, a replica or an address appears, changes or goes.</summary>
    public long Version => Interlocked.Read(ref _version);

    /// <summary>Replaces what <paramref name="state"/> contributed by what its current entry contributes, or by nothing
    /// once <paramref name="removed"/>. Reading the entry under the lock, after the caller updated it, makes the last
    /// of two racing updates index the newer entry; what is taken away is exactly what was added.</summary>
    public void Index(DatabaseState state, bool removed)
    {
        lock (_gate)
        {
            if (state.IndexRetired)
            {
                return;
            }

            RouteEntry? entry = removed ? null : state.Entry;
            // Counting the new entry before taking the old one away keeps a group and replicas both name from
            // dropping to zero in between: an update that changes neither changes nothing.
            var changed = false;
            if (entry is not null)
            {
                changed |= Apply(entry, +1);
            }
            else
            {
                state.IndexRetired = true;
            }

            if (state.IndexedEntry is { } previous)
            {
                changed |= Apply(previous, -1);
            }

            state.IndexedEntry = entry;
            if (changed)
            {
                Interlocked.Increment(ref _version);
            }
        }
    }

    /// <summary>Group id → node id → HTTP address, ordered for stable comparison.</summary>
    public SortedDictionary<string, SortedDictionary<string, string>> Snapshot()
    {
        lock (_gate)
        {
            var groups = new SortedDictionary<string, SortedDictionary<string, string>>(StringComparer.Ordinal);
            foreach (var (group, entry) in _groups)
            {
                var nodes = new SortedDictionary<string, string>(StringComparer.Ordinal);
                foreach (var (node, destination) in entry.Destinations)
                {
                    nodes[node] = destination.Address;
                }

                groups[group] = nodes;
            }

            return groups;
        }
    }

    private bool Apply(RouteEntry entry, int delta)
    {
        if (entry.GroupId is not { } group || entry.Replicas is not { Count: > 0 } replicas)
        {
            return false;
        }

        var changed = false;
        if (!_groups.TryGetValue(group, out var known))
        {
            if (delta < 0)
            {
                return false;
            }

            known = new Group();
            _groups[group] = known;
            changed = true;
        }

        known.Databases += delta;
        var destinations = known.Destinations;

        foreach (RouteReplica replica in replicas)
        {
            if (replica.HttpEndpoint is not { Length: > 0 } address)
            {
                continue;
            }

            if (!destinations.TryGetValue(replica.NodeId, out var destination))
            {
                if (delta < 0)
                {
                    continue;
                }

                destination = new Destination();
                destinations[replica.NodeId] = destination;
                changed = true;
            }

            destination.Databases += delta;
            if (destination.Databases <= 0)
            {
                destinations.Remove(replica.NodeId);
                changed = true;
            }
            else if (delta > 0 && !string.Equals(destination.Address, address, StringComparison.Ordinal))
            {
                destination.Address = address;
                changed = true;
            }
        }

        if (known.Databases <= 0)
        {
            _groups.Remove(group);
            changed = true;
        }

        return changed;
    }

    private sealed class Group
    {
        public int Databases;
        public readonly Dictionary<string, Destination> Destinations = new(StringComparer.Ordinal);
    }

    private sealed class Destination
    {
        public int Databases;
        public string Address = string.Empty;
    }
}
