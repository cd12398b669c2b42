using System.Net;
using Kdb.Node.Admin;
using Kdb.Node.Admin.Wire;
using Kdb.Provisioning.ControlPlane;
using Kdb.Provisioning.Placement;
using Microsoft.Extensions.Logging;

namespace Kdb.Provisioning.Repair;

/// <summary>
/// Replaces the replicas of nodes the control plane lists as <c>dead</c>: for each group whose membership (as its
/// leader reports it) names a dead node, a live node outside the group joins as a learner, catches up, is promoted,
/// and the dead member is removed; a group left with more voters than it should have gives up the surplus; then every
/// database of the group gets its new placement. Each step first checks
/// whether it is already done, so a round cut short (crash, leader change, timeout) is finished by the next one.
/// </summary>
internal sealed class NodeRepair(Fleet fleet, ProvisioningOptions options, ILogger<NodeRepair> logger)
{
    private static readonly TimeSpan StatusTimeout = TimeSpan.FromSeconds(5);

    // Groups whose placements were written for a given voter set: rewritten only when the set changes again.
    private readonly HashSet<string> _placementsWritten = new(StringComparer.Ordinal);

    /// <summary>One repair round; returns how many dead replicas were replaced.</summary>
    public async Task<int> RepairOnceAsync(CancellationToken ct)
    {
        var nodes = await fleet.ControlPlane.NodesAsync(ct);
        var dead = nodes.Where(n => n.Status == "dead").Select(n => n.NodeId).ToHashSet(StringComparer.Ordinal);
        var alive = nodes.Where(n => n.Alive).ToList();
        var statuses = new Dictionary<string, StatusResponse>(StringComparer.Ordinal);
        foreach (var n in alive)
        {
            if (await TryStatusAsync(n, ct) is { } s)
            {
                statuses[n.NodeId] = s;
            }
        }
        // Before any membership changes this round, so the statuses agree with what the leaders list.
        await RemoveLeftCopiesAsync(alive, statuses, ct);
        var replaced = 0;
        foreach (var leader in alive.Where(n => statuses.ContainsKey(n.NodeId)))
        {
            foreach (var group in statuses[leader.NodeId].Groups.Where(g => g.Role == "leader" && NeedsRepair(g, dead)))
            {
                try
                {
                    replaced += await RepairGroupAsync(leader, group, dead, alive, statuses, ct);
                }
                catch (Exception e) when (e is HttpRequestException or NodeAdminException or TimeoutException || (e is OperationCanceledException && !ct.IsCancellationRequested))
                {
                    // The next round starts over from what the nodes then report.
                    logger.LogWarning("repair of group {Group} stopped: {Reason}", group.GroupId, e.Message);
                }
            }
        }
        return replaced;
    }

    private async Task<int> RepairGroupAsync(NodeEntry leader, GroupInfo group, HashSet<string> dead, List<NodeEntry> alive, Dictionary<string, StatusResponse> statuses, CancellationToken ct)
    {
        var replaced = 0;
        foreach (var gone in group.Voters.Concat(group.Learners).Where(dead.Contains).ToList())
        {
            await ReplaceAsync(leader, group, gone, alive, statuses, ct);
            group = await GroupOnAsync(leader, group.GroupId, ct) ?? throw new HttpRequestException($"node {leader.NodeId} no longer reports group {group.GroupId}");
            replaced++;
        }
        if (group.Voters.Any(dead.Contains) || group.Learners.Count > 0)
        {
            return replaced;
        }
        group = await TrimAsync(leader, group, statuses, ct);
        var voters = group.Voters.Order(StringComparer.Ordinal).ToList();
        var key = group.GroupId + ":" + string.Join(',', voters);
        if (_placementsWritten.Contains(key))
        {
            return replaced;
        }
        var databases = await fleet.Admin(leader).DatabasesAsync(group.GroupId, ct);
        foreach (var d in databases.Databases)
        {
            if (await fleet.ControlPlane.PlacementAsync(d.DatabaseId, ct) is { GroupId: { } placed } p && placed == group.GroupId
                && !p.ReplicaNodeIds.Order(StringComparer.Ordinal).SequenceEqual(voters, StringComparer.Ordinal))
            {
                await fleet.ControlPlane.PutPlacementAsync(d.DatabaseId, group.GroupId, voters, ct);
                logger.LogInformation("placement of {Database} now on [{Voters}]", d.DatabaseId, string.Join(", ", voters));
            }
        }
        _placementsWritten.Add(key);
        return replaced;
    }

