using System.Net;
using System.Text.Json;
using Kdb.Testing;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Tests;

[Collection(TestCollections.Postgres)]
public sealed class MemberTests(SharedControlPlane cp) : IClassFixture<SharedControlPlane>
{
    private ControlPlaneApp App => cp.App;

    [Fact]
    public async Task Invite_SendsMailWithOneTimeLink_AndAcceptJoinsWithTheRole()
    {
        var (owner, _, orgId) = await cp.UserAsync(SharedControlPlane.Email("owner"));
        var email = SharedControlPlane.Email("dev");
        var (invitee, inviteeId, _) = await cp.UserAsync(email);

        var invited = await App.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/members", owner, new { email, role = "developer" });

        Assert.Equal(HttpStatusCode.Accepted, invited.Status);
        Assert.Equal("pending", invited.Body.GetProperty("status").GetString());
        Assert.False(invited.Body.TryGetProperty("token", out _)); // the token travels only by mail
        var mail = await cp.WaitForMailAsync(email);
        Assert.Matches("(^|\r\n)Date: [A-Z][a-z]{2}, \\d{2} [A-Z][a-z]{2} \\d{4} \\d{2}:\\d{2}:\\d{2} \\+0000\r\n", mail);
        Assert.Contains("\r\nFrom: ", mail, StringComparison.Ordinal);
        Assert.Matches("\r\nMessage-ID: <[0-9a-f]{32}@[^>]+>\r\n", mail);
        Assert.Contains("\r\nSubject: You are invited to ", mail, StringComparison.Ordinal);
        var invitationId = invited.Body.GetProperty("id").GetString()!;
        Assert.Equal($"/invitations/{invitationId}", SharedControlPlane.Link(mail).AbsolutePath);
        var pending = await App.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/invitations", owner);
        Assert.Contains(invitationId, pending.Body.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("id").GetString()));

        var accepted = await App.SendAsync(HttpMethod.Post, $"/v1/invitations/{invitationId}/accept", invitee, new { token = SharedControlPlane.Token(mail) });
        var again = await App.SendAsync(HttpMethod.Post, $"/v1/invitations/{invitationId}/accept", invitee, new { token = SharedControlPlane.Token(mail) });

