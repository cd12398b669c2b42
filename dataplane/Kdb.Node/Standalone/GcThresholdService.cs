using Kdb.Sql.Transactions;

namespace Kdb.Node.Standalone;

/// <summary>
/// Advances the engine's GC threshold every 30 s to the version applied one retention period ago, so
/// compaction reclaims deleted rows and tombstones; a transaction older than the retention fails its commit
/// with 40001 ("snapshot too old") and is retried by the client.
/// </summary>
internal sealed class GcThresholdService(StandaloneServer server, TimeSpan retention, TimeProvider time) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(30);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var advancer = new GcThresholdAdvancer(server.Store.SetGcThreshold, retention);
        using var timer = new PeriodicTimer(Interval, time);
        try
        {
            do
            {
                advancer.Tick(time.GetUtcNow(), server.Engine.LastAppliedIndex);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down.
        }
    }
}
