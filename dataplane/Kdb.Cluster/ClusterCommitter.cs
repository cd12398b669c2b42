namespace Kdb.Cluster;

/// <summary>Sends a command to a group's leader on another node and returns its apply result (the node implements it over
/// its internal HTTP/2 API). Throws <see cref="ClusterException"/> 08007 when the outcome is unknown.</summary>
public interface IProposalForwarder
{
    /// <summary>Null when the target is not (or no longer) the leader.</summary>
    Task<ApplyResult?> ForwardAsync(GroupMember leader, ulong groupId, byte[] command, CancellationToken cancellationToken);
}

/// <summary>
/// Proposes commands from any replica: on the leader directly, from a follower by forwarding to the leader and then
/// waiting until the local replica has applied the entry (so the caller reads its own writes here).
/// </summary>
public sealed class ClusterCommitter(ClusterHost host, IProposalForwarder forwarder, TimeSpan leaderWait)
{
    public ClusterHost Host => host;

    public async Task<ApplyResult> ProposeAsync(ulong groupId, byte[] command, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + leaderWait;
        var delay = 10;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var outcome = await host.ProposeAsync(groupId, command).WaitAsync(cancellationToken);
            if (outcome.Result is { } applied)
            {
                return applied;
            }
            if (outcome.Leader is { } leader && leader.RaftId != host.RaftId)
            {
                var forwarded = await forwarder.ForwardAsync(leader, groupId, command, cancellationToken);
                if (forwarded is { } result)
                {
                    await host.WaitAppliedAsync(groupId, result.Index).WaitAsync(cancellationToken);
                    return result;
                }
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new ClusterException("40001", "the shard group has no leader; retry the transaction");
            }
            await Task.Delay(delay, cancellationToken);
            delay = Math.Min(delay * 2, 200);
        }
    }
}