    /// <summary>Adds a live replacement for <paramref name="gone"/> (learner, catch-up, promotion), then removes it.</summary>
    private async Task ReplaceAsync(NodeEntry leader, GroupInfo group, string gone, List<NodeEntry> alive, Dictionary<string, StatusResponse> statuses, CancellationToken ct)
    {
        var admin = fleet.Admin(leader);
        var members = group.Voters.Concat(group.Learners).ToHashSet(StringComparer.Ordinal);
        // A learner left by an interrupted round is the replacement already under way.
        var target = alive.FirstOrDefault(n => group.Learners.Contains(n.NodeId))
            ?? alive.Where(n => !members.Contains(n.NodeId) && statuses.ContainsKey(n.NodeId))
                // A node holding a copy from before it was removed would refuse to join with other members.
                .OrderBy(n => statuses[n.NodeId].Groups.Any(g => g.GroupId == group.GroupId) ? 1 : 0)
                .ThenBy(n => statuses[n.NodeId].Groups.Count)
                .ThenBy(n => n.NodeId, StringComparer.Ordinal)
                .FirstOrDefault();
        if (target is null)
        {
            throw new HttpRequestException($"no live node outside group {group.GroupId} can replace {gone}");
        }
        var member = new Member { NodeId = target.NodeId, InternalUrl = target.InternalUrl.ToString().TrimEnd('/') };
        logger.LogInformation("replacing {Gone} in group {Group} with {Target}", gone, group.GroupId, target.NodeId);
        if (!members.Contains(target.NodeId))
        {
            if (await GroupOnAsync(target, group.GroupId, ct) is null)
            {
                var join = new CreateGroupRequest { GroupId = group.GroupId, Join = true };
                join.Members.AddRange(group.Members.Where(m => m.NodeId != target.NodeId));
                join.Members.Add(member);
                await WithTimeoutAsync(t => fleet.Admin(target).CreateGroupAsync(join, t), ct);
            }
            await WithTimeoutAsync(t => admin.ChangeReplicaAsync(group.GroupId, new ChangeReplicaRequest { Change = ReplicaChange.AddLearner, Member = member }, t), ct);
        }
        if (!group.Voters.Contains(target.NodeId))
        {
            await WaitCaughtUpAsync(leader, target, group.GroupId, ct);
            await WithTimeoutAsync(t => admin.ChangeReplicaAsync(group.GroupId, new ChangeReplicaRequest { Change = ReplicaChange.Promote, Member = member }, t), ct);
        }
        await RemoveAsync(leader, group, gone, ct);
        logger.LogInformation("replaced {Gone} in group {Group} with {Target}", gone, group.GroupId, target.NodeId);
    }

    /// <summary>
    /// A group with more voters than <see cref="ProvisioningOptions.ReplicasPerGroup"/> (a replaced node that came back
    /// between its replacement's promotion and its own removal, or a replica added by hand) gives up the surplus: the
    /// voter furthest behind goes first (the one that was away), then the busiest; never the leader.
    /// </summary>
    private async Task<GroupInfo> TrimAsync(NodeEntry leader, GroupInfo group, Dictionary<string, StatusResponse> statuses, CancellationToken ct)
    {
        while (group.Voters.Count > options.ReplicasPerGroup)
        {
            var groupId = group.GroupId;
            var surplus = group.Voters.Where(v => v != leader.NodeId)
                .OrderBy(v => statuses.TryGetValue(v, out var s) ? s.Groups.FirstOrDefault(g => g.GroupId == groupId)?.AppliedIndex ?? 0 : 0)
                .ThenByDescending(v => statuses.TryGetValue(v, out var s) ? s.Groups.Count : int.MaxValue)
                .ThenBy(v => v, StringComparer.Ordinal)
                .First();
            logger.LogInformation("group {Group} has {Voters} voters; removing {Surplus}", groupId, group.Voters.Count, surplus);
            await RemoveAsync(leader, group, surplus, ct);
            group = await GroupOnAsync(leader, groupId, ct) ?? throw new HttpRequestException($"node {leader.NodeId} no longer reports group {groupId}");
        }
        return group;
    }

    /// <summary>Removes a member through the leader; a refusal because it is already gone counts as done.</summary>
    private async Task RemoveAsync(NodeEntry leader, GroupInfo group, string nodeId, CancellationToken ct)
    {
        var member = group.Members.FirstOrDefault(m => m.NodeId == nodeId) ?? new Member { NodeId = nodeId, InternalUrl = "http://127.0.0.1:1" };
        try
        {
            await WithTimeoutAsync(t => fleet.Admin(leader).ChangeReplicaAsync(group.GroupId, new ChangeReplicaRequest { Change = ReplicaChange.Remove, Member = member }, t), ct);
        }
        catch (NodeAdminException e) when (e.Status == HttpStatusCode.Conflict && e.Title != "Not the leader")
        {
            // Refused because an earlier attempt, whose answer was lost, removed it already? Anything else is real.
            if (await GroupOnAsync(leader, group.GroupId, ct) is not { } now || now.Voters.Contains(nodeId) || now.Learners.Contains(nodeId))
            {
                throw;
            }
        }
    }