        Assert.Equal(HttpStatusCode.OK, accepted.Status);
        Assert.Equal("developer", accepted.Body.GetProperty("role").GetString());
        Assert.Equal(HttpStatusCode.Conflict, again.Status);
        var members = await App.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/members", invitee);
        Assert.Contains(members.Body.GetProperty("items").EnumerateArray(), m => m.GetProperty("userId").GetString() == inviteeId && m.GetProperty("role").GetString() == "developer");
        var audit = await App.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/audit-log", owner);
        var actions = audit.Body.GetProperty("items").EnumerateArray().Select(a => a.GetProperty("action").GetString()).ToList();
        Assert.Contains("POST /v1/orgs/{orgId}/members", actions);
        Assert.Contains("POST /v1/invitations/{invitationId}/accept", actions);
    }

    [Fact]
    public async Task Accept_OtherUserOrWrongTokenOrApiKey_IsNotFound_AndMissingTokenIs400()
    {
        var (owner, _, orgId) = await cp.UserAsync(SharedControlPlane.Email("owner"));
        var email = SharedControlPlane.Email("invitee");
        var (invitee, _, _) = await cp.UserAsync(email);
        var (mallory, _, _) = await cp.UserAsync(SharedControlPlane.Email("mallory"));
        var invited = await App.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/members", owner, new { email, role = "admin" });
        var id = invited.Body.GetProperty("id").GetString()!;
        var token = SharedControlPlane.Token(await cp.WaitForMailAsync(email));

        Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Post, $"/v1/invitations/{id}/accept", mallory, new { token })).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Post, $"/v1/invitations/{id}/accept", invitee, new { token = token + "x" })).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Post, "/v1/invitations/inv_00000000000000000000000000/accept", invitee, new { token })).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await App.SendAsync(HttpMethod.Post, $"/v1/invitations/{id}/accept", invitee, new { })).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await App.SendAsync(HttpMethod.Post, $"/v1/invitations/{id}/accept", invitee, new { token, orgId = "org_x" })).Status);
        var key = await App.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/api-keys", owner, new { name = "k", role = "admin" });
        var keyToken = await App.ServiceTokenAsync(key.Body.GetProperty("apiKey").GetProperty("id").GetString()!, key.Body.GetProperty("secret").GetString()!);
        Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Post, $"/v1/invitations/{id}/accept", keyToken, new { token })).Status);

        // Nothing above consumed it: the invitee still can.
        Assert.Equal(HttpStatusCode.OK, (await App.SendAsync(HttpMethod.Post, $"/v1/invitations/{id}/accept", invitee, new { token })).Status);
    }

    [Fact]
    public async Task Accept_Expired_Is409_AndReinviteReplacesTheOldLink()
    {
        var (owner, _, orgId) = await cp.UserAsync(SharedControlPlane.Email("owner"));
        var email = SharedControlPlane.Email("late");
        var (invitee, _, _) = await cp.UserAsync(email);
        var first = await App.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/members", owner, new { email, role = "viewer" });
        var firstToken = SharedControlPlane.Token(await cp.WaitForMailAsync(email, 1));
        var second = await App.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/members", owner, new { email, role = "viewer" });
        var secondToken = SharedControlPlane.Token(await cp.WaitForMailAsync(email, 2));
        var secondId = second.Body.GetProperty("id").GetString()!;

        Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Post, $"/v1/invitations/{first.Body.GetProperty("id").GetString()}/accept", invitee, new { token = firstToken })).Status);
        await cp.WithDbAsync(db => db.Invitations.Where(i => i.Id == secondId).ExecuteUpdateAsync(s => s.SetProperty(i => i.ExpiresAt, DateTimeOffset.UtcNow.AddMinutes(-1))));
        var expired = await App.SendAsync(HttpMethod.Post, $"/v1/invitations/{secondId}/accept", invitee, new { token = secondToken });

        Assert.Equal(HttpStatusCode.Conflict, expired.Status);
        Assert.EndsWith("invitation-expired", expired.Body.GetProperty("type").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"email\":\"not-an-address\",\"role\":\"viewer\"}")]
    [InlineData("{\"email\":\"a@example.com\",\"role\":\"superuser\"}")]
    [InlineData("{\"email\":\"a@example.com\\r\\nBcc: victim@example.com\",\"role\":\"viewer\"}")]
    [InlineData("{\"email\":\"a@example.com\",\"role\":\"viewer\",\"orgId\":\"org_00000000000000000000000000\"}")]
    [InlineData("{\"email\":")]
    [InlineData("[1,2]")]
    public async Task Invite_BadInput_Is400ProblemAndSendsNothing(string body)
    {
        var (owner, _, orgId) = await cp.UserAsync(SharedControlPlane.Email("owner"));

        var result = await App.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/members", owner, body);

        Assert.Equal(HttpStatusCode.BadRequest, result.Status);
        Assert.Equal("application/problem+json", result.Response.Content.Headers.ContentType?.MediaType);
        Assert.Empty(cp.MailTo("a@example.com"));
    }

    [Fact]
    public async Task Invite_ExistingMember_Is409()
    {
        var ownerEmail = SharedControlPlane.Email("owner");
        var (owner, _, orgId) = await cp.UserAsync(ownerEmail);

        var result = await App.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/members", owner, new { email = ownerEmail.ToUpperInvariant(), role = "viewer" });

        Assert.Equal(HttpStatusCode.Conflict, result.Status);
    }

    [Fact]
    public async Task MemberEndpoints_EachRole_GetsExactlyItsRights()
    {
        var (owner, ownerId, orgId) = await cp.UserAsync(SharedControlPlane.Email("owner"));
        var (admin, adminId) = await cp.JoinAsync(orgId, owner, "admin");
        var (developer, developerId) = await cp.JoinAsync(orgId, owner, "developer");
        var (viewer, viewerId) = await cp.JoinAsync(orgId, owner, "viewer");

        // Inviting: admins and owners; only owners invite owners.
        Assert.Equal(HttpStatusCode.Forbidden, (await App.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/members", viewer, new { email = SharedControlPlane.Email("x"), role = "viewer" })).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await App.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/members", developer, new { email = SharedControlPlane.Email("x"), role = "viewer" })).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await App.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/members", admin, new { email = SharedControlPlane.Email("x"), role = "owner" })).Status);
        Assert.Equal(HttpStatusCode.Accepted, (await App.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/members", admin, new { email = SharedControlPlane.Email("x"), role = "admin" })).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await App.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/invitations", developer)).Status);

        // Changing roles: admins for non-owners; an admin cannot make itself (or anyone) owner.
        Assert.Equal(HttpStatusCode.Forbidden, (await App.SendAsync(HttpMethod.Patch, $"/v1/orgs/{orgId}/members/{viewerId}", developer, new { role = "developer" })).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await App.SendAsync(HttpMethod.Patch, $"/v1/orgs/{orgId}/members/{viewerId}", viewer, new { role = "admin" })).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await App.SendAsync(HttpMethod.Patch, $"/v1/orgs/{orgId}/members/{adminId}", admin, new { role = "owner" })).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await App.SendAsync(HttpMethod.Patch, $"/v1/orgs/{orgId}/members/{ownerId}", admin, new { role = "viewer" })).Status);
        var promoted = await App.SendAsync(HttpMethod.Patch, $"/v1/orgs/{orgId}/members/{viewerId}", admin, new { role = "developer" });
        Assert.Equal(HttpStatusCode.OK, promoted.Status);
        Assert.Equal("developer", promoted.Body.GetProperty("role").GetString());

        // Removing: admins remove non-owners, nobody below admin removes others, an admin cannot remove an owner.
        Assert.Equal(HttpStatusCode.Forbidden, (await App.SendAsync(HttpMethod.Delete, $"/v1/orgs/{orgId}/members/{viewerId}", developer)).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await App.SendAsync(HttpMethod.Delete, $"/v1/orgs/{orgId}/members/{ownerId}", admin)).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await App.SendAsync(HttpMethod.Delete, $"/v1/orgs/{orgId}/members/{viewerId}", admin)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}", viewer)).Status);

        // Anyone may leave.
        Assert.Equal(HttpStatusCode.NoContent, (await App.SendAsync(HttpMethod.Delete, $"/v1/orgs/{orgId}/members/{developerId}", developer)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/members", developer)).Status);
    }

    [Fact]
    public async Task LastOwner_CannotLeaveOrBeDemoted_UntilOwnershipIsTransferred()
    {
        var (owner, ownerId, orgId) = await cp.UserAsync(SharedControlPlane.Email("owner"));
        var (admin, adminId) = await cp.JoinAsync(orgId, owner, "admin");

        var leave = await App.SendAsync(HttpMethod.Delete, $"/v1/orgs/{orgId}/members/{ownerId}", owner);
        var demote = await App.SendAsync(HttpMethod.Patch, $"/v1/orgs/{orgId}/members/{ownerId}", owner, new { role = "admin" });
        Assert.Equal(HttpStatusCode.Conflict, leave.Status);
        Assert.EndsWith("last-owner", leave.Body.GetProperty("type").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Conflict, demote.Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await App.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/members/{adminId}/transfer-ownership", admin)).Status);

        var transferred = await App.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/members/{adminId}/transfer-ownership", owner);

        Assert.Equal(HttpStatusCode.OK, transferred.Status);
        var roles = (await App.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/members", admin)).Body.GetProperty("items").EnumerateArray()
            .ToDictionary(m => m.GetProperty("userId").GetString()!, m => m.GetProperty("role").GetString());
        Assert.Equal("owner", roles[adminId]);
        Assert.Equal("admin", roles[ownerId]);
        Assert.Equal(HttpStatusCode.NoContent, (await App.SendAsync(HttpMethod.Delete, $"/v1/orgs/{orgId}/members/{ownerId}", owner)).Status);
        Assert.Equal(HttpStatusCode.Conflict, (await App.SendAsync(HttpMethod.Delete, $"/v1/orgs/{orgId}/members/{adminId}", admin)).Status);
    }

    [Fact]
    public async Task TwoOwners_StepDownAtOnce_OneOwnerAlwaysRemains()
    {
        var (owner, ownerId, orgId) = await cp.UserAsync(SharedControlPlane.Email("owner"));
        var (second, secondId) = await cp.JoinAsync(orgId, owner, "owner");

        var results = await Task.WhenAll(
            App.SendAsync(HttpMethod.Delete, $"/v1/orgs/{orgId}/members/{ownerId}", owner),
            App.SendAsync(HttpMethod.Delete, $"/v1/orgs/{orgId}/members/{secondId}", second));

        Assert.Single(results, r => r.Status == HttpStatusCode.NoContent);
        Assert.Single(results, r => r.Status == HttpStatusCode.Conflict);
        Assert.Equal(1, await cp.WithDbAsync(db => db.Memberships.CountAsync(m => m.OrgId == orgId && m.Role == "owner")));
    }

    [Fact]
    public async Task MemberEndpoints_OfAnotherOrg_AreNotFound()
    {
        var (alice, aliceId, aliceOrg) = await cp.UserAsync(SharedControlPlane.Email("alice"));
        var (bob, _, bobOrg) = await cp.UserAsync(SharedControlPlane.Email("bob"));
        var invited = await App.SendAsync(HttpMethod.Post, $"/v1/orgs/{aliceOrg}/members", alice, new { email = SharedControlPlane.Email("z"), role = "viewer" });
        var invitationId = invited.Body.GetProperty("id").GetString();

        var attempts = new (HttpMethod Method, string Path, object? Body)[]
        {
            (HttpMethod.Post, $"/v1/orgs/{aliceOrg}/members", new { email = SharedControlPlane.Email("y"), role = "viewer" }),
            (HttpMethod.Get, $"/v1/orgs/{aliceOrg}/invitations", null),
            (HttpMethod.Delete, $"/v1/orgs/{aliceOrg}/invitations/{invitationId}", null),
            (HttpMethod.Patch, $"/v1/orgs/{aliceOrg}/members/{aliceId}", new { role = "viewer" }),
            (HttpMethod.Delete, $"/v1/orgs/{aliceOrg}/members/{aliceId}", null),
            (HttpMethod.Post, $"/v1/orgs/{aliceOrg}/members/{aliceId}/transfer-ownership", null),
            // Bob's own org, Alice's user id: she is no member there.
            (HttpMethod.Patch, $"/v1/orgs/{bobOrg}/members/{aliceId}", new { role = "viewer" }),
            (HttpMethod.Delete, $"/v1/orgs/{bobOrg}/invitations/{invitationId}", null),
        };
        foreach (var (method, path, body) in attempts)
        {
            var result = await App.SendAsync(method, path, bob, body);
            Assert.True(result.Status == HttpStatusCode.NotFound, $"{method} {path}: {result.Status}");
        }

        var members = await App.SendAsync(HttpMethod.Get, $"/v1/orgs/{aliceOrg}/members", alice);
        Assert.Equal("owner", Assert.Single(members.Body.GetProperty("items").EnumerateArray()).GetProperty("role").GetString());
        Assert.Equal(HttpStatusCode.NoContent, (await App.SendAsync(HttpMethod.Delete, $"/v1/orgs/{aliceOrg}/invitations/{invitationId}", alice)).Status);
    }

    [Theory]
    [InlineData("{\"role\":\"root\"}")]
    [InlineData("{\"role\":\"viewer\",\"userId\":\"usr_00000000000000000000000000\"}")]
    [InlineData("{}")]
    [InlineData("{\"role\":")]
    public async Task UpdateMember_BadInput_Is400AndChangesNothing(string body)
    {
        var (owner, _, orgId) = await cp.UserAsync(SharedControlPlane.Email("owner"));
        var (_, viewerId) = await cp.JoinAsync(orgId, owner, "viewer");

        var result = await App.SendAsync(HttpMethod.Patch, $"/v1/orgs/{orgId}/members/{viewerId}", owner, body);

        Assert.Equal(HttpStatusCode.BadRequest, result.Status);
        Assert.Equal("viewer", await cp.WithDbAsync(db => db.Memberships.Where(m => m.OrgId == orgId && m.UserId == viewerId).Select(m => m.Role).SingleAsync()));
    }

    [Fact]
    public async Task OpenApi_ListsTheNewEndpoints()
    {
        using var response = await App.Client.GetAsync(new Uri("/openapi/v1.json", UriKind.Relative));
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var paths = doc.RootElement.GetProperty("paths");

        Assert.True(paths.TryGetProperty("/v1/orgs/{orgId}/members/{userId}", out _));
        Assert.True(paths.TryGetProperty("/v1/invitations/{invitationId}/accept", out _));
        Assert.True(paths.TryGetProperty("/v1/orgs/{orgId}/members/{userId}/transfer-ownership", out _));
        Assert.True(paths.TryGetProperty("/v1/password-reset", out _));
        Assert.True(paths.TryGetProperty("/v1/password-reset/confirm", out _));
        Assert.True(paths.TryGetProperty("/v1/databases/{databaseId}/connection-log", out _));
        Assert.True(paths.TryGetProperty("/v1/databases/{databaseId}/auth-lockouts", out _));
        Assert.True(paths.TryGetProperty("/internal/v1/connection-log", out _));
        Assert.True(paths.TryGetProperty("/v1/orgs/{orgId}/invoices", out _));
        Assert.True(paths.TryGetProperty("/v1/orgs/{orgId}/invoices/{period}", out _));
        Assert.True(paths.TryGetProperty("/v1/databases/{databaseId}/backups", out _));
        Assert.True(paths.TryGetProperty("/v1/databases/{databaseId}/backups/{backupId}", out _));
        Assert.True(paths.TryGetProperty("/v1/databases/{databaseId}/backup-schedule", out _));
        Assert.True(paths.TryGetProperty("/v1/databases/{databaseId}/restore", out _));
        Assert.True(paths.TryGetProperty("/internal/v1/orgs/{orgId}/backup-keys", out _));
    }
}
