using System.Collections.Concurrent;

namespace Kdb.Proxy.Routing;

/// <summary>
/// The proxy's copy of the route table, kept current by <see cref="RouteFollower"/>, plus what the proxy
/// learns itself: the leader each node names in <c>kdb_leader</c>, and per-database session state.
/// </summary>
public interface IRouteCache
{
    /// <summary>True once a full table has been loaded.</summary>
    bool Loaded { get; }

    /// <summary>The version of the last change applied.</summary>
    long Version { get; }

    /// <summary>
    /// The entry for <paramref name="databaseId"/>: from the cache, else fetched synchronously from the control
    /// plane (at most once per name per <see cref="ProxyOptions.RouteMissRetry"/>, so guessing names cannot load it).
    /// Null when there is no such database.
    /// </summary>
    ValueTask<DatabaseState?> ResolveAsync(string databaseId, CancellationToken cancellationToken);

    /// <summary>The databases currently routed.</summary>
    IEnumerable<DatabaseState> Databases { get; }

    /// <summary>Applies one long-poll answer.</summary>
    void Apply(RoutesResponse response);

    /// <summary>Records the leader a node reported for a group, so the next connection prefers it.</summary>
    void ReportLeader(string groupId, string nodeId);

    /// <summary>The replicas of the entry in the order to try them: the known leader first.</summary>
    IReadOnlyList<RouteReplica> ReplicasInOrder(RouteEntry entry);

    /// <summary>The shard groups of the routed databases and their replicas' HTTP addresses (group id → node id →
    /// address), kept entry by entry so reading it costs the groups, not the databases.</summary>
    SortedDictionary<string, SortedDictionary<string, string>> GroupDestinations();

    /// <summary>Moves on whenever <see cref="GroupDestinations"/> would answer differently.</summary>
    long GroupsVersion { get; }

    /// <summary>Raised after entries were added, changed or removed (the HTTP front's YARP configuration follows it).</summary>
    event Action? Changed;
}

internal sealed partial class RouteCache(IControlPlaneClient controlPlane, ProxyOptions options, TimeProvider time, ILogger<RouteCache> logger) : IRouteCache
{
    // Bounds memory under a flood of random names: the miss table is cleared when it grows past this.
    private const int MaxRememberedMisses = 10_000;

    private readonly ConcurrentDictionary<string, DatabaseState> _databases = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _missFetchedAt = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _leaders = new(StringComparer.Ordinal);
    private readonly GroupRouteIndex _groups = new();
    private long _version;
    private volatile bool _loaded;

    public bool Loaded => _loaded;

    public long Version => Interlocked.Read(ref _version);

    public IEnumerable<DatabaseState> Databases => _databases.Values;

    public event Action? Changed;

    public long GroupsVersion => _groups.Version;

    public SortedDictionary<string, SortedDictionary<string, string>> GroupDestinations() => _groups.Snapshot();

    public ValueTask<DatabaseState?> ResolveAsync(string databaseId, CancellationToken cancellationToken)
    {
        if (_databases.TryGetValue(databaseId, out DatabaseState? state) && !state.Removed)
        {
            return ValueTask.FromResult<DatabaseState?>(state);
        }

        return FetchAsync(databaseId, cancellationToken);
    }

    public void Apply(RoutesResponse response)
    {
        if (response.Full)
        {
            var present = new HashSet<string>(StringComparer.Ordinal);
            foreach (RouteEntry entry in response.Upserts ?? [])
            {
                present.Add(entry.DatabaseId);
            }

            foreach (KeyValuePair<string, DatabaseState> known in _databases)
            {
                if (!present.Contains(known.Key))
                {
                    Remove(known.Key);
                }
            }
        }

        foreach (RouteEntry entry in response.Upserts ?? [])
        {
            Upsert(entry);
        }

        foreach (string removed in response.Removals ?? [])
        {
            Remove(removed);
        }

        Interlocked.Exchange(ref _version, response.Version);
        _loaded = true;
        Changed?.Invoke();
    }

    public void ReportLeader(string groupId, string nodeId) => _leaders[groupId] = nodeId;

    public IReadOnlyList<RouteReplica> ReplicasInOrder(RouteEntry entry)
    {
        IReadOnlyList<RouteReplica> replicas = entry.Replicas ?? [];
        string? leader = entry.GroupId is { } g && _leaders.TryGetValue(g, out string? reported) ? reported : entry.LeaderNodeId;
        if (leader is null || replicas.Count < 2 || replicas[0].NodeId == leader)
        {
            return replicas;
        }

        var ordered = new List<RouteReplica>(replicas.Count);
        foreach (RouteReplica r in replicas)
        {
            if (r.NodeId == leader)
            {
                ordered.Add(r);
            }
        }

        foreach (RouteReplica r in replicas)
        {
            if (r.NodeId != leader)
            {
                ordered.Add(r);
            }
        }

        return ordered;
    }

    private void Upsert(RouteEntry entry)
    {
        // A leader named by the control plane is newer than what a node said before this version arrived.
        if (entry.GroupId is { } group && entry.LeaderNodeId is { } leader)
        {
            _leaders[group] = leader;
        }

        DatabaseState state = _databases.GetOrAdd(entry.DatabaseId, static (_, e) => new DatabaseState(e), entry);
        state.Update(entry);
        _groups.Index(state, removed: false);
        _missFetchedAt.TryRemove(entry.DatabaseId, out _);
    }

    private void Remove(string databaseId)
    {
        if (_databases.TryRemove(databaseId, out DatabaseState? state))
        {
            _groups.Index(state, removed: true);
            state.MarkRemoved(options.RemovalDrain);
        }
    }

    private async ValueTask<DatabaseState?> FetchAsync(string databaseId, CancellationToken cancellationToken)
    {
        long now = time.GetTimestamp();
        if (_missFetchedAt.TryGetValue(databaseId, out long last) && time.GetElapsedTime(last, now) < options.RouteMissRetry)
        {
            return null;
        }

        if (_missFetchedAt.Count > MaxRememberedMisses)
        {
            _missFetchedAt.Clear();
        }

        _missFetchedAt[databaseId] = now;
        RouteEntry? entry;
        try
        {
            entry = await controlPlane.GetRouteAsync(databaseId, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            // Not a miss: the control plane did not answer, so the next attempt asks again.
            _missFetchedAt.TryRemove(databaseId, out _);
            LogFetchFailed(logger, databaseId, e.Message);
            return null;
        }

        if (entry is null || !string.Equals(entry.DatabaseId, databaseId, StringComparison.Ordinal))
        {
            return null;
        }

        Upsert(entry);
        Changed?.Invoke();
        return _databases.TryGetValue(databaseId, out DatabaseState? state) ? state : null;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not fetch the route of {DatabaseId}: {Reason}")]
    private static partial void LogFetchFailed(ILogger logger, string databaseId, string reason);
}
