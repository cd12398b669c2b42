using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using Kdb.Node.Admin;
using Kdb.Node.Admin.Wire;
using Kdb.Provisioning.ControlPlane;

namespace Kdb.Provisioning.Placement;

/// <summary>A shard group provisioning may place a database on: its replicas and the leader last seen.</summary>
internal sealed record GroupPlacement(ulong GroupId, IReadOnlyList<string> NodeIds, string? LeaderNodeId);

/// <summary>Placement cannot succeed whatever the fleet does (the id is taken by another tenant): a final failure.</summary>
internal sealed class PlacementImpossibleException(string message) : Exception(message);

/// <summary>
/// Too few alive nodes to form a group right now: transient, because a fleet that has just started (or is being
/// repaired) has not heard every node's heartbeat yet. Retried with backoff; the operation's time-out makes it final.
/// </summary>
internal sealed class FleetNotReadyException(string message) : Exception(message);

/// <summary>
/// The data-plane fleet as provisioning sees it: nodes from the control plane's node list, admin clients for
/// them, and placement. Placement decisions are serialised within the process, and groups this process formed
/// are remembered until heartbeats report them, so concurrent requests neither form needless groups nor
/// overfill one.
/// </summary>
internal sealed class Fleet(ControlPlaneClient controlPlane, HttpClient adminHttp, ProvisioningOptions options)
{
    private readonly SemaphoreSlim _placementGate = new(1, 1);
    private readonly ConcurrentDictionary<Uri, NodeAdminClient> _clients = new();
    private readonly Dictionary<ulong, LocalGroup> _local = [];

    /// <summary>How long one admin call may take on one replica before the next replica is tried.</summary>
    public static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(30);

    private static readonly TimeSpan NodeListReuse = TimeSpan.FromSeconds(1);

    // Placement wants the node list as of now; one fetched this recently (alongside the request's own lookup) is that.
    private static readonly TimeSpan PlacementFreshness = TimeSpan.FromMilliseconds(250);
    private volatile NodeSnapshot? _recentNodes;

    // Only touched under the placement gate.
    private readonly Dictionary<ulong, (IReadOnlyList<string> Voters, long At)> _voters = [];

    public ControlPlaneClient ControlPlane => controlPlane;

    public NodeAdminClient Admin(NodeEntry node) =>
        _clients.GetOrAdd(node.InternalUrl, url => new NodeAdminClient(adminHttp, url, controlPlane.TokenAsync));

    /// <summary>
    /// Chooses a group for a new database and reserves a slot on it: the least-filled group whose replicas are
    /// all alive, else the least-filled whose voters are a live majority with none dead, else a new group of
    /// <see cref="ProvisioningOptions.ReplicasPerGroup"/> replicas on the alive nodes holding the fewest groups.
    /// <paramref name="exclude"/>: a group never chosen (a move's source).
    /// </summary>
    public async Task<GroupPlacement> PlaceAsync(CancellationToken ct, ulong exclude = 0)
    {
        await _placementGate.WaitAsync(ct);
        try
        {
            var nodes = _recentNodes is { } recent && Stopwatch.GetElapsedTime(recent.At) < PlacementFreshness
                ? recent.Nodes
                : await RefreshNodesAsync(ct);
            var alive = nodes.Where(n => n.Alive).ToDictionary(n => n.NodeId, StringComparer.Ordinal);
            var notDead = nodes.Where(n => n.Status != "dead").Select(n => n.NodeId).ToHashSet(StringComparer.Ordinal);
            var groups = KnownGroups(nodes);
            GroupPlacement? best = null;
            GroupPlacement? degraded = null;
            foreach (var (id, g) in groups.Where(g => g.Value.Databases < options.MaxDatabasesPerGroup && g.Key != exclude).OrderBy(g => g.Value.Databases).ThenBy(g => g.Key))
            {
                // Only the voters need to be alive: a node merely holding an old copy may be suspect or restarting.
                if (g.NodeIds.Count < options.ReplicasPerGroup
                    || await VotersAsync(id, g, alive, ct) is not { } voters || voters.Count < options.ReplicasPerGroup)
                {
                    continue;
                }
                if (voters.All(alive.ContainsKey))
                {
                    best = new GroupPlacement(id, voters, g.Leader);
                    break;
                }
                // A voter whose heartbeat is merely late (suspect, as on a loaded machine) still leaves the group a
                // working majority: better than forming a group around the hiccup, which spreads a handful of
                // databases over groups that each cost every node a Raft log and a loop. Dead voters are repair's.
                if (degraded is null && voters.All(notDead.Contains) && voters.Count(alive.ContainsKey) > voters.Count / 2)
                {
                    degraded = new GroupPlacement(id, voters, g.Leader);
                }
            }
            best ??= degraded ?? await FormGroupAsync(alive.Values.ToList(), groups, ct);
            Reserve(best);
            return best;
        }
        finally
        {
            _placementGate.Release();
        }
    }

