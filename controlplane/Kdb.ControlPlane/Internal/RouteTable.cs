using System.Globalization;
using Kdb.ControlPlane.Api;
using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Databases;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Internal;

/// <summary>Wakes long-polling proxies when this instance changes a route; other instances are seen by polling.</summary>
public sealed class RouteSignal
{
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task Changed => Volatile.Read(ref _changed).Task;

    public void Pulse() => Interlocked.Exchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
}

/// <summary>
/// Route-table versions: every change a proxy must see gives the database a new version, so "changes since v"
/// is one indexed range query. Versions are handed out by <c>kdb_bump_routes</c> (migration 0014) under a
/// transaction-scoped advisory lock, so they commit in the order they are taken: a proxy that has seen v never
/// later finds a smaller version committed. Bump last in a transaction, as the lock is held until it ends.
/// </summary>
public static class RouteVersions
{
    /// <summary>Gives the database the next route version and returns it (0 when there is no such database).</summary>
    public static Task<long> BumpAsync(ControlPlaneDbContext db, string databaseId, RouteSignal? signal, CancellationToken ct) =>
        BumpAsync(db, [databaseId], signal, ct);

    /// <summary>Gives each of the databases a new route version and returns the highest (0 when none exists).</summary>
    public static async Task<long> BumpAsync(ControlPlaneDbContext db, string[] databaseIds, RouteSignal? signal, CancellationToken ct)
    {
        if (databaseIds.Length == 0)
        {
            return 0;
        }

        // Not composed (no LINQ on top): EF runs the statement as written.
        var version = (await db.Database.SqlQuery<long>($"SELECT kdb_bump_routes({databaseIds}::character varying[]) AS \"Value\"").ToListAsync(ct))[0];
        if (version > 0)
        {
            signal?.Pulse();
        }

        return version;
    }
}

/// <summary><c>/internal/v1/routes</c>: the long-poll route table proxies follow (DESIGN: the route table).</summary>
public static class RouteTableEndpoints
{
    /// <summary>Statuses a proxy routes to; any other status is a removal.</summary>
    private static readonly string[] Routable = ["ready", "restoring", "moving"];

    /// <summary>
    /// Routed: a routable status, or a database still <c>provisioning</c> whose group is known, so that its
    /// entry reaches every proxy before it turns <c>ready</c> (DESIGN: no race after a change).
    /// </summary>
    private static readonly System.Linq.Expressions.Expression<Func<DatabaseRecord, bool>> IsRoutedSql =
        d => Routable.Contains(d.Status) || (d.Status == "provisioning" && d.GroupId != null);

    private static readonly Func<DatabaseRecord, bool> IsRouted = IsRoutedSql.Compile();

    public sealed record Replica(string NodeId, string PgEndpoint, string HttpEndpoint);

    public sealed record RouteRole(string Name, string Kind, string ScramVerifier);

    public sealed record RouteLimits(int MaxConnections, int StatementsPerSecond);

    public sealed record RouteEntry(
        string DatabaseId,
        string TenantId,
        string OrgId,
        string? GroupId,
        IReadOnlyList<Replica> Replicas,
        string? LeaderNodeId,
        IReadOnlyList<RouteRole> Roles,
        string QuotaState,
        RouteLimits Limits,
        DateTimeOffset? LockoutResetAt,
        long Version);

    public sealed record RoutesResponse(long Version, bool Full, IReadOnlyList<RouteEntry> Upserts, IReadOnlyList<string> Removals);

