using System.Globalization;
using System.Text.Json;
using Kdb.ControlPlane.Api;
using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Identity;
using Kdb.ControlPlane.Internal;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using NpgsqlTypes;

namespace Kdb.ControlPlane.Databases;

/// <summary>
/// Connection security: proxies report connect, deny and throttle events to <c>/internal/v1/connection-log</c>;
/// org members read them per database, see which clients the proxies have locked out after failed logins, and
/// lift those lockouts (the route entry's <c>lockoutResetAt</c>: proxies forget failures recorded before it).
/// </summary>
public static class ConnectionSecurityEndpoints
{
    public const int MaxBatch = 5_000;

    /// <summary>The reason a proxy gives when it refuses a client because of a failed-login lockout.</summary>
    public const string LockedOut = "locked_out";

    /// <summary>The reason a proxy gives for a failed authentication.</summary>
    public const string AuthFailed = "auth_failed";

    public static readonly string[] Kinds = ["connect", "deny", "throttle"];

    public sealed record ConnectionEvent(string? Source, string? DatabaseId, DateTimeOffset? At, string? Kind, string? Reason, string? ClientIp, string? User);

    public sealed record IngestResult(int Accepted, int Ignored);

    public sealed record ConnectionEventView(string Id, DateTimeOffset At, string Kind, string? Reason, string? ClientIp, string? User, string Source);

    public sealed record Lockout(string? ClientIp, DateTimeOffset LockedOutSince, DateTimeOffset LastRefusedAt, int RefusedConnections, int FailedLogins);

    public sealed record LockoutsView(string DatabaseId, DateTimeOffset? LockoutResetAt, int WindowSeconds, IReadOnlyList<Lockout> Items);

    public sealed record LockoutsLifted(string DatabaseId, DateTimeOffset LockoutResetAt);

    /// <summary>The proxies' side: <c>POST /internal/v1/connection-log</c> (scope <c>kdb.proxy</c>).</summary>
    public static IEndpointRouteBuilder MapConnectionLogIngestion(this IEndpointRouteBuilder app)
    {
        app.MapPost("/internal/v1/connection-log", IngestAsync).RequireAuthorization(InternalAuth.Proxy);
        return app;
    }

