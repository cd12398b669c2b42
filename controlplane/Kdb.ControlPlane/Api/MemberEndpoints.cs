using System.Text.Json.Serialization;
using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Identity;
using Kdb.ControlPlane.Ids;
using Kdb.ControlPlane.Mail;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Kdb.ControlPlane.Api;

/// <summary>
/// Org members: invite by email (a pending invitation and a mail with its one-time link), accept, change a
/// member's role, remove a member or leave, transfer ownership. An org always keeps at least one owner.
/// </summary>
public static partial class MemberEndpoints
{
    public static readonly TimeSpan InvitationLifetime = TimeSpan.FromDays(7);

    [JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
    public sealed record InviteRequest(string? Email, string? Role);

    [JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
    public sealed record AcceptRequest(string? Token);

    [JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
    public sealed record UpdateMemberRequest(string? Role);

    /// <summary>An invitation; <c>status</c> is pending, accepted or expired. Its token only travels by mail.</summary>
    public sealed record InvitationView(string Id, string OrgId, string Email, string Role, string Status, string InvitedBy, DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt);

    public sealed record MembershipView(string OrgId, string UserId, string Role, DateTimeOffset CreatedAt);

    public static IEndpointRouteBuilder MapMemberEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1").RequireAuthorization();
        group.MapPost("/orgs/{orgId}/members", InviteAsync);
        group.MapGet("/orgs/{orgId}/invitations", ListInvitationsAsync);
        group.MapDelete("/orgs/{orgId}/invitations/{invitationId}", RevokeInvitationAsync);
        group.MapPost("/invitations/{invitationId}/accept", AcceptAsync);
        group.MapMethods("/orgs/{orgId}/members/{userId}", ["PATCH"], UpdateAsync);
        group.MapDelete("/orgs/{orgId}/members/{userId}", RemoveAsync);
        group.MapPost("/orgs/{orgId}/members/{userId}/transfer-ownership", TransferOwnershipAsync);
        return app;
    }

    private static async Task<IResult> InviteAsync(
        HttpContext http, string orgId, InviteRequest? request, ControlPlaneDbContext db, IMailSender mail, IOptions<MailOptions> mailOptions, TimeProvider time, ILoggerFactory loggers, CancellationToken ct)
    {
        var (caller, denied) = await OrgAccess.RequireAsync(db, orgId, http.User.UserId(), OrgRoles.Admin, ct);
        if (denied is not null)
        {
            return denied;
        }

        var email = request?.Email?.Trim() ?? string.Empty;
        var role = request?.Role ?? OrgRoles.Viewer;
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        if (!MailSetup.IsValidAddress(email))
        {
            errors["email"] = ["a valid email address is required"];
        }

        if (OrgRoles.Rank(role) < 0)
        {
            errors["role"] = [$"role must be one of {string.Join(", ", OrgRoles.All)}"];
        }

        if (errors.Count > 0)
        {
            return Problems.Validation(errors);
        }

        if (role == OrgRoles.Owner && caller!.Role != OrgRoles.Owner)
        {
            return OrgAccess.Forbidden(OrgRoles.Owner);
        }

        var normalized = email.ToUpperInvariant();
        var isMember = await db.Memberships.AnyAsync(m => m.OrgId == orgId && db.Users.Any(u => u.Id == m.UserId && u.NormalizedEmail == normalized), ct);
        if (isMember)
        {
            return Problems.Conflict("already-member", "That address already belongs to a member of this organization.");
        }

        var now = time.GetUtcNow();
        var (token, hash) = OneTimeTokens.New();
        var invitation = new Invitation
        {
            Id = KdbIds.NewTimeOrdered("inv_", time),
            OrgId = orgId,
            Email = email,
            NormalizedEmail = normalized,
            Role = role,
            TokenHash = hash,
            InvitedBy = caller!.UserId,
            CreatedAt = now,
            ExpiresAt = now + InvitationLifetime,
        };

        // Inviting the same address again replaces the pending invitation: only the newest link works.
        await db.Invitations.Where(i => i.OrgId == orgId && i.NormalizedEmail == normalized && i.AcceptedAt == null).ExecuteDeleteAsync(ct);
        db.Invitations.Add(invitation);
        await db.SaveChangesAsync(ct);

        var org = await db.Orgs.AsNoTracking().FirstAsync(o => o.Id == orgId, ct);
        var link = $"{mailOptions.Value.LinkBaseUrl.TrimEnd('/')}/invitations/{invitation.Id}?token={token}";
        try
        {
            await mail.SendAsync(new OutgoingMail(email, $"You are invited to {OneLine(org.Name)} on Kdb.Cloud", $"""
                You have been invited to join the organization "{org.Name}" on Kdb.Cloud as {role}.

                Sign up or log in with this address ({email}), then accept the invitation:

                {link}

                The link works once and expires on {invitation.ExpiresAt:u}.
                """), ct);
        }
        catch (MailDeliveryException ex)
        {
            // An invitation nobody can receive is withdrawn rather than left pending.
            LogMailFailed(loggers.CreateLogger("Kdb.ControlPlane.Members"), invitation.Id, ex);
            await db.Invitations.Where(i => i.Id == invitation.Id).ExecuteDeleteAsync(CancellationToken.None);
            return Results.Problem("The invitation mail could not be sent; try again later.", statusCode: StatusCodes.Status503ServiceUnavailable, title: "Mail unavailable", type: Problems.TypeBase + "mail-unavailable");
        }

        return Results.Json(View(invitation, now), statusCode: StatusCodes.Status202Accepted);
    }

    private static async Task<IResult> ListInvitationsAsync(HttpContext http, string orgId, ControlPlaneDbContext db, TimeProvider time, CancellationToken ct)
    {
        var (_, denied) = await OrgAccess.RequireAsync(db, orgId, http.User.UserId(), OrgRoles.Admin, ct);
        if (denied is not null)
        {
            return denied;
        }

        var now = time.GetUtcNow();
        var rows = await db.Invitations.AsNoTracking().Where(i => i.OrgId == orgId && i.AcceptedAt == null).OrderBy(i => i.Id).Take(500).ToListAsync(ct);
        return Results.Ok(new OrgEndpoints.Page<InvitationView>(rows.Select(i => View(i, now)).ToList(), null));
    }

    private static async Task<IResult> RevokeInvitationAsync(HttpContext http, string orgId, string invitationId, ControlPlaneDbContext db, CancellationToken ct)
    {
        var (_, denied) = await OrgAccess.RequireAsync(db, orgId, http.User.UserId(), OrgRoles.Admin, ct);
        if (denied is not null)
        {
            return denied;
        }

        var deleted = await db.Invitations.Where(i => i.Id == invitationId && i.OrgId == orgId && i.AcceptedAt == null).ExecuteDeleteAsync(ct);
        return deleted == 0 ? Problems.NotFound("No such invitation.") : Results.NoContent();
    }

    private static async Task<IResult> AcceptAsync(HttpContext http, string invitationId, AcceptRequest? request, ControlPlaneDbContext db, TimeProvider time, CancellationToken ct)
    {
        var userId = http.User.UserId();
        if (string.IsNullOrEmpty(request?.Token))
        {
            return Problems.Validation(new Dictionary<string, string[]> { ["token"] = ["the token from the invitation mail is required"] });
        }

        // Unknown id, another person's invitation and a wrong token all look alike: nothing to accept here.
        var user = userId is null || OrgAccess.IsApiKey(userId) ? null : await db.Users.AsNoTracking().FirstOrDefaultAsync(u => u.Id == userId, ct);
        var invitation = user is null ? null : await db.Invitations.FirstOrDefaultAsync(i => i.Id == invitationId, ct);
        if (user is null || invitation is null || invitation.NormalizedEmail != user.NormalizedEmail || invitation.TokenHash != OneTimeTokens.Hash(request.Token))
        {
            return Problems.NotFound("No such invitation.");
        }

        http.SetAuditOrg(invitation.OrgId);
        var now = time.GetUtcNow();
        if (invitation.AcceptedAt is not null)
        {
            return Problems.Conflict("invitation-used", "This invitation has already been accepted.");
        }

        if (invitation.ExpiresAt <= now)
        {
            return Problems.Conflict("invitation-expired", "This invitation has expired; ask for a new one.");
        }

        if (await db.Memberships.AnyAsync(m => m.OrgId == invitation.OrgId && m.UserId == user.Id, ct))
        {
            return Problems.Conflict("already-member", "You are already a member of this organization.");
        }

        invitation.AcceptedAt = now;
        invitation.AcceptedBy = user.Id;
        var membership = new Membership { OrgId = invitation.OrgId, UserId = user.Id, Role = invitation.Role, CreatedAt = now };
        db.Memberships.Add(membership);
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException)
        {
            // A concurrent accept of the same invitation, or the org was deleted meanwhile.
            return Problems.Conflict("invitation-used", "This invitation has already been accepted.");
        }

        return Results.Ok(new MembershipView(membership.OrgId, membership.UserId, membership.Role, membership.CreatedAt));
    }

    private static async Task<IResult> UpdateAsync(HttpContext http, string orgId, string userId, UpdateMemberRequest? request, ControlPlaneDbContext db, CancellationToken ct)
    {
        var caller = await OrgAccess.MembershipAsync(db, orgId, http.User.UserId(), ct);
        if (caller is null)
        {
            return OrgAccess.OrgNotFound();
        }

        if (request?.Role is not { } role || OrgRoles.Rank(role) < 0)
        {
            return Problems.Validation(new Dictionary<string, string[]> { ["role"] = [$"role must be one of {string.Join(", ", OrgRoles.All)}"] });
        }

        await using var tx = await db.Database.BeginTransactionAsync(ct);
        await LockOrgAsync(db, orgId, ct);
        var target = await db.Memberships.FirstOrDefaultAsync(m => m.OrgId == orgId && m.UserId == userId, ct);
        if (target is null)
        {
            return Problems.NotFound("No such member.");
        }

        if (!OrgRoles.AtLeast(caller.Role, OrgRoles.Admin))
        {
            return OrgAccess.Forbidden(OrgRoles.Admin);
        }

        // Owners alone make or unmake owners: an admin cannot promote anyone (itself included) to owner.
        if ((role == OrgRoles.Owner || target.Role == OrgRoles.Owner) && caller.Role != OrgRoles.Owner)
        {
            return OrgAccess.Forbidden(OrgRoles.Owner);
        }

        if (target.Role == OrgRoles.Owner && role != OrgRoles.Owner && await OwnerCountAsync(db, orgId, ct) <= 1)
        {
            return LastOwner();
        }

        target.Role = role;
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        return Results.Ok(new MembershipView(target.OrgId, target.UserId, target.Role, target.CreatedAt));
    }

    private static async Task<IResult> RemoveAsync(HttpContext http, string orgId, string userId, ControlPlaneDbContext db, CancellationToken ct)
    {
        var callerId = http.User.UserId();
        var caller = await OrgAccess.MembershipAsync(db, orgId, callerId, ct);
        if (caller is null)
        {
            return OrgAccess.OrgNotFound();
        }

        await using var tx = await db.Database.BeginTransactionAsync(ct);
        await LockOrgAsync(db, orgId, ct);
        var target = await db.Memberships.FirstOrDefaultAsync(m => m.OrgId == orgId && m.UserId == userId, ct);
        if (target is null)
        {
            return Problems.NotFound("No such member.");
        }

        // Anyone may leave; removing someone else takes an admin, and removing an owner takes an owner.
        var leaving = userId == callerId;
        if (!leaving && !OrgRoles.AtLeast(caller.Role, OrgRoles.Admin))
        {
            return OrgAccess.Forbidden(OrgRoles.Admin);
        }

        if (!leaving && target.Role == OrgRoles.Owner && caller.Role != OrgRoles.Owner)
        {
            return OrgAccess.Forbidden(OrgRoles.Owner);
        }

        if (target.Role == OrgRoles.Owner && await OwnerCountAsync(db, orgId, ct) <= 1)
        {
            return LastOwner();
        }

        db.Memberships.Remove(target);
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        return Results.NoContent();
    }

    private static async Task<IResult> TransferOwnershipAsync(HttpContext http, string orgId, string userId, ControlPlaneDbContext db, CancellationToken ct)
    {
        var callerId = http.User.UserId();
        var caller = await OrgAccess.MembershipAsync(db, orgId, callerId, ct);
        if (caller is null)
        {
            return OrgAccess.OrgNotFound();
        }

        await using var tx = await db.Database.BeginTransactionAsync(ct);
        await LockOrgAsync(db, orgId, ct);
        var target = await db.Memberships.FirstOrDefaultAsync(m => m.OrgId == orgId && m.UserId == userId, ct);
        if (target is null)
        {
            return Problems.NotFound("No such member.");
        }

        // An API key holds a role but is nobody: it cannot hand over what it does not own.
        if (caller.Role != OrgRoles.Owner || OrgAccess.IsApiKey(callerId!))
        {
            return OrgAccess.Forbidden(OrgRoles.Owner);
        }

        if (userId == callerId)
        {
            return Problems.Validation(new Dictionary<string, string[]> { ["userId"] = ["transfer ownership to another member"] });
        }

        // The new owner is promoted and the old one becomes an admin, in one transaction.
        target.Role = OrgRoles.Owner;
        var self = await db.Memberships.FirstAsync(m => m.OrgId == orgId && m.UserId == callerId, ct);
        self.Role = OrgRoles.Admin;
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        return Results.Ok(new MembershipView(target.OrgId, target.UserId, target.Role, target.CreatedAt));
    }

    // Serializes membership changes of one org, so two owners cannot both step down at once.
    private static Task LockOrgAsync(ControlPlaneDbContext db, string orgId, CancellationToken ct) =>
        db.Database.ExecuteSqlAsync($"SELECT 1 FROM orgs WHERE \"Id\" = {orgId} FOR UPDATE", ct);

    private static Task<int> OwnerCountAsync(ControlPlaneDbContext db, string orgId, CancellationToken ct) =>
        db.Memberships.CountAsync(m => m.OrgId == orgId && m.Role == OrgRoles.Owner, ct);

    private static IResult LastOwner() =>
        Problems.Conflict("last-owner", "An organization needs an owner: make another member owner first (or delete the organization).");

    private static InvitationView View(Invitation i, DateTimeOffset now) =>
        new(i.Id, i.OrgId, i.Email, i.Role, i.AcceptedAt is not null ? "accepted" : i.ExpiresAt <= now ? "expired" : "pending", i.InvitedBy, i.CreatedAt, i.ExpiresAt);

    private static string OneLine(string value) => value.ReplaceLineEndings(" ");

    [LoggerMessage(LogLevel.Warning, "Invitation {InvitationId} withdrawn: its mail could not be sent")]
    private static partial void LogMailFailed(ILogger logger, string invitationId, Exception ex);
}
