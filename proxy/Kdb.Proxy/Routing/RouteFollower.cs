namespace Kdb.Proxy.Routing;

/// <summary>Follows the control plane's route-table long-poll into the <see cref="IRouteCache"/>.</summary>
internal sealed partial class RouteFollower(IControlPlaneClient controlPlane, IRouteCache cache, TimeProvider time, ILogger<RouteFollower> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        long? since = null;
        TimeSpan retry = TimeSpan.FromMilliseconds(200);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                RoutesResponse response = await controlPlane.PollRoutesAsync(since, stoppingToken).ConfigureAwait(false);
                cache.Apply(response);
                since = response.Version;
                retry = TimeSpan.FromMilliseconds(200);
            }
            catch (Exception e) when (e is HttpRequestException or System.Text.Json.JsonException
                || (e is OperationCanceledException && !stoppingToken.IsCancellationRequested))
            {
                LogPollFailed(logger, e.Message);

                // A control plane that answers with an error or not at all is retried with a capped backoff; the
                // cached table keeps serving meanwhile.
                await Task.Delay(retry, time, stoppingToken).ConfigureAwait(false);
                retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Route table poll failed: {Reason}")]
    private static partial void LogPollFailed(ILogger logger, string reason);
}
