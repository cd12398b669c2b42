using Kdb.ControlPlane.Data;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Api;

/// <summary>Org roles, weakest first. A caller's role decides what it may do; a non-member sees "not found".</summary>
public static class OrgRoles
{
    public const string Viewer = "viewer";
    public const string Developer = "developer";
    public const string Admin = "admin";
    public const string Owner = "owner";

    public static readonly string[] All = [Viewer, Developer, Admin, Owner];

    public static int Rank(string role) => Array.IndexOf(All, role);

    public static bool AtLeast(string role, string required) => Rank(role) >= Rank(required);
}

/// <summary>Looks up the caller's membership. Object-level authorization: no membership means 404, never 403.</summary>
public static class OrgAccess
{
    public static async Task<Membership?> MembershipAsync(ControlPlaneDbContext db, string orgId, string? userId, CancellationToken ct)
    {
        if (userId is null)
        {
            return null;
        }

        if (IsApiKey(userId))
        {
            // Checked on every request, so deleting a key ends its tokens at once, not when they expire.
            var key = await ValidApiKeyAsync(db, userId, ct);
            return key is not null && key.OrgId == orgId
                ? new Membership { OrgId = orgId, UserId = userId, Role = key.Role, CreatedAt = key.CreatedAt }
                : null;
        }

        return await db.Memberships.AsNoTracking().FirstOrDefaultAsync(m => m.OrgId == orgId && m.UserId == userId, ct);
    }

    /// <summary>
    /// The caller's membership when it holds at least <paramref name="required"/>; otherwise the answer to
    /// give: 404 for a non-member (the org does not exist for it), 403 for a member whose role is too weak.
    /// </summary>
    public static async Task<(Membership? Caller, IResult? Denied)> RequireAsync(ControlPlaneDbContext db, string orgId, string? userId, string required, CancellationToken ct)
    {
        var caller = await MembershipAsync(db, orgId, userId, ct);
        if (caller is null)
        {
            return (null, OrgNotFound());
        }

        return OrgRoles.AtLeast(caller.Role, required) ? (caller, null) : (null, Forbidden(required));
    }

    /// <summary>True when the token's subject is an API key rather than a user.</summary>
    public static bool IsApiKey(string subject) => subject.StartsWith("key_", StringComparison.Ordinal);

    /// <summary>The key, when it exists and has not expired; records when it was last used (at most once a minute).</summary>
    public static async Task<ApiKeyRecord?> ValidApiKeyAsync(ControlPlaneDbContext db, string keyId, CancellationToken ct)
    {
        var key = await db.ApiKeys.FirstOrDefaultAsync(k => k.Id == keyId, ct);
        var now = DateTimeOffset.UtcNow;
        if (key is null || (key.ExpiresAt is { } expires && expires <= now))
        {
            return null;
        }

        if (key.LastUsedAt is null || now - key.LastUsedAt > TimeSpan.FromMinutes(1))
        {
            key.LastUsedAt = now;
            await db.SaveChangesAsync(ct);
        }

        return key;
    }

    public static IResult OrgNotFound() => Problems.NotFound("No such organization.");

    public static IResult Forbidden(string required) =>
        Results.Problem($"This action needs the {required} role in the organization.", statusCode: StatusCodes.Status403Forbidden, title: "Forbidden", type: Problems.TypeBase + "forbidden");
}