    /// <summary>The tenants' side: the connection log and the lockouts of one database.</summary>
    public static IEndpointRouteBuilder MapConnectionSecurityEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/databases/{databaseId}").RequireAuthorization();
        group.MapGet("/connection-log", ListAsync);
        group.MapGet("/auth-lockouts", LockoutsAsync);
        group.MapDelete("/auth-lockouts", LiftAsync);
        return app;
    }

    private static async Task<IResult> IngestAsync(HttpContext http, ConnectionEvent[]? events, ControlPlaneDbContext db, TimeProvider time, CancellationToken ct)
    {
        if (events is null || events.Length is 0 or > MaxBatch)
        {
            return Problems.Validation(new Dictionary<string, string[]> { ["events"] = [$"send 1 to {MaxBatch} events"] });
        }

        for (var i = 0; i < events.Length; i++)
        {
            var e = events[i];
            if (string.IsNullOrEmpty(e.DatabaseId) || e.DatabaseId.Length > 63 || e.At is null || !Kinds.Contains(e.Kind, StringComparer.Ordinal)
                || (e.Kind != "connect" && string.IsNullOrEmpty(e.Reason)) || e.Reason?.Length > 200 || e.ClientIp?.Length > 64
                || e.User?.Length > 63 || e.Source?.Length > 64)
            {
                return Problems.Validation(new Dictionary<string, string[]>
                {
                    [$"events[{i}]"] = [$"databaseId (≤ 63), at and kind ({string.Join(", ", Kinds)}) are required; deny and throttle need a reason (≤ 200); clientIp ≤ 64, user ≤ 63"],
                });
            }
        }

        // Events for names that are no database (a client guessing) are dropped: nobody could read them, and
        // keeping them would let anyone fill the table.
        const string Sql = """
            INSERT INTO connection_log ("DatabaseId", "At", "Kind", "Reason", "ClientIp", "User", "Source", "ReceivedAt")
            SELECT x."databaseId", x.at, x.kind, x.reason, x."clientIp", x."user", coalesce(x.source, @source), @now
            FROM jsonb_to_recordset(@events) AS x("databaseId" text, at timestamptz, kind text, reason text, "clientIp" text, "user" text, source text)
            JOIN databases d ON d."Id" = x."databaseId"
            """;
        var accepted = await db.Database.ExecuteSqlRawAsync(
            Sql,
            [
                new NpgsqlParameter("events", NpgsqlDbType.Jsonb) { Value = JsonSerializer.Serialize(events, JsonSerializerOptions.Web) },
                new NpgsqlParameter("source", http.User.UserId() ?? "proxy"),
                new NpgsqlParameter("now", time.GetUtcNow()),
            ],
            ct);
        return Results.Json(new IngestResult(accepted, events.Length - accepted), statusCode: StatusCodes.Status202Accepted);
    }

    private static async Task<IResult> ListAsync(HttpContext http, string databaseId, string? kind, string? cursor, int? limit, ControlPlaneDbContext db, CancellationToken ct)
    {
        var (database, denied) = await RequireAsync(http, databaseId, OrgRoles.Developer, db, ct);
        if (database is null)
        {
            return denied!;
        }

        long? before = null;
        if (!string.IsNullOrEmpty(cursor))
        {
            if (!long.TryParse(cursor, NumberStyles.None, CultureInfo.InvariantCulture, out var c))
            {
                return Problems.Validation(new Dictionary<string, string[]> { ["cursor"] = ["not a cursor of this list"] });
            }

            before = c;
        }

        if (kind is not null && !Kinds.Contains(kind, StringComparer.Ordinal))
        {
            return Problems.Validation(new Dictionary<string, string[]> { ["kind"] = [$"kind is one of {string.Join(", ", Kinds)}"] });
        }

        var take = Math.Clamp(limit ?? 50, 1, 200);
        var query = db.ConnectionLog.AsNoTracking().Where(c => c.DatabaseId == databaseId);
        if (kind is not null)
        {
            query = query.Where(c => c.Kind == kind);
        }

        if (before is { } b)
        {
            query = query.Where(c => c.Id < b);
        }

        // Newest first (by arrival); the cursor is the last id of a page.
        var rows = await query.OrderByDescending(c => c.Id).Take(take + 1).ToListAsync(ct);
        var items = rows.Take(take).Select(c => new ConnectionEventView(c.Id.ToString(CultureInfo.InvariantCulture), c.At, c.Kind, c.Reason, c.ClientIp, c.User, c.Source)).ToList();
        return Results.Ok(new OrgEndpoints.Page<ConnectionEventView>(items, rows.Count > take ? items[^1].Id : null));
    }

    private static async Task<IResult> LockoutsAsync(HttpContext http, string databaseId, ControlPlaneDbContext db, IConfiguration configuration, TimeProvider time, CancellationToken ct)
    {
        var (database, denied) = await RequireAsync(http, databaseId, OrgRoles.Developer, db, ct);
        if (database is null)
        {
            return denied!;
        }

        // A client is locked out while the proxies refuse it for that reason within the window, and not
        // before the last lift.
        var window = configuration.GetValue("ConnectionSecurity:LockoutWindow", TimeSpan.FromMinutes(15));
        var since = time.GetUtcNow() - window;
        if (database.LockoutResetAt is { } reset && reset > since)
        {
            since = reset;
        }

        var events = await db.ConnectionLog.AsNoTracking()
            .Where(c => c.DatabaseId == databaseId && c.Kind == "deny" && c.At >= since && (c.Reason == LockedOut || c.Reason == AuthFailed))
            .Select(c => new { c.ClientIp, c.Reason, c.At })
            .ToListAsync(ct);
        var items = events.GroupBy(e => e.ClientIp)
            .Where(g => g.Any(e => e.Reason == LockedOut))
            .Select(g =>
            {
                var refused = g.Where(e => e.Reason == LockedOut).ToList();
                return new Lockout(g.Key, refused.Min(e => e.At), refused.Max(e => e.At), refused.Count, g.Count(e => e.Reason == AuthFailed));
            })
            .OrderByDescending(l => l.LastRefusedAt)
            .ToList();
        return Results.Ok(new LockoutsView(databaseId, database.LockoutResetAt, (int)window.TotalSeconds, items));
    }

    private static async Task<IResult> LiftAsync(HttpContext http, string databaseId, ControlPlaneDbContext db, RouteSignal signal, TimeProvider time, CancellationToken ct)
    {
        var (database, denied) = await RequireAsync(http, databaseId, OrgRoles.Admin, db, ct);
        if (database is null)
        {
            return denied!;
        }

        // PostgreSQL keeps microseconds: the answer shows exactly the instant the route entry carries.
        var clock = time.GetUtcNow();
        var now = new DateTimeOffset(clock.UtcTicks - (clock.UtcTicks % 10), TimeSpan.Zero);
        await using (var tx = await db.Database.BeginTransactionAsync(ct))
        {
            await db.Databases.Where(d => d.Id == databaseId).ExecuteUpdateAsync(s => s.SetProperty(d => d.LockoutResetAt, now), ct);
            await RouteVersions.BumpAsync(db, databaseId, null, ct);
            await tx.CommitAsync(ct);
        }

        signal.Pulse();
        return Results.Ok(new LockoutsLifted(databaseId, now));
    }

    /// <summary>The database when the caller may act on it with <paramref name="required"/>; else 404 (not its org's) or 403.</summary>
    private static async Task<(DatabaseRecord? Database, IResult? Denied)> RequireAsync(HttpContext http, string databaseId, string required, ControlPlaneDbContext db, CancellationToken ct)
    {
        var database = await db.Databases.AsNoTracking().FirstOrDefaultAsync(d => d.Id == databaseId && d.Status != "deleted", ct);
        var caller = database is null ? null : await OrgAccess.MembershipAsync(db, database.OrgId, http.User.UserId(), ct);
        if (database is null || caller is null)
        {
            return (null, Problems.NotFound("No such database."));
        }

        return OrgRoles.AtLeast(caller.Role, required) ? (database, null) : (null, OrgAccess.Forbidden(required));
    }
}
