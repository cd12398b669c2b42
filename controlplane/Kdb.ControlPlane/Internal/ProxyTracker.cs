using Kdb.ControlPlane.Data;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Internal;

/// <summary>
/// Which route version every live proxy holds (DESIGN: no race after a change): a proxy's poll names in
/// <c>since</c> the version it has fetched, so a change of version V has reached it once it polls with
/// <c>since ≥ V</c>. A proxy is live while it polls at least once per long-poll timeout (plus a grace).
/// Positions are kept in PostgreSQL (<c>proxy_positions</c>), so every control-plane instance, and one
/// restarted, waits for the proxies that poll any of them.
/// </summary>
public interface IProxyTracker
{
    /// <summary>Records a poll of <paramref name="proxyId"/> from <paramref name="since"/>.</summary>
    Task SawAsync(string proxyId, long since, CancellationToken cancellationToken);

    /// <summary>
    /// Waits until every live proxy holds <paramref name="version"/>; true then, false (after logging a
    /// warning that names the laggards) once <c>Routes:ProxyAckTimeout</c> (default 5 s) has passed.
    /// </summary>
    Task<bool> WaitForAsync(long version, CancellationToken cancellationToken);
}

internal sealed partial class ProxyTracker(IServiceScopeFactory scopes, IConfiguration configuration, TimeProvider time, ILogger<ProxyTracker> logger) : IProxyTracker
{
    private static readonly TimeSpan LiveGrace = TimeSpan.FromSeconds(5);

    // A poll on another instance wakes nobody here: a waiter looks again this often.
    private static readonly TimeSpan RecheckEvery = TimeSpan.FromMilliseconds(100);
    private readonly TimeSpan _liveWindow = configuration.GetValue("Routes:LongPollTimeout", TimeSpan.FromSeconds(30)) + LiveGrace;
    private readonly TimeSpan _ackTimeout = configuration.GetValue("Routes:ProxyAckTimeout", TimeSpan.FromSeconds(5));
    private TaskCompletionSource _moved = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public async Task SawAsync(string proxyId, long since, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        await using (var scope = scopes.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
            await db.Database.ExecuteSqlAsync($"""
                INSERT INTO proxy_positions ("ProxyId", "Since", "SeenAt") VALUES ({proxyId}, {since}, {now})
                ON CONFLICT ("ProxyId") DO UPDATE SET "Since" = EXCLUDED."Since", "SeenAt" = EXCLUDED."SeenAt"
                """, cancellationToken);
        }

        Interlocked.Exchange(ref _moved, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    public async Task<bool> WaitForAsync(long version, CancellationToken cancellationToken)
    {
        var deadline = time.GetUtcNow() + _ackTimeout;
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
        var forgotten = false;
        while (true)
        {
            // Taken before the check: a poll on this instance that lands between the check and the wait still wakes us.
            var moved = Volatile.Read(ref _moved).Task;
            var now = time.GetUtcNow();
            var cutoff = now - _liveWindow;
            if (!forgotten)
            {
                // Gone quiet for longer than any poll lasts: no longer live, and forgotten.
                await db.ProxyPositions.Where(p => p.SeenAt < cutoff).ExecuteDeleteAsync(cancellationToken);
                forgotten = true;
            }

            var lagging = await db.ProxyPositions.AsNoTracking()
                .Where(p => p.SeenAt >= cutoff && p.Since < version)
                .OrderBy(p => p.ProxyId)
                .Select(p => p.ProxyId)
                .ToListAsync(cancellationToken);
            if (lagging.Count == 0)
            {
                return true;
            }

            var remaining = deadline - now;
            if (remaining <= TimeSpan.Zero)
            {
                LogLagging(logger, version, string.Join(", ", lagging), _ackTimeout);
                return false;
            }

            await Task.WhenAny(moved, Task.Delay(remaining < RecheckEvery ? remaining : RecheckEvery, time, cancellationToken));
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    [LoggerMessage(LogLevel.Warning, "Route version {Version} not yet fetched by live proxies {Proxies} after {Timeout}; going ahead")]
    private static partial void LogLagging(ILogger logger, long version, string proxies, TimeSpan timeout);
}
