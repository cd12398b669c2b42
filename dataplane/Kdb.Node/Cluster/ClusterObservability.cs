using System.Diagnostics.Metrics;
using Kdb.Cluster;
using Kdb.Raft;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Kdb.Node.Cluster;

/// <summary>
/// Per-group series on the management port's <c>/metrics</c>: Raft progress and leadership, storage and the learned
/// index's probe statistics. Group ids are the only label, so cardinality is the number of hosted groups.
/// </summary>
internal sealed class ClusterMetrics : IDisposable
{
    private readonly Meter _meter = new("Kdb.Node.Cluster");

    public ClusterMetrics(ClusterHost host)
    {
        IEnumerable<Measurement<long>> PerGroup(Func<GroupStatus, Kdb.Storage.EngineStats, long> value)
        {
            foreach (var id in host.GroupIds)
            {
                if (!host.HasGroup(id))
                {
                    continue;
                }
                var s = host.Status(id);
                yield return new Measurement<long>(value(s, host.Engine(id).Stats), new KeyValuePair<string, object?>("group", id.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            }
        }
        _meter.CreateObservableGauge("kdb_group_applied_index", () => PerGroup((s, _) => (long)s.AppliedIndex), description: "Last log index applied by this replica");
        _meter.CreateObservableGauge("kdb_group_apply_lag", () => PerGroup((s, _) => (long)(s.CommitIndex - Math.Min(s.CommitIndex, s.AppliedIndex))), description: "Committed entries not yet applied");
        _meter.CreateObservableGauge("kdb_group_is_leader", () => PerGroup((s, _) => s.Role == RaftRole.Leader ? 1 : 0));
        _meter.CreateObservableGauge("kdb_group_term", () => PerGroup((s, _) => (long)s.Term));
        _meter.CreateObservableGauge("kdb_group_storage_bytes", () => PerGroup((s, _) => s.StorageBytes), unit: "By");
        _meter.CreateObservableGauge("kdb_engine_segments", () => PerGroup((_, e) => e.SegmentCount));
        _meter.CreateObservableCounter("kdb_engine_compactions", () => PerGroup((_, e) => e.Compactions));
        _meter.CreateObservableCounter("kdb_engine_flushes", () => PerGroup((_, e) => e.Flushes));
        _meter.CreateObservableCounter("kdb_rmi_lookups", () => PerGroup((_, e) => e.IndexLookups), description: "Learned-index lookups");
        _meter.CreateObservableGauge("kdb_rmi_avg_probe_window", () => PerGroup((_, e) => (long)Math.Round(e.AvgProbeWindow)), description: "Average positions searched per lookup (mispredict size)");
        _meter.CreateObservableGauge("kdb_rmi_max_error", () => PerGroup((_, e) => e.MaxError), description: "Largest leaf error of the learned index");
        _meter.CreateObservableCounter("kdb_leader_changes", () => host.LeaderChanges, description: "Leader changes seen by this node's replicas");
    }

    public void Dispose() => _meter.Dispose();
}

/// <summary>Ready when every hosted group knows a leader (a replica cut off from its group is not ready to serve).</summary>
internal sealed class ShardGroupHealthCheck(ClusterHost host) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var leaderless = new List<string>();
        foreach (var id in host.GroupIds)
        {
            if (host.HasGroup(id) && host.Leader(id) is null)
            {
                leaderless.Add(id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
        }
        return Task.FromResult(leaderless.Count == 0
            ? HealthCheckResult.Healthy($"{host.GroupIds.Count} shard group(s), each with a leader")
            : HealthCheckResult.Unhealthy("no leader known for shard group(s) " + string.Join(", ", leaderless)));
    }
}
