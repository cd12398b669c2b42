using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Serialization;
using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Identity;
using Kdb.ControlPlane.Ids;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Api;

/// <summary><c>/v1/orgs</c>: list, create, read, update (name by admins, plan by owners) and delete orgs; list members.</summary>
public static class OrgEndpoints
{
    public static readonly string[] Plans = ["free", "pro", "enterprise"];

    [JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
    public sealed record CreateOrgRequest(string? Name);

    // Only the org's own editable fields: an id, plan-by-non-owner or timestamps cannot be assigned.
    [JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
    public sealed record UpdateOrgRequest(string? Name, string? Plan);

    public sealed record OrgDetail(string Id, string Name, string Plan, string Role, DateTimeOffset CreatedAt);

    public sealed record MemberView(string UserId, string Email, string Name, string Role, DateTimeOffset CreatedAt);

    public sealed record Page<T>(IReadOnlyList<T> Items, string? NextCursor);

    public static IEndpointRouteBuilder MapOrgEndpoints(this IEndpointRouteBuilder app)
    {
        var orgs = app.MapGroup("/v1/orgs").RequireAuthorization();
        orgs.MapGet("/", ListAsync);
        orgs.MapPost("/", CreateAsync);
        orgs.MapGet("/{orgId}", GetAsync);
        orgs.MapMethods("/{orgId}", ["PATCH"], UpdateAsync);
        orgs.MapDelete("/{orgId}", DeleteAsync);
        orgs.MapGet("/{orgId}/members", ListMembersAsync);
        return app;
    }

    private static async Task<IResult> ListAsync(HttpContext http, ControlPlaneDbContext db, string? cursor, int? limit, CancellationToken ct)
    {
        var take = Math.Clamp(limit ?? 50, 1, 200);
        var userId = http.User.UserId();
        if (userId is not null && OrgAccess.IsApiKey(userId))
        {
            // A key acts in its one org only.
            var key = await OrgAccess.ValidApiKeyAsync(db, userId, ct);
            var keyOrg = key is null ? null : await db.Orgs.AsNoTracking().FirstOrDefaultAsync(o => o.Id == key.OrgId, ct);
            return Results.Ok(new Page<OrgDetail>(keyOrg is null ? [] : [new OrgDetail(keyOrg.Id, keyOrg.Name, keyOrg.Plan, key!.Role, keyOrg.CreatedAt)], null));
        }

        var query = db.Memberships.AsNoTracking().Where(m => m.UserId == userId)
            .Join(db.Orgs, m => m.OrgId, o => o.Id, (m, o) => new { o.Id, o.Name, o.Plan, m.Role, o.CreatedAt });
        if (!string.IsNullOrEmpty(cursor))
        {
            query = query.Where(o => string.Compare(o.Id, cursor) > 0);
        }

        var rows = await query.OrderBy(o => o.Id).Take(take + 1).ToListAsync(ct);
        var items = rows.Take(take).Select(o => new OrgDetail(o.Id, o.Name, o.Plan, o.Role, o.CreatedAt)).ToList();
        return Results.Ok(new Page<OrgDetail>(items, rows.Count > take ? items[^1].Id : null));
    }

    private static async Task<IResult> CreateAsync(HttpContext http, CreateOrgRequest? request, ControlPlaneDbContext db, TimeProvider time, CancellationToken ct)
    {
        var name = request?.Name?.Trim() ?? string.Empty;
        if (name.Length is 0 or > 200)
        {
            return Problems.Validation(new Dictionary<string, string[]> { ["name"] = ["a name of 1 to 200 characters is required"] });
        }

        var now = time.GetUtcNow();
        var org = new Org { Id = KdbIds.NewTimeOrdered("org_", time), Name = name, Plan = "free", CreatedAt = now };
        db.Orgs.Add(org);
        db.Memberships.Add(new Membership { OrgId = org.Id, UserId = http.User.UserId()!, Role = OrgRoles.Owner, CreatedAt = now });
        await db.SaveChangesAsync(ct);
        var detail = new OrgDetail(org.Id, org.Name, org.Plan, OrgRoles.Owner, org.CreatedAt);
        http.Response.Headers.ETag = ETag(org);
        return Results.Created($"/v1/orgs/{org.Id}", detail);
    }

    private static async Task<IResult> GetAsync(HttpContext http, string orgId, ControlPlaneDbContext db, CancellationToken ct)
    {
        var membership = await OrgAccess.MembershipAsync(db, orgId, http.User.UserId(), ct);
        var org = membership is null ? null : await db.Orgs.AsNoTracking().FirstOrDefaultAsync(o => o.Id == orgId, ct);
        if (org is null)
        {
            return OrgAccess.OrgNotFound();
        }

        http.Response.Headers.ETag = ETag(org);
        return Results.Ok(new OrgDetail(org.Id, org.Name, org.Plan, membership!.Role, org.CreatedAt));
    }

    private static async Task<IResult> UpdateAsync(HttpContext http, string orgId, UpdateOrgRequest? request, ControlPlaneDbContext db, Internal.RouteSignal signal, TimeProvider time, CancellationToken ct)
    {
        var membership = await OrgAccess.MembershipAsync(db, orgId, http.User.UserId(), ct);
        var org = membership is null ? null : await db.Orgs.FirstOrDefaultAsync(o => o.Id == orgId, ct);
        if (org is null)
        {
            return OrgAccess.OrgNotFound();
        }

        if (request is null || (request.Name is null && request.Plan is null))
        {
            return Problems.Validation(new Dictionary<string, string[]> { ["body"] = ["give name or plan"] });
        }

        if (!OrgRoles.AtLeast(membership!.Role, OrgRoles.Admin))
        {
            return OrgAccess.Forbidden(OrgRoles.Admin);
        }

        if (request.Plan is not null && membership.Role != OrgRoles.Owner)
        {
            return OrgAccess.Forbidden(OrgRoles.Owner);
        }

        var ifMatch = http.Request.Headers.IfMatch.ToString();
        if (ifMatch.Length > 0 && ifMatch != "*" && ifMatch != ETag(org))
        {
            return Results.Problem("The organization changed since it was read (ETag mismatch).", statusCode: StatusCodes.Status412PreconditionFailed, title: "Precondition failed", type: Problems.TypeBase + "precondition-failed");
        }

        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        if (request.Name is not null && request.Name.Trim().Length is 0 or > 200)
        {
            errors["name"] = ["a name of 1 to 200 characters is required"];
        }

        if (request.Plan is not null && !Plans.Contains(request.Plan, StringComparer.Ordinal))
        {
            errors["plan"] = [$"plan must be one of {string.Join(", ", Plans)}"];
        }

        if (errors.Count > 0)
        {
            return Problems.Validation(errors);
        }

        var planChanged = request.Plan is not null && request.Plan != org.Plan;
        if (planChanged)
        {
            // Saved with the org: invoices price each part of a month by the plan then in effect.
            db.OrgPlanChanges.Add(new OrgPlanChange { OrgId = org.Id, FromPlan = org.Plan, ToPlan = request.Plan!, At = time.GetUtcNow(), ChangedBy = http.User.UserId() ?? "unknown" });
        }

        org.Name = request.Name?.Trim() ?? org.Name;
        org.Plan = request.Plan ?? org.Plan;
        await db.SaveChangesAsync(ct);
        if (planChanged && await Usage.QuotaEvaluator.EvaluateAsync(db, [orgId], time, ct) > 0)
        {
            // Other limits now apply: an upgrade can lift a throttle, a downgrade can impose one.
            signal.Pulse();
        }

        http.Response.Headers.ETag = ETag(org);
        return Results.Ok(new OrgDetail(org.Id, org.Name, org.Plan, membership.Role, org.CreatedAt));
    }

    private static async Task<IResult> DeleteAsync(HttpContext http, string orgId, ControlPlaneDbContext db, CancellationToken ct)
    {
        var membership = await OrgAccess.MembershipAsync(db, orgId, http.User.UserId(), ct);
        if (membership is null)
        {
            return OrgAccess.OrgNotFound();
        }

        if (membership.Role != OrgRoles.Owner)
        {
            return OrgAccess.Forbidden(OrgRoles.Owner);
        }

        await using var tx = await db.Database.BeginTransactionAsync(ct);
        await db.Memberships.Where(m => m.OrgId == orgId).ExecuteDeleteAsync(ct);
        await db.Invitations.Where(i => i.OrgId == orgId).ExecuteDeleteAsync(ct);
        await db.Orgs.Where(o => o.Id == orgId).ExecuteDeleteAsync(ct);
        await tx.CommitAsync(ct);
        return Results.NoContent();
    }

    private static async Task<IResult> ListMembersAsync(HttpContext http, string orgId, ControlPlaneDbContext db, CancellationToken ct)
    {
        if (await OrgAccess.MembershipAsync(db, orgId, http.User.UserId(), ct) is null)
        {
            return OrgAccess.OrgNotFound();
        }

        var members = await db.Memberships.AsNoTracking().Where(m => m.OrgId == orgId)
            .Join(db.Users, m => m.UserId, u => u.Id, (m, u) => new { m.UserId, u.Email, u.Name, m.Role, m.CreatedAt })
            .OrderBy(m => m.UserId)
            .Select(m => new MemberView(m.UserId, m.Email!, m.Name, m.Role, m.CreatedAt))
            .ToListAsync(ct);
        return Results.Ok(new Page<MemberView>(members, null));
    }

    private static string ETag(Org org) =>
        "\"" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{org.Id}|{org.Name}|{org.Plan}")))[..16] + "\"";
}
