using System.Diagnostics.Metrics;
using Kdb.Cluster;
using Kdb.Raft;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Kdb.Node.Cluster;

/// <summary>
/// Per-group series on the management port's <c>/metrics</c>: Raft progress and leadership, commit latency, storage and
/// the learned index's probe statistics (group ids label them, so cardinality is the number of hosted groups); and
/// per-database usage for the top N databases of each measure only, so a node of a million databases exports at most N
/// series per measure.
/// </summary>
internal sealed class ClusterMetrics : IDisposable
{
    private readonly Meter _meter = new("Kdb.Node.Cluster");

    public ClusterMetrics(ClusterHost host, UsageMeter? usage = null, int topDatabases = DatabaseTopN.DefaultN, Kdb.Raft.Transport.IRaftTransport? transport = null)
    {
        IEnumerable<Measurement<long>> PerGroup(Func<GroupStatus, long> value)
        {
            foreach (var id in host.GroupIds)
            {
                if (host.TryStatus(id) is not { } s)
                {
                    continue;
                }
                yield return new Measurement<long>(value(s), new KeyValuePair<string, object?>("group", GroupLabel(id)));
            }
        }
        _meter.CreateObservableGauge("kdb_group_applied_index", () => PerGroup(s => (long)s.AppliedIndex), description: "Last log index applied by this replica");
        _meter.CreateObservableGauge("kdb_group_apply_lag", () => PerGroup(s => (long)(s.CommitIndex - Math.Min(s.CommitIndex, s.AppliedIndex))), description: "Committed entries not yet applied");
        _meter.CreateObservableGauge("kdb_group_is_leader", () => PerGroup(s => s.Role == RaftRole.Leader ? 1 : 0));
        _meter.CreateObservableGauge("kdb_group_term", () => PerGroup(s => (long)s.Term));
        _meter.CreateObservableGauge("kdb_group_storage_bytes", () => PerGroup(s => s.StorageBytes), unit: "By");
        EngineInstruments.Register(_meter, () =>
        {
            var engines = new List<(string?, Kdb.Storage.EngineStats)>(host.GroupIds.Count);
            foreach (var id in host.GroupIds)
            {
                if (host.HasGroup(id))
                {
                    engines.Add((GroupLabel(id), host.Engine(id).Stats));
                }
            }

            return engines;
        });
        if (transport is not null)
        {
            _meter.CreateObservableCounter("kdb_raft_messages_received", () => transport.MessagesReceived, description: "Raft messages received from peer nodes");
            _meter.CreateObservableCounter("kdb_raft_messages_dropped", () => transport.MessagesDropped, description: "Raft messages dropped before sending (a full queue or an unknown peer; Raft resends)");
            _meter.CreateObservableCounter("kdb_raft_malformed_frames", () => transport.MalformedFrames, description: "Received Raft frames rejected as malformed or truncated");
            _meter.CreateObservableCounter("kdb_raft_direct_connections", () => transport.DirectConnections, description: "Peer connections read straight off the socket instead of through Kestrel's HTTP/2 server");
        }
        _meter.CreateObservableCounter("kdb_leader_changes", () => host.LeaderChanges, description: "Leader changes seen by this node's replicas");
        _meter.CreateObservableCounter("kdb_group_leader_changes", () => PerGroupValue(host, id => host.LeaderChangesOf(id)), description: "Leader changes seen by this replica of the group");
        _meter.CreateObservableGauge("kdb_group_databases", () => PerGroupValue(host, id => host.DatabaseCount(id)), description: "Databases the group hosts");
        var commitLatency = _meter.CreateHistogram<double>("kdb_group_commit_latency", unit: "s", description: "Proposal to apply on the leader, per group",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10] });
        host.CommitLatency = (group, seconds) => commitLatency.Record(seconds, new KeyValuePair<string, object?>("group", GroupLabel(group)));
        if (usage is not null)
        {
            var top = new DatabaseTopN(usage, topDatabases);
            _meter.CreateObservableCounter("kdb_database_rows_read", () => top.Of(DatabaseTopN.Column.RowsRead), description: $"Rows read, the {topDatabases} databases with most");
            _meter.CreateObservableCounter("kdb_database_rows_written", () => top.Of(DatabaseTopN.Column.RowsWritten), description: $"Rows written, the {topDatabases} databases with most");
            _meter.CreateObservableCounter("kdb_database_read", () => top.Of(DatabaseTopN.Column.BytesRead), unit: "By", description: $"Bytes read, the {topDatabases} databases with most");
            _meter.CreateObservableCounter("kdb_database_written", () => top.Of(DatabaseTopN.Column.BytesWritten), unit: "By", description: $"Bytes written, the {topDatabases} databases with most");
            _meter.CreateObservableCounter("kdb_database_statement_time", () => top.Of(DatabaseTopN.Column.StatementMs), unit: "ms", description: $"Statement time, the {topDatabases} databases with most");
            _meter.CreateObservableGauge("kdb_database_open_connections", () => top.Of(DatabaseTopN.Column.OpenConnections), description: $"Open connections, the {topDatabases} databases with most");
            _meter.CreateObservableGauge("kdb_databases_tracked", () => (long)usage.TrackedDatabases, description: "Databases with usage counters in memory (active since the last usage seal)");
        }
    }

    private static string GroupLabel(ulong id) => id.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static IEnumerable<Measurement<long>> PerGroupValue(ClusterHost host, Func<ulong, long> value)
    {
        foreach (var id in host.GroupIds)
        {
            if (host.HasGroup(id))
            {
                yield return new Measurement<long>(value(id), new KeyValuePair<string, object?>("group", GroupLabel(id)));
            }
        }
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

/// <summary>
/// The N databases with the largest value of each usage measure, from the usage meter's totals. One pass over the
/// tracked databases per scrape (cached for a second, as a scrape asks once per instrument) keeps a bounded min-heap
/// per measure.
/// </summary>
internal sealed class DatabaseTopN(UsageMeter usage, int n)
{
    public const int DefaultN = 10;

    public enum Column
    {
        RowsRead,
        RowsWritten,
        BytesRead,
        BytesWritten,
        StatementMs,
        OpenConnections,
    }

    private const int Columns = 6;
    private readonly Lock _lock = new();
    private readonly int _n = Math.Max(1, n);
    private long _computedAt = long.MinValue / 2; // far past, without overflow in the subtraction
    private Measurement<long>[][] _top = [.. Enumerable.Range(0, Columns).Select(_ => Array.Empty<Measurement<long>>())];

    public IEnumerable<Measurement<long>> Of(Column column)
    {
        lock (_lock)
        {
            var now = Environment.TickCount64;
            if (now - _computedAt > 1000)
            {
                _top = Compute();
                _computedAt = now;
            }
            return _top[(int)column];
        }
    }

    private Measurement<long>[][] Compute()
    {
        var heaps = new PriorityQueue<string, long>[Columns];
        for (var i = 0; i < Columns; i++)
        {
            heaps[i] = new PriorityQueue<string, long>(_n + 1);
        }
        var state = (heaps, _n);
        usage.VisitTotals(ref state, static (ref (PriorityQueue<string, long>[] Heaps, int N) s, string db, DatabaseTotals t) =>
        {
            Offer(s.Heaps[0], s.N, db, t.RowsRead);
            Offer(s.Heaps[1], s.N, db, t.RowsWritten);
            Offer(s.Heaps[2], s.N, db, t.BytesRead);
            Offer(s.Heaps[3], s.N, db, t.BytesWritten);
            Offer(s.Heaps[4], s.N, db, t.StatementTicks * 1000 / System.Diagnostics.Stopwatch.Frequency);
            Offer(s.Heaps[5], s.N, db, t.OpenConnections);
        });
        var result = new Measurement<long>[Columns][];
        for (var i = 0; i < Columns; i++)
        {
            var list = new Measurement<long>[heaps[i].Count];
            var k = list.Length;
            while (heaps[i].TryDequeue(out var db, out var value))
            {
                list[--k] = new Measurement<long>(value, new KeyValuePair<string, object?>("database", db));
            }
            result[i] = list;
        }
        return result;
    }

    private static void Offer(PriorityQueue<string, long> heap, int n, string db, long value)
    {
        if (value <= 0)
        {
            return;
        }
        if (heap.Count < n)
        {
            heap.Enqueue(db, value);
        }
        else if (heap.TryPeek(out _, out var smallest) && value > smallest)
        {
            heap.DequeueEnqueue(db, value);
        }
    }
}