    /// <summary>
    /// Forms a group ahead of demand when the fleet has none with room: none at all, or every group at least nine tenths
    /// full. A creation then never waits for a new group's election (1–2 s of election timeout, most of a cold first
    /// creation). Groups with a dead replica still count as room: replacing replicas is repair's work, and a group formed
    /// around them would take the spare node repair needs. Returns the new group's id, or null when none was needed or
    /// too few nodes are alive yet.
    /// </summary>
    public async Task<ulong?> FormGroupAheadAsync(CancellationToken ct)
    {
        await _placementGate.WaitAsync(ct);
        try
        {
            var nodes = await RefreshNodesAsync(ct);
            var groups = KnownGroups(nodes);
            var alive = nodes.Where(n => n.Alive).ToList();
            if (groups.Values.Any(g => g.Databases < options.MaxDatabasesPerGroup * 9 / 10) || alive.Count < options.ReplicasPerGroup)
            {
                return null;
            }
            return (await FormGroupAsync(alive, groups, ct)).GroupId;
        }
        finally
        {
            _placementGate.Release();
        }
    }

    /// <summary>
    /// Runs an admin call on a group, trying its leader first, then every other alive replica; a replica that does
    /// not answer within <paramref name="timeout"/> counts as unavailable.
    /// </summary>
    public async Task<T> OnGroupAsync<T>(IReadOnlyList<string> nodeIds, string? leader, Func<NodeAdminClient, CancellationToken, Task<T>> call, TimeSpan timeout, CancellationToken ct)
    {
        var nodes = await RecentNodesAsync(ct);
        var order = nodes.Where(n => nodeIds.Contains(n.NodeId, StringComparer.Ordinal))
            .OrderBy(n => n.NodeId == leader ? 0 : n.Alive ? 1 : 2)
            .ToList();
        if (order.Count == 0)
        {
            throw new HttpRequestException($"no node of [{string.Join(", ", nodeIds)}] is known to the control plane");
        }
        Exception? last = null;
        foreach (var node in order)
        {
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(ct);
            attempt.CancelAfter(timeout);
            try
            {
                return await call(Admin(node), attempt.Token);
            }
            catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
            {
                last = new TimeoutException($"node {node.NodeId} did not answer within {timeout.TotalSeconds} s", e);
            }
            catch (HttpRequestException e)
            {
                last = e;
            }
            catch (NodeAdminException e) when (e.Status is HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout || e.Title == "Not the leader")
            {
                last = e;
            }
        }
        throw new HttpRequestException("no replica of the group could serve the call: " + last?.Message, last);
    }

