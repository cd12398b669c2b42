using System.Diagnostics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Kdb.Provisioning.Placement;

/// <summary>
/// Walks the read-only half of a database creation once at start-up, so the first creation in a fresh cloud does not
/// pay for it: the service token (the control plane's token endpoint and JWT signing), the node list and a placement
/// lookup of a database nobody has (the control plane's internal API, its first PostgreSQL queries), and a status
/// call on every alive node (an HTTP/2 connection each, the node's token check, the admin wire format). Nothing is
/// written anywhere. Nodes usually start after the control plane, so it keeps trying until a group's worth of nodes
/// has answered or <see cref="Deadline"/> passes; failures only delay it, and a creation never waits for it.
/// </summary>
internal sealed partial class ProvisioningWarmUp(Fleet fleet, ProvisioningOptions options, ILogger<ProvisioningWarmUp> logger) : BackgroundService
{
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(2);
    private static readonly TimeSpan Pause = TimeSpan.FromMilliseconds(500);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var started = Stopwatch.GetTimestamp();
        var warmed = new HashSet<Uri>();
        var placementLooked = false;
        // Shaped like a real id (db_ and 16 base32 characters); random 16 hex digits cannot name an existing database.
        var absentId = "db_" + Convert.ToHexStringLower(Guid.NewGuid().ToByteArray(), 0, 8);
        while (!stoppingToken.IsCancellationRequested && Stopwatch.GetElapsedTime(started) < Deadline)
        {
            try
            {
                await fleet.ControlPlane.TokenAsync(stoppingToken);
                if (!placementLooked)
                {
                    await fleet.ControlPlane.PlacementAsync(absentId, stoppingToken);
                    placementLooked = true;
                }
                var nodes = await fleet.RefreshNodesAsync(stoppingToken);
                await Task.WhenAll(nodes.Where(n => n.Alive && !warmed.Contains(n.InternalUrl)).Select(async n =>
                {
                    using var call = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                    call.CancelAfter(TimeSpan.FromSeconds(10));
                    await fleet.Admin(n).StatusAsync(call.Token);
                    lock (warmed)
                    {
                        warmed.Add(n.InternalUrl);
                    }
                }));
                if (warmed.Count >= options.ReplicasPerGroup)
                {
                    LogWarmed(logger, warmed.Count, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                    return;
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                // The control plane or a node still starting: try again shortly. Nothing escapes, as an exception
                // leaving a hosted service stops the host.
                LogRetry(logger, e.Message);
            }
            await Task.Delay(Pause, stoppingToken);
        }
    }

    [LoggerMessage(LogLevel.Information, "Creation path warmed: control plane and {Nodes} nodes answered in {Milliseconds:0} ms")]
    private static partial void LogWarmed(ILogger logger, int nodes, double milliseconds);

    [LoggerMessage(LogLevel.Debug, "Creation warm-up not done yet: {Reason}")]
    private static partial void LogRetry(ILogger logger, string reason);
}
