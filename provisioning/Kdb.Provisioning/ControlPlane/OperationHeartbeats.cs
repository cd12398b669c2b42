using Microsoft.Extensions.Logging;

namespace Kdb.Provisioning.ControlPlane;

/// <summary>
/// Tells the control plane, every <see cref="ProvisioningOptions.OperationHeartbeatInterval"/>, that a long operation
/// (backup, restore, drill, move) is still being worked on, so its request is not re-sent to run a second time alongside.
/// A request lost with a crashed worker stops being heartbeated, and the control plane re-sends it as before.
/// </summary>
internal sealed partial class OperationHeartbeats(ControlPlaneClient controlPlane, ProvisioningOptions options, ILogger<OperationHeartbeats> logger)
{
    /// <summary>Heartbeats <paramref name="operationId"/> until disposed.</summary>
    public IAsyncDisposable Start(string operationId)
    {
        var stop = new CancellationTokenSource();
        var loop = BeatAsync(operationId, stop.Token);
        return new Running(stop, loop);
    }

    private async Task BeatAsync(string operationId, CancellationToken ct)
    {
        try
        {
            using var timer = new PeriodicTimer(options.OperationHeartbeatInterval);
            while (await timer.WaitForNextTickAsync(ct))
            {
                try
                {
                    if (!await controlPlane.HeartbeatAsync(operationId, ct))
                    {
                        return; // Not running any more (finished, timed out, or not an operation the control plane tracks).
                    }
                }
                catch (Exception e) when (e is HttpRequestException or TimeoutException or ControlPlaneRefusedException or TaskCanceledException && !ct.IsCancellationRequested)
                {
                    // A missed beat costs at most a duplicate request; the next one may get through.
                    LogMissed(logger, operationId, e.Message);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(LogLevel.Debug, "Heartbeat of operation {OperationId} missed: {Reason}")]
    private static partial void LogMissed(ILogger logger, string operationId, string reason);

    private sealed class Running(CancellationTokenSource stop, Task loop) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await stop.CancelAsync();
            await loop;
            stop.Dispose();
        }
    }
}
