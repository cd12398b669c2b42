using System.Threading.Channels;
using Kdb.Proxy.Routing;

namespace Kdb.Proxy.Logs;

/// <summary>Connection-log events on their way to the control plane; recording never blocks a session.</summary>
public interface IConnectionLog
{
    /// <summary>Queues an event (kind: connect, deny, throttle). Under a flood the oldest queued events are dropped.</summary>
    void Record(string databaseId, string kind, string? reason, string? clientIp, string? user);
}

internal sealed partial class ConnectionLog(IControlPlaneClient controlPlane, ProxyOptions options, TimeProvider time, ILogger<ConnectionLog> logger)
    : BackgroundService, IConnectionLog
{
    private const int MaxBatch = 1000;

    private readonly Channel<ConnectionEvent> _events = Channel.CreateBounded<ConnectionEvent>(
        new BoundedChannelOptions(10_000) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });

    public void Record(string databaseId, string kind, string? reason, string? clientIp, string? user)
    {
        // The control plane refuses over-long fields; a client-chosen name is cut rather than losing the event.
        _events.Writer.TryWrite(new ConnectionEvent(options.ProxyId, Cut(databaseId, 63), time.GetUtcNow(), kind, reason, clientIp, user is null ? null : Cut(user, 63)));
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var batch = new List<ConnectionEvent>(MaxBatch);
        while (await _events.Reader.WaitToReadAsync(stoppingToken).ConfigureAwait(false))
        {
            while (batch.Count < MaxBatch && _events.Reader.TryRead(out ConnectionEvent? e))
            {
                batch.Add(e);
            }

            try
            {
                await controlPlane.PostConnectionLogAsync(batch, stoppingToken).ConfigureAwait(false);
                batch.Clear();
            }
            catch (Exception e) when (e is HttpRequestException || (e is OperationCanceledException && !stoppingToken.IsCancellationRequested))
            {
                LogPostFailed(logger, batch.Count, e.Message);
                if (batch.Count >= MaxBatch)
                {
                    batch.Clear();
                }
            }

            // Batches: at most one post a second, whatever the event rate.
            await Task.Delay(TimeSpan.FromSeconds(1), time, stoppingToken).ConfigureAwait(false);
        }
    }

    private static string Cut(string s, int max) => s.Length <= max ? s : s[..max];

    [LoggerMessage(Level = LogLevel.Warning, Message = "Posting {Count} connection-log events failed: {Reason}")]
    private static partial void LogPostFailed(ILogger logger, int count, string reason);
}
