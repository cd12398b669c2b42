using System.ComponentModel.DataAnnotations;
using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Identity;
using Kdb.ControlPlane.Ids;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Api;

/// <summary>Sign-up and the caller's own account.</summary>
public static class AccountEndpoints
{
    public sealed record SignupRequest(string? Email, string? Password, string? Name);

    public sealed record UserView(string Id, string Email, string Name, DateTimeOffset CreatedAt);

    public sealed record OrgView(string Id, string Name, string Plan, DateTimeOffset CreatedAt);

    public sealed record OrgMembershipView(string Id, string Name, string Plan, string Role);

    public sealed record SignupResponse(UserView User, OrgView Org);

    public sealed record MeResponse(string Id, string Kind, string? Email, string Name, IReadOnlyList<OrgMembershipView> Orgs);

    public static IEndpointRouteBuilder MapAccountEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/signup", SignupAsync).AllowAnonymous().WithName("Signup");
        app.MapGet("/v1/me", MeAsync).RequireAuthorization().WithName("GetMe");
        return app;
    }

    private static async Task<IResult> SignupAsync(SignupRequest? request, UserManager<User> users, ControlPlaneDbContext db, TimeProvider time, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        var email = request?.Email?.Trim() ?? string.Empty;
        var name = request?.Name?.Trim() ?? string.Empty;
        if (email.Length == 0 || email.Length > 254 || !new EmailAddressAttribute().IsValid(email))
        {
            errors["email"] = ["a valid email address is required"];
        }

        if (name.Length is 0 or > 200)
        {
            errors["name"] = ["a name of 1 to 200 characters is required"];
        }

        if (string.IsNullOrEmpty(request?.Password))
        {
            errors["password"] = ["a password is required"];
        }

        if (errors.Count > 0)
        {
            return Problems.Validation(errors);
        }

        var now = time.GetUtcNow();
        var user = new User { Id = KdbIds.NewTimeOrdered("usr_", time), Email = email, UserName = email, Name = name, CreatedAt = now };
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        var created = await users.CreateAsync(user, request!.Password!);
        if (!created.Succeeded)
        {
            if (created.Errors.Any(e => e.Code is "DuplicateEmail" or "DuplicateUserName"))
            {
                return Problems.Conflict("email-taken", "An account with this email already exists.");
            }

            return Problems.Validation(new Dictionary<string, string[]>
            {
                ["password"] = created.Errors.Select(e => e.Description).ToArray(),
            });
        }

        var org = new Org { Id = KdbIds.NewTimeOrdered("org_", time), Name = $"{name}'s org", Plan = "free", CreatedAt = now };
        db.Orgs.Add(org);
        db.Memberships.Add(new Membership { OrgId = org.Id, UserId = user.Id, Role = "owner", CreatedAt = now });
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        return Results.Created($"/v1/me", new SignupResponse(
            new UserView(user.Id, email, name, now),
            new OrgView(org.Id, org.Name, org.Plan, org.CreatedAt)));
    }

    private static async Task<IResult> MeAsync(HttpContext http, UserManager<User> users, ControlPlaneDbContext db, CancellationToken ct)
    {
        var userId = http.User.UserId();
        if (userId is not null && OrgAccess.IsApiKey(userId))
        {
            var key = await OrgAccess.ValidApiKeyAsync(db, userId, ct);
            var org = key is null ? null : await db.Orgs.AsNoTracking().FirstOrDefaultAsync(o => o.Id == key.OrgId, ct);
            return key is null || org is null
                ? Problems.Unauthorized()
                : Results.Ok(new MeResponse(key.Id, "api_key", null, key.Name, [new OrgMembershipView(org.Id, org.Name, org.Plan, key.Role)]));
        }

        var user = userId is null ? null : await users.FindByIdAsync(userId);
        if (user is null)
        {
            return Problems.Unauthorized();
        }

        var orgs = await db.Memberships.AsNoTracking()
            .Where(m => m.UserId == user.Id)
            .Join(db.Orgs, m => m.OrgId, o => o.Id, (m, o) => new { o.Id, o.Name, o.Plan, m.Role })
            .OrderBy(o => o.Id)
            .Select(o => new OrgMembershipView(o.Id, o.Name, o.Plan, o.Role))
            .ToListAsync(ct);
        return Results.Ok(new MeResponse(user.Id, "user", user.Email!, user.Name, orgs));
    }
}
