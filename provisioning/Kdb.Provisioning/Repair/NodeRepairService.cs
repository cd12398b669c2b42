using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Kdb.Provisioning.Repair;

/// <summary>Runs <see cref="NodeRepair"/> every <see cref="ProvisioningOptions.RepairInterval"/> (zero turns it off).</summary>
internal sealed class NodeRepairService(NodeRepair repair, ProvisioningOptions options, ILogger<NodeRepairService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.RepairInterval <= TimeSpan.Zero)
        {
            return;
        }
        using var timer = new PeriodicTimer(options.RepairInterval);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await repair.RepairOnceAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                // The control plane unreachable or busy: the next tick tries again.
                logger.LogWarning("node repair round failed: {Reason}", e.Message);
            }
        }
    }
}
