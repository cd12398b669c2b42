using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Identity;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Api;

/// <summary>
/// Records every mutating management-API request — who, what, when, from where and the outcome — into the
/// append-only <c>audit_log</c>, and serves it to org admins.
/// </summary>
public static partial class AuditLog
{
    private static readonly string[] ResourceKeys = ["databaseId", "keyId", "role", "userId", "backupId", "invitationId", "orgId"];
    private static readonly object OrgItem = new();

    public sealed record AuditView(long Id, string Actor, string Action, string? ResourceId, string? SourceIp, int Status, DateTimeOffset At);

    public static IApplicationBuilder UseAuditLog(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        await next(context);
        if (HttpMethods.IsGet(context.Request.Method) || HttpMethods.IsHead(context.Request.Method) || HttpMethods.IsOptions(context.Request.Method)
            || !context.Request.Path.StartsWithSegments("/v1", StringComparison.Ordinal)
            || context.GetEndpoint() is not RouteEndpoint endpoint)
        {
            return;
        }

        var services = context.RequestServices;
        var values = context.Request.RouteValues;
        var resource = ResourceKeys.Select(k => values[k] as string).FirstOrDefault(v => !string.IsNullOrEmpty(v));
        try
        {
            await using var scope = services.GetRequiredService<IServiceScopeFactory>().CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
            var orgId = values["orgId"] as string ?? context.Items[OrgItem] as string;
            if (orgId is null && values["databaseId"] is string databaseId)
            {
                orgId = await db.Databases.AsNoTracking().Where(d => d.Id == databaseId).Select(d => d.OrgId).FirstOrDefaultAsync(context.RequestAborted);
            }

            db.AuditLog.Add(new AuditEntry
            {
                OrgId = orgId,
                Actor = Truncate(context.User.UserId() ?? "anonymous", 64),
                Action = Truncate($"{context.Request.Method} {endpoint.RoutePattern.RawText}", 200),
                ResourceId = resource is null ? null : Truncate(resource, 64),
                SourceIp = context.Connection.RemoteIpAddress?.ToString(),
                Status = context.Response.StatusCode,
                At = services.GetRequiredService<TimeProvider>().GetUtcNow(),
            });
            await db.SaveChangesAsync(CancellationToken.None);
        }
        catch (Exception ex) when (ex is DbUpdateException or InvalidOperationException or OperationCanceledException)
        {
            LogAuditFailed(services.GetRequiredService<ILoggerFactory>().CreateLogger("Kdb.ControlPlane.Audit"), context.Request.Path, ex);
        }
    });

    /// <summary>Names the org of a request whose route carries no org or database id (accepting an invitation).</summary>
    public static void SetAuditOrg(this HttpContext context, string orgId) => context.Items[OrgItem] = orgId;

    /// <summary>
    /// Adds an entry for an action that is not a /v1 request of its own (a lockout, a quota transition),
    /// saved with the caller's next SaveChanges.
    /// </summary>
    public static void Record(ControlPlaneDbContext db, string? orgId, string actor, string action, string? resourceId, string? sourceIp, int status, DateTimeOffset at) =>
        db.AuditLog.Add(new AuditEntry
        {
            OrgId = orgId,
            Actor = Truncate(actor, 64),
            Action = Truncate(action, 200),
            ResourceId = resourceId is null ? null : Truncate(resourceId, 64),
            SourceIp = sourceIp,
            Status = status,
            At = at,
        });

    public static IEndpointRouteBuilder MapAuditLogEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/orgs/{orgId}/audit-log", ListAsync).RequireAuthorization();
        app.MapGet("/v1/me/audit", MineAsync).RequireAuthorization();
        return app;
    }

    /// <summary>
    /// Entries that belong to no org but to the caller: failed logins, lockouts and password resets of their
    /// account, and their own requests outside any org. Only ever the caller's, whoever asks.
    /// </summary>
    private static async Task<IResult> MineAsync(HttpContext http, string? action, DateTimeOffset? from, DateTimeOffset? to, long? cursor, int? limit, ControlPlaneDbContext db, CancellationToken ct)
    {
        if (http.User.UserId() is not { } me)
        {
            return Problems.Unauthorized();
        }

        var query = db.AuditLog.AsNoTracking().Where(a => a.OrgId == null && (a.Actor == me || a.ResourceId == me));
        return await PageAsync(query, null, action, null, from, to, cursor, limit, ct);
    }

    private static async Task<IResult> ListAsync(HttpContext http, string orgId, string? actor, string? action, string? resource, DateTimeOffset? from, DateTimeOffset? to, long? cursor, int? limit, ControlPlaneDbContext db, CancellationToken ct)
    {
        var (_, denied) = await OrgAccess.RequireAsync(db, orgId, http.User.UserId(), OrgRoles.Admin, ct);
        if (denied is not null)
        {
            return denied;
        }

        return await PageAsync(db.AuditLog.AsNoTracking().Where(a => a.OrgId == orgId), actor, action, resource, from, to, cursor, limit, ct);
    }

    private static async Task<IResult> PageAsync(IQueryable<AuditEntry> query, string? actor, string? action, string? resource, DateTimeOffset? from, DateTimeOffset? to, long? cursor, int? limit, CancellationToken ct)
    {
        var take = Math.Clamp(limit ?? 50, 1, 200);
        if (!string.IsNullOrEmpty(actor))
        {
            query = query.Where(a => a.Actor == actor);
        }

        if (!string.IsNullOrEmpty(action))
        {
            query = query.Where(a => a.Action.Contains(action));
        }

        if (!string.IsNullOrEmpty(resource))
        {
            query = query.Where(a => a.ResourceId == resource);
        }

        if (from is { } f)
        {
            query = query.Where(a => a.At >= f);
        }

        if (to is { } t)
        {
            query = query.Where(a => a.At < t);
        }

        if (cursor is { } c)
        {
            query = query.Where(a => a.Id < c);
        }

        // Newest first: the cursor is the last id of a page.
        var rows = await query.OrderByDescending(a => a.Id).Take(take + 1).ToListAsync(ct);
        var items = rows.Take(take).Select(a => new AuditView(a.Id, a.Actor, a.Action, a.ResourceId, a.SourceIp, a.Status, a.At)).ToList();
        return Results.Ok(new OrgEndpoints.Page<AuditView>(items, rows.Count > take ? items[^1].Id.ToString(System.Globalization.CultureInfo.InvariantCulture) : null));
    }

    private static string Truncate(string value, int max) => value.Length <= max ? value : value[..max];

    [LoggerMessage(LogLevel.Error, "Could not record the audit entry for {Path}")]
    private static partial void LogAuditFailed(ILogger logger, string path, Exception ex);
}
