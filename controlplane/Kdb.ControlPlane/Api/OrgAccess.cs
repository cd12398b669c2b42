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
    public static async Task<Membership?> MembershipAsync(ControlPlaneDbContext db, string orgId, string? userId, CancellationToken ct) =>
        userId is null
            ? null
            : await db.Memberships.AsNoTracking().FirstOrDefaultAsync(m => m.OrgId == orgId && m.UserId == userId, ct);

    public static IResult OrgNotFound() => Problems.NotFound("No such organization.");

    public static IResult Forbidden(string required) =>
        Results.Problem($"This action needs the {required} role in the organization.", statusCode: StatusCodes.Status403Forbidden, title: "Forbidden", type: Problems.TypeBase + "forbidden");
}
