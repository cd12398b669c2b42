using Kdb.Proxy.Routing;

namespace Kdb.Proxy.Logs;

/// <summary>
/// Reports each database's egress (bytes the proxy sent to its clients) and new sessions to the control plane's
/// usage ingestion, as deltas since the last successful report. Sequences start from the process start time, so a
/// restarted proxy never reuses one the control plane has seen.
/// </summary>
internal sealed partial class UsageReporter(IRouteCache routes, IControlPlaneClient controlPlane, ProxyOptions options, TimeProvider time, ILogger<UsageReporter> logger)
    : BackgroundService
{
    private readonly Dictionary<DatabaseState, (long Egress, long Connections)> _reported = [];
    private long _sequence = time.GetUtcNow().ToUnixTimeMilliseconds() * 1000;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.UsageInterval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            await ReportAsync(stoppingToken).ConfigureAwait(false);
        }
    }

    private async Task ReportAsync(CancellationToken cancellationToken)
    {
        DateTimeOffset now = time.GetUtcNow();
        var hour = new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, 0, 0, TimeSpan.Zero);
        var records = new List<UsageRecord>();
        var totals = new List<(DatabaseState State, long Egress, long Connections)>();
        foreach (DatabaseState state in routes.Databases)
        {
            long egress = state.BytesOut;
            long connections = state.Connections;
            (long Egress, long Connections) last = _reported.GetValueOrDefault(state);
            if (egress == last.Egress && connections == last.Connections)
            {
                continue;
            }

            records.Add(new UsageRecord(options.ProxyId, ++_sequence, state.Entry.DatabaseId, hour, egress - last.Egress, connections - last.Connections));
            totals.Add((state, egress, connections));
        }

        if (records.Count == 0)
        {
            return;
        }

        try
        {
            await controlPlane.PostUsageAsync(records, cancellationToken).ConfigureAwait(false);
            foreach ((DatabaseState state, long egress, long connections) in totals)
            {
                _reported[state] = (egress, connections);
            }
        }
        catch (Exception e) when (e is HttpRequestException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            // Not advancing the baseline: the next report carries these bytes too.
            LogPostFailed(logger, records.Count, e.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Posting {Count} usage records failed: {Reason}")]
    private static partial void LogPostFailed(ILogger logger, int count, string reason);
}