    /// <summary>
    /// The group's voters as one of its replicas (the leader first) reports them, remembered for
    /// <see cref="NodeListReuse"/>. Heartbeats name every node holding a copy of the group, and that includes a
    /// replica that was removed (by repair or trimming) and still keeps its old copy: placing on it would send clients
    /// to a node that is no longer in the group. When no replica answers, the heartbeats' view.
    /// </summary>
    private async Task<IReadOnlyList<string>> VotersAsync(ulong groupId, KnownGroup known, Dictionary<string, NodeEntry> alive, CancellationToken ct)
    {
        if (_voters.TryGetValue(groupId, out var cached) && Stopwatch.GetElapsedTime(cached.At) < NodeListReuse)
        {
            return cached.Voters;
        }
        foreach (var nodeId in known.NodeIds.OrderBy(n => n == known.Leader ? 0 : 1))
        {
            if (!alive.TryGetValue(nodeId, out var node))
            {
                continue;
            }
            try
            {
                using var call = CancellationTokenSource.CreateLinkedTokenSource(ct);
                call.CancelAfter(TimeSpan.FromSeconds(5));
                if ((await Admin(node).StatusAsync(call.Token)).Groups.FirstOrDefault(g => g.GroupId == groupId) is { Voters.Count: > 0 } info)
                {
                    var voters = info.Voters.ToList();
                    _voters[groupId] = (voters, Stopwatch.GetTimestamp());
                    return voters;
                }
            }
            catch (Exception e) when (e is HttpRequestException or NodeAdminException || (e is OperationCanceledException && !ct.IsCancellationRequested))
            {
            }
        }
        return known.NodeIds;
    }

    /// <summary>
    /// A group as its replicas report it now (asked directly, not from heartbeats): voters from a replica that knows a
    /// leader (else from any), and that leader; null when no alive node hosts the group.
    /// </summary>
    public async Task<GroupPlacement?> GroupAsync(ulong groupId, CancellationToken ct)
    {
        var alive = (await RefreshNodesAsync(ct)).Where(n => n.Alive).ToList();
        var reports = await Task.WhenAll(alive.Select(async node =>
        {
            try
            {
                using var call = CancellationTokenSource.CreateLinkedTokenSource(ct);
                call.CancelAfter(TimeSpan.FromSeconds(5));
                return (await Admin(node).StatusAsync(call.Token)).Groups.FirstOrDefault(g => g.GroupId == groupId);
            }
            catch (Exception e) when (e is HttpRequestException or NodeAdminException || (e is OperationCanceledException && !ct.IsCancellationRequested))
            {
                return null;
            }
        }));
        var best = reports.OfType<GroupInfo>().Where(g => g.Voters.Count > 0).OrderByDescending(g => g.LeaderNodeId.Length > 0).ThenByDescending(g => g.Term).FirstOrDefault();
        return best is null ? null : new GroupPlacement(groupId, [.. best.Voters], best.LeaderNodeId.Length > 0 ? best.LeaderNodeId : null);
    }

    /// <summary>Fetches the node list and keeps it for placement and admin calls.</summary>
    public async Task<IReadOnlyList<NodeEntry>> RefreshNodesAsync(CancellationToken ct)
    {
        var nodes = await controlPlane.NodesAsync(ct);
        _recentNodes = new NodeSnapshot(nodes, Stopwatch.GetTimestamp());
        return nodes;
    }

    /// <summary>
    /// The node list, fetched at most once per <see cref="NodeListReuse"/>: an admin call only needs the replicas'
    /// endpoints (stable across restarts) and a hint of who is alive (a stale one only changes the order tried).
    /// Placement and repair read the list fresh.
    /// </summary>
    private async Task<IReadOnlyList<NodeEntry>> RecentNodesAsync(CancellationToken ct)
    {
        return _recentNodes is { } recent && Stopwatch.GetElapsedTime(recent.At) < NodeListReuse
            ? recent.Nodes
            : await RefreshNodesAsync(ct);
    }

