using System.Collections.Concurrent;

namespace Kdb.ControlPlane.Internal;

/// <summary>
/// Which route version every live proxy holds (DESIGN: no race after a change): a proxy's poll names in
/// <c>since</c> the version it has fetched, so a change of version V has reached it once it polls with
/// <c>since ≥ V</c>. A proxy is live while it polls at least once per long-poll timeout (plus a grace).
/// </summary>
public interface IProxyTracker
{
    /// <summary>Records a poll of <paramref name="proxyId"/> from <paramref name="since"/>.</summary>
    void Saw(string proxyId, long since);

    /// <summary>
    /// Waits until every live proxy holds <paramref name="version"/>; true then, false (after logging a
    /// warning that names the laggards) once <c>Routes:ProxyAckTimeout</c> (default 5 s) has passed.
    /// </summary>
    Task<bool> WaitForAsync(long version, CancellationToken cancellationToken);
}

internal sealed partial class ProxyTracker(IConfiguration configuration, TimeProvider time, ILogger<ProxyTracker> logger) : IProxyTracker
{
    private static readonly TimeSpan LiveGrace = TimeSpan.FromSeconds(5);
    private readonly ConcurrentDictionary<string, (long Since, DateTimeOffset SeenAt)> _proxies = new(StringComparer.Ordinal);
    private readonly TimeSpan _liveWindow = configuration.GetValue("Routes:LongPollTimeout", TimeSpan.FromSeconds(30)) + LiveGrace;
    private readonly TimeSpan _ackTimeout = configuration.GetValue("Routes:ProxyAckTimeout", TimeSpan.FromSeconds(5));
    private TaskCompletionSource _moved = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Saw(string proxyId, long since)
    {
        _proxies[proxyId] = (since, time.GetUtcNow());
        Interlocked.Exchange(ref _moved, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    public async Task<bool> WaitForAsync(long version, CancellationToken cancellationToken)
    {
        var deadline = time.GetUtcNow() + _ackTimeout;
        while (true)
        {
            // Taken before the check: a poll that lands between the check and the wait still wakes us.
            var moved = Volatile.Read(ref _moved).Task;
            var now = time.GetUtcNow();
            var lagging = Lagging(version, now);
            if (lagging is null)
            {
                return true;
            }

            var remaining = deadline - now;
            if (remaining <= TimeSpan.Zero)
            {
                LogLagging(logger, version, lagging, _ackTimeout);
                return false;
            }

            await Task.WhenAny(moved, Task.Delay(remaining < TimeSpan.FromSeconds(1) ? remaining : TimeSpan.FromSeconds(1), time, cancellationToken));
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    /// <summary>The live proxies that have not yet fetched <paramref name="version"/>, comma-separated; null when none.</summary>
    private string? Lagging(long version, DateTimeOffset now)
    {
        string? lagging = null;
        foreach (var (proxy, (since, seenAt)) in _proxies)
        {
            if (now - seenAt > _liveWindow)
            {
                // Gone quiet for longer than any poll lasts: no longer live, and forgotten.
                _proxies.TryRemove(new KeyValuePair<string, (long, DateTimeOffset)>(proxy, (since, seenAt)));
            }
            else if (since < version)
            {
                lagging = lagging is null ? proxy : lagging + ", " + proxy;
            }
        }

        return lagging;
    }

    [LoggerMessage(LogLevel.Warning, "Route version {Version} not yet fetched by live proxies {Proxies} after {Timeout}; going ahead")]
    private static partial void LogLagging(ILogger logger, long version, string proxies, TimeSpan timeout);
}