    public static IEndpointRouteBuilder MapRouteTableEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/internal/v1/routes", PollAsync).RequireAuthorization(InternalAuth.Proxy);
        app.MapGet("/internal/v1/routes/{databaseId}", GetOneAsync).RequireAuthorization(InternalAuth.Proxy);
        return app;
    }

    private static async Task<IResult> PollAsync(HttpContext http, long? since, string? proxy, ControlPlaneDbContext db, RouteSignal signal, IProxyTracker tracker, IConfiguration configuration, TimeProvider time)
    {
        var ct = http.RequestAborted;
        if (proxy is { Length: > 64 })
        {
            return Problems.Validation(new Dictionary<string, string[]> { ["proxy"] = ["at most 64 characters"] });
        }

        if (!string.IsNullOrEmpty(proxy))
        {
            await tracker.SawAsync(proxy, since ?? 0, ct);
        }

        if (since is null or < 0)
        {
            // The version is read before the rows: a change committed in between is then sent again, never missed.
            var version = await CurrentVersionAsync(db, ct);
            var all = await db.Databases.AsNoTracking().Where(IsRoutedSql).ToListAsync(ct);
            return Results.Ok(new RoutesResponse(version, true, await EntriesAsync(db, all, ct), []));
        }

        var deadline = time.GetUtcNow() + configuration.GetValue("Routes:LongPollTimeout", TimeSpan.FromSeconds(30));
        while (true)
        {
            var wake = signal.Changed;
            var changed = await db.Databases.AsNoTracking().Where(d => d.RouteVersion > since).OrderBy(d => d.RouteVersion).Take(1000).ToListAsync(ct);
            if (changed.Count > 0)
            {
                var upserts = changed.Where(IsRouted).ToList();
                var removals = changed.Where(d => !IsRouted(d) && d.Status != "provisioning").Select(d => d.Id).ToList();
                return Results.Ok(new RoutesResponse(changed[^1].RouteVersion, false, await EntriesAsync(db, upserts, ct), removals));
            }

            var remaining = deadline - time.GetUtcNow();
            if (remaining <= TimeSpan.Zero)
            {
                return Results.Ok(new RoutesResponse(since.Value, false, [], []));
            }

            // Woken at once by a change on this instance; another instance's change is seen within a second.
            var nap = remaining < TimeSpan.FromSeconds(1) ? remaining : TimeSpan.FromSeconds(1);
            await Task.WhenAny(wake, Task.Delay(nap, time, ct));
            ct.ThrowIfCancellationRequested();
        }
    }

    private static async Task<IResult> GetOneAsync(string databaseId, ControlPlaneDbContext db, CancellationToken ct)
    {
        var database = await db.Databases.AsNoTracking().Where(IsRoutedSql).FirstOrDefaultAsync(d => d.Id == databaseId, ct);
        return database is null ? Problems.NotFound("No route for that database.") : Results.Ok((await EntriesAsync(db, [database], ct))[0]);
    }

    private static async Task<long> CurrentVersionAsync(ControlPlaneDbContext db, CancellationToken ct) =>
        await db.Databases.AsNoTracking().MaxAsync(d => (long?)d.RouteVersion, ct) ?? 0;

    private static async Task<IReadOnlyList<RouteEntry>> EntriesAsync(ControlPlaneDbContext db, List<DatabaseRecord> databases, CancellationToken ct)
    {
        if (databases.Count == 0)
        {
            return [];
        }

        var ids = databases.Select(d => d.Id).ToList();
        var orgIds = databases.Select(d => d.OrgId).Distinct().ToList();
        var roles = (await db.DatabaseRoles.AsNoTracking().Where(r => ids.Contains(r.DatabaseId)).ToListAsync(ct)).ToLookup(r => r.DatabaseId);
        var plans = await db.Orgs.AsNoTracking().Where(o => orgIds.Contains(o.Id)).ToDictionaryAsync(o => o.Id, o => o.Plan, ct);
        var placed = await Placements.ResolveAsync(db, databases, ct);
        return databases.Select(d =>
        {
            var plan = PlanLimits.For(plans.GetValueOrDefault(d.OrgId, "free"));
            var placement = placed[d.Id];
            return new RouteEntry(
                d.Id,
                unchecked((ulong)d.TenantId).ToString(CultureInfo.InvariantCulture),
                d.OrgId,
                placement.GroupId,
                placement.Replicas,
                placement.LeaderNodeId,
                roles[d.Id].OrderBy(r => r.Name, StringComparer.Ordinal).Select(r => new RouteRole(r.Name, r.Kind, r.ScramVerifier)).ToList(),
                d.QuotaState,
                new RouteLimits(plan.MaxConnections, plan.StatementsPerSecond),
                d.LockoutResetAt,
                d.RouteVersion);
        }).ToList();
    }
}