    private async Task<GroupPlacement> FormGroupAsync(List<NodeEntry> alive, Dictionary<ulong, KnownGroup> groups, CancellationToken ct)
    {
        if (alive.Count < options.ReplicasPerGroup)
        {
            throw new FleetNotReadyException($"a new shard group needs {options.ReplicasPerGroup} alive nodes; the control plane lists {alive.Count} alive");
        }
        var load = alive.ToDictionary(n => n.NodeId, n => groups.Values.Count(g => g.NodeIds.Contains(n.NodeId)), StringComparer.Ordinal);
        var members = alive.OrderBy(n => load[n.NodeId]).ThenBy(n => n.NodeId, StringComparer.Ordinal).Take(options.ReplicasPerGroup).ToList();
        ulong groupId;
        do
        {
            groupId = BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8)) >> 1;
        }
        while (groupId == 0 || groups.ContainsKey(groupId));
        var request = new CreateGroupRequest { GroupId = groupId };
        request.Members.AddRange(members.Select(m => new Member { NodeId = m.NodeId, InternalUrl = m.InternalUrl.ToString().TrimEnd('/') }));
        // All members at once: the group elects as soon as a majority holds it.
        await Task.WhenAll(members.Select(async m =>
        {
            using var call = CancellationTokenSource.CreateLinkedTokenSource(ct);
            call.CancelAfter(CallTimeout);
            await Admin(m).CreateGroupAsync(request, call.Token);
        }));
        var leader = await WaitForLeaderAsync(groupId, members, ct);
        var placement = new GroupPlacement(groupId, members.Select(m => m.NodeId).ToList(), leader);
        _local[groupId] = new LocalGroup(placement.NodeIds, leader, 0);
        return placement;
    }

    private async Task<string> WaitForLeaderAsync(ulong groupId, List<NodeEntry> members, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(options.GroupLeaderTimeout);
        while (true)
        {
            foreach (var m in members)
            {
                try
                {
                    var status = await Admin(m).StatusAsync(timeout.Token);
                    if (status.Groups.FirstOrDefault(g => g.GroupId == groupId) is { LeaderNodeId.Length: > 0 } g)
                    {
                        return g.LeaderNodeId;
                    }
                }
                catch (HttpRequestException)
                {
                }
            }
            try
            {
                await Task.Delay(50, timeout.Token);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new HttpRequestException($"shard group {groupId} elected no leader within {options.GroupLeaderTimeout.TotalSeconds} s");
            }
        }
    }

    /// <summary>Groups from heartbeats, merged with groups formed here that heartbeats do not show (fully) yet.</summary>
    private Dictionary<ulong, KnownGroup> KnownGroups(IReadOnlyList<NodeEntry> nodes)
    {
        var groups = new Dictionary<ulong, KnownGroup>();
        // A dead node's last heartbeat keeps listing groups it has since been removed from by repair.
        foreach (var n in nodes.Where(n => n.Status != "dead"))
        {
            foreach (var g in n.Groups)
            {
                if (!groups.TryGetValue(g.GroupId, out var known))
                {
                    groups[g.GroupId] = known = new KnownGroup([], null, 0);
                }
                known.NodeIds.Add(n.NodeId);
                known.Databases = Math.Max(known.Databases, g.Databases);
                known.Leader ??= g.LeaderNodeId is { Length: > 0 } l ? l : null;
            }
        }
        foreach (var (id, local) in _local)
        {
            if (!groups.TryGetValue(id, out var known))
            {
                groups[id] = new KnownGroup([.. local.NodeIds], local.Leader, local.Reserved);
            }
            else
            {
                // Heartbeats lag behind our reservations: count whichever is larger. They also lag behind the group's
                // formation: a member that has not reported the group yet is still one of the members it was formed
                // on, and without it the group would look too small to place on, and a second group would be formed
                // beside it. Which of them are voters now is asked of the group itself (VotersAsync).
                known.Databases = Math.Max(known.Databases, local.Reserved);
                foreach (var nodeId in local.NodeIds)
                {
                    if (!known.NodeIds.Contains(nodeId))
                    {
                        known.NodeIds.Add(nodeId);
                    }
                }
            }
        }
        return groups;
    }

    private void Reserve(GroupPlacement placement)
    {
        _local[placement.GroupId] = _local.TryGetValue(placement.GroupId, out var local)
            ? local with { Reserved = local.Reserved + 1 }
            : new LocalGroup(placement.NodeIds, placement.LeaderNodeId, 1);
    }

    private sealed class KnownGroup(List<string> nodeIds, string? leader, int databases)
    {
        public List<string> NodeIds { get; } = nodeIds;
        public string? Leader { get; set; } = leader;
        public int Databases { get; set; } = databases;
    }

    private sealed record NodeSnapshot(IReadOnlyList<NodeEntry> Nodes, long At);

    private sealed record LocalGroup(IReadOnlyList<string> NodeIds, string? Leader, int Reserved);
}
