using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Kdb.Provisioning.Placement;

/// <summary>
/// Keeps a shard group with room ready before a creation needs one (<see cref="Fleet.FormGroupAheadAsync"/>), every
/// <see cref="ProvisioningOptions.GroupAheadInterval"/> (zero turns it off). On a fresh fleet the first group forms as
/// soon as enough nodes are alive, so the first database is as quick to create as the next ones.
/// </summary>
internal sealed partial class GroupAheadService(Fleet fleet, ProvisioningOptions options, ILogger<GroupAheadService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.GroupAheadInterval <= TimeSpan.Zero)
        {
            return;
        }
        using var timer = new PeriodicTimer(options.GroupAheadInterval);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                if (await fleet.FormGroupAheadAsync(stoppingToken) is { } group)
                {
                    LogFormed(logger, group);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                // The control plane still starting, or a node not answering: the next tick tries again.
                LogFailed(logger, e.Message);
            }
        }
    }

    [LoggerMessage(LogLevel.Information, "Formed shard group {GroupId} ahead of demand")]
    private static partial void LogFormed(ILogger logger, ulong groupId);

    [LoggerMessage(LogLevel.Debug, "Forming a shard group ahead of demand failed: {Reason}")]
    private static partial void LogFailed(ILogger logger, string reason);
}
