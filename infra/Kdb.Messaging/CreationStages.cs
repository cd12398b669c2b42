using System.Diagnostics.Metrics;

namespace Kdb.Messaging;

/// <summary>
/// Where the time of a database creation goes, request to <c>ready</c>, as one histogram
/// (<c>kdb_database_create_stage_seconds{stage}</c>). The control plane and provisioning each time their own stages, and
/// a bus hop is timed by its receiver from the send time the bus stamps on every message, so the figures hold whether
/// provisioning runs inside the control plane or in its own process. The stages follow each other in this order; only
/// <see cref="Api"/> and <see cref="Outbox"/> overlap, by the commit of the request's transaction.
/// </summary>
public static class CreationStages
{
    /// <summary>The meter name (one per process: a second instrument of the same name would repeat the family).</summary>
    public const string MeterName = "Kdb.Databases.Creation";

    /// <summary>REST request: from the handler's start to the committed database, operation and outbox rows.</summary>
    public const string Api = "api";

    /// <summary>From the request's timestamp (taken just before the commit) until the outbox dispatcher publishes it.</summary>
    public const string Outbox = "outbox";

    /// <summary>From publication of <c>DatabaseRequested</c> until provisioning's first attempt starts (bus delivery).</summary>
    public const string Queue = "queue";

    /// <summary>From publication until a retried attempt starts: time lost to failed attempts and retry backoff.</summary>
    public const string Retried = "retried";

    /// <summary>Placement: look the database up, choose its group (forming one if none has room), record the choice.</summary>
    public const string Placement = "placement";

    /// <summary>The create on the group's leader: one Raft commit and apply.</summary>
    public const string NodeCreate = "node_create";

    /// <summary>From publication of <c>DatabaseProvisioned</c> until the control plane's consumer starts.</summary>
    public const string OutcomeQueue = "outcome_queue";

    /// <summary>The database routed (still <c>provisioning</c>) and every live proxy holding the route.</summary>
    public const string Route = "route";

    /// <summary>The <c>ready</c> status and the finished operation committed.</summary>
    public const string Ready = "ready";

    /// <summary>From the request's timestamp to <c>ready</c> committed: the whole server-side creation.</summary>
    public const string Total = "total";

    /// <summary>Every stage, in the order a creation passes them.</summary>
    public static readonly IReadOnlyList<string> All = [Api, Outbox, Queue, Retried, Placement, NodeCreate, OutcomeQueue, Route, Ready, Total];

    private static readonly Meter Meter = new(MeterName);

    // Milliseconds apart at the bottom, where most stages land; coarse past a second, where only stalls go.
    private static readonly Histogram<double> Stage = Meter.CreateHistogram<double>(
        "kdb_database_create_stage", unit: "s", description: "Time a database creation spends in each stage (see CreationStages)",
        advice: new InstrumentAdvice<double>
        {
            HistogramBucketBoundaries =
            [
                0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3,
                0.4, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60,
            ],
        });

    /// <summary>Records that a creation spent <paramref name="elapsed"/> in <paramref name="stage"/> (negative clock skew counts as 0).</summary>
    public static void Record(string stage, TimeSpan elapsed) =>
        Stage.Record(Math.Max(0, elapsed.TotalSeconds), new KeyValuePair<string, object?>("stage", stage));

    /// <summary>Records the time from a bus message's send time to <paramref name="now"/>; nothing when the bus gave no send time.</summary>
    public static void RecordSince(string stage, DateTime? sentUtc, DateTimeOffset now)
    {
        if (sentUtc is { } sent)
        {
            Record(stage, now - new DateTimeOffset(DateTime.SpecifyKind(sent, DateTimeKind.Utc)));
        }
    }
}
