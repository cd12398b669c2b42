using System.Net.Http.Headers;

namespace Kdb.Node.ControlPlane;

/// <summary>What a node reports in each heartbeat.</summary>
public sealed record HeartbeatBody(string PgEndpoint, string InternalEndpoint, string HttpEndpoint, int Capacity, IReadOnlyList<object> Groups);

/// <summary>
/// Reports the node to the control plane every few seconds (DESIGN: <c>POST /internal/v1/nodes/{nodeId}/heartbeat</c>),
/// so provisioning sees it alive. Failures are logged and retried; they never stop the node.
/// </summary>
internal sealed partial class HeartbeatService(
    HttpClient http,
    ServiceTokenClient tokens,
    NodeIdentity identity,
    Func<HeartbeatBody> describe,
    HeartbeatStatus status,
    TimeProvider time,
    ILogger<HeartbeatService> logger,
    TimeSpan interval) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await BeatAsync(stoppingToken);
                status.Succeeded(time.GetUtcNow());
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                // Whatever failed, the next beat tries again: a background service that throws stops the whole node.
                status.Failed(ex.Message);
                LogHeartbeatFailed(logger, ex.Message);
            }

            await Task.Delay(interval, time, stoppingToken);
        }
    }

    internal async Task BeatAsync(CancellationToken ct)
    {
        var token = await tokens.GetAsync(ct);
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/internal/v1/nodes/{Uri.EscapeDataString(identity.NodeId)}/heartbeat")
        {
            Content = JsonContent.Create(describe()),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await http.SendAsync(request, ct);
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"heartbeat answered {(int)response.StatusCode}");
        }
    }

    [LoggerMessage(LogLevel.Warning, "Heartbeat to the control plane failed: {Reason}")]
    private static partial void LogHeartbeatFailed(ILogger logger, string reason);
}

/// <summary>The last heartbeat's outcome, for readiness and logs.</summary>
public sealed class HeartbeatStatus
{
    private volatile string? _lastError = "no heartbeat sent yet";

    public DateTimeOffset? LastSuccess { get; private set; }

    public string? LastError => _lastError;

    public void Succeeded(DateTimeOffset at)
    {
        LastSuccess = at;
        _lastError = null;
    }

    public void Failed(string reason) => _lastError = reason;
}