    /// <summary>
    /// Deletes the copies of groups that nodes have left (a replaced node that came back, a trimmed voter): a copy whose
    /// group's leader (the newest term reported) lists its node neither as voter nor as learner, and that has applied
    /// something (so a join under way is never taken for a leftover). A node that still hears from a leader listing it
    /// refuses (409), and a later round tries again.
    /// </summary>
    private async Task RemoveLeftCopiesAsync(List<NodeEntry> alive, Dictionary<string, StatusResponse> statuses, CancellationToken ct)
    {
        var leaders = new Dictionary<ulong, GroupInfo>();
        foreach (var g in statuses.Values.SelectMany(s => s.Groups).Where(g => g.Role == "leader"))
        {
            if (!leaders.TryGetValue(g.GroupId, out var seen) || g.Term > seen.Term)
            {
                leaders[g.GroupId] = g;
            }
        }
        foreach (var node in alive.Where(n => statuses.ContainsKey(n.NodeId)))
        {
            foreach (var copy in statuses[node.NodeId].Groups)
            {
                // A copy that never applied anything is a join in progress (created before the leader adds it): it stays.
                if (copy.Role == "leader" || copy.AppliedIndex == 0 || !leaders.TryGetValue(copy.GroupId, out var leader)
                    || leader.Voters.Contains(node.NodeId) || leader.Learners.Contains(node.NodeId))
                {
                    continue;
                }
                try
                {
                    await WithTimeoutAsync(async t =>
                    {
                        await fleet.Admin(node).RemoveGroupAsync(copy.GroupId, t);
                        return true;
                    }, ct);
                    logger.LogInformation("removed {Node}'s copy of group {Group}, which it has left", node.NodeId, copy.GroupId);
                }
                catch (Exception e) when (e is HttpRequestException or NodeAdminException || (e is OperationCanceledException && !ct.IsCancellationRequested))
                {
                    logger.LogInformation("{Node}'s copy of group {Group} stays for now: {Reason}", node.NodeId, copy.GroupId, e.Message);
                }
            }
        }
    }

    /// <summary>A member on a dead node, or more voters than a group should have and no learner mid-join.</summary>
    private bool NeedsRepair(GroupInfo group, HashSet<string> dead) =>
        group.Voters.Concat(group.Learners).Any(dead.Contains) || (group.Learners.Count == 0 && group.Voters.Count > options.ReplicasPerGroup);

    /// <summary>Waits until the learner has applied what the leader had committed when the wait began.</summary>
    private async Task WaitCaughtUpAsync(NodeEntry leader, NodeEntry learner, ulong groupId, CancellationToken ct)
    {
        var goal = (await GroupOnAsync(leader, groupId, ct))?.CommitIndex ?? throw new HttpRequestException($"node {leader.NodeId} no longer reports group {groupId}");
        var deadline = DateTime.UtcNow + options.RepairCatchUpTimeout;
        while ((await GroupOnAsync(learner, groupId, ct))?.AppliedIndex is not { } applied || applied < goal)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"learner {learner.NodeId} of group {groupId} did not reach index {goal} within {options.RepairCatchUpTimeout.TotalSeconds} s");
            }
            await Task.Delay(100, ct);
        }
    }

    private async Task<GroupInfo?> GroupOnAsync(NodeEntry node, ulong groupId, CancellationToken ct) =>
        (await WithTimeoutAsync(t => fleet.Admin(node).StatusAsync(t), ct)).Groups.FirstOrDefault(g => g.GroupId == groupId);

    private async Task<StatusResponse?> TryStatusAsync(NodeEntry node, CancellationToken ct)
    {
        try
        {
            return await WithTimeoutAsync(t => fleet.Admin(node).StatusAsync(t), ct);
        }
        catch (Exception e) when (e is HttpRequestException or NodeAdminException || (e is OperationCanceledException && !ct.IsCancellationRequested))
        {
            return null;
        }
    }

    private static async Task<T> WithTimeoutAsync<T>(Func<CancellationToken, Task<T>> call, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(Fleet.CallTimeout);
        return await call(timeout.Token);
    }
}
