using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Kdb.Testing;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Tests;

[Collection(TestCollections.Postgres)]
public sealed class PasswordResetTests(SharedControlPlane cp) : IClassFixture<SharedControlPlane>
{
    private const string Password = "long enough password";
    private ControlPlaneApp App => cp.App;

    [Fact]
    public async Task Reset_KnownAndUnknownEmail_BothAnswer202_AndOnlyTheKnownOneGetsMail()
    {
        var known = SharedControlPlane.Email("known");
        var unknown = SharedControlPlane.Email("unknown");
        await cp.UserAsync(known);

        using var a = await App.Client.PostAsJsonAsync("/v1/password-reset", new { email = known });
        using var b = await App.Client.PostAsJsonAsync("/v1/password-reset", new { email = unknown });

        Assert.Equal(HttpStatusCode.Accepted, a.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, b.StatusCode);
        Assert.Equal(await a.Content.ReadAsStringAsync(), await b.Content.ReadAsStringAsync());
        var mail = await cp.WaitForMailAsync(known);
        Assert.Equal("/reset-password", SharedControlPlane.Link(mail).AbsolutePath);
        // The unknown address's request was queued before this one: once this mail is out, that one is done too.
        using var c = await App.Client.PostAsJsonAsync("/v1/password-reset", new { email = known });
        await cp.WaitForMailAsync(known, 2);
        Assert.Empty(cp.MailTo(unknown));
    }

    [Fact]
    public async Task Confirm_SetsPassword_RevokesRefreshTokens_AndTheLinkWorksOnce()
    {
        var email = SharedControlPlane.Email("reset");
        var (userToken, _, _) = await cp.UserAsync(email);
        var refresh = await RefreshTokenAsync(email, Password);
        await App.Client.PostAsJsonAsync("/v1/password-reset", new { email });
        var token = SharedControlPlane.Token(await cp.WaitForMailAsync(email));

        using var confirmed = await App.Client.PostAsJsonAsync("/v1/password-reset/confirm", new { token, password = "a brand new password" });
        using var again = await App.Client.PostAsJsonAsync("/v1/password-reset/confirm", new { token, password = "yet another password" });

        Assert.Equal(HttpStatusCode.NoContent, confirmed.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, again.StatusCode);
        Assert.EndsWith("invalid-reset-token", (await again.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("type").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, (await GrantAsync(email, Password)).Status);
        Assert.Equal(HttpStatusCode.OK, (await GrantAsync(email, "a brand new password")).Status);
        using var refreshed = await App.Client.PostAsync(new Uri("/connect/token", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "refresh_token", ["refresh_token"] = refresh }));
        Assert.Equal(HttpStatusCode.BadRequest, refreshed.StatusCode);

        // The reset and the refused old password belong to no org: the user sees them at /v1/me/audit.
        var mine = await App.SendAsync(HttpMethod.Get, "/v1/me/audit", userToken);
        var actions = mine.Body.GetProperty("items").EnumerateArray().Select(e => e.GetProperty("action").GetString()).ToList();
        Assert.Contains("password.reset", actions);
        Assert.Contains("user.login_failed", actions);
    }

    [Fact]
    public async Task Confirm_ExpiredToken_Is400_AndWeakPasswordKeepsTheTokenUsable()
    {
        var email = SharedControlPlane.Email("expiry");
        var (_, userId, _) = await cp.UserAsync(email);
        await App.Client.PostAsJsonAsync("/v1/password-reset", new { email });
        var token = SharedControlPlane.Token(await cp.WaitForMailAsync(email));

        using var weak = await App.Client.PostAsJsonAsync("/v1/password-reset/confirm", new { token, password = "short" });
        Assert.Equal(HttpStatusCode.BadRequest, weak.StatusCode);
        Assert.True((await weak.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("errors").TryGetProperty("password", out _));

        await cp.WithDbAsync(db => db.PasswordResets.Where(r => r.UserId == userId).ExecuteUpdateAsync(s => s.SetProperty(r => r.ExpiresAt, DateTimeOffset.UtcNow.AddSeconds(-1))));
        using var expired = await App.Client.PostAsJsonAsync("/v1/password-reset/confirm", new { token, password = "a good long password" });
        Assert.Equal(HttpStatusCode.BadRequest, expired.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await GrantAsync(email, Password)).Status);
    }

    [Fact]
    public async Task Reset_StoresOnlyTheTokensHash_ThatExpiresInAnHour()
    {
        var email = SharedControlPlane.Email("hash");
        var (_, userId, _) = await cp.UserAsync(email);
        await App.Client.PostAsJsonAsync("/v1/password-reset", new { email });
        var token = SharedControlPlane.Token(await cp.WaitForMailAsync(email));

        var stored = await cp.WithDbAsync(db => db.PasswordResets.AsNoTracking().SingleAsync(r => r.UserId == userId));

        Assert.NotEqual(token, stored.TokenHash);
        Assert.DoesNotContain(token, stored.TokenHash, StringComparison.Ordinal);
        Assert.Equal(TimeSpan.FromHours(1), stored.ExpiresAt - stored.CreatedAt);
    }

    [Theory]
    [InlineData("/v1/password-reset", "{}")]
    [InlineData("/v1/password-reset", "{\"email\":")]
    [InlineData("/v1/password-reset", "{\"email\":\"a@example.com\",\"userId\":\"usr_1\"}")]
    [InlineData("/v1/password-reset/confirm", "{\"token\":\"abc\"}")]
    [InlineData("/v1/password-reset/confirm", "{\"token\":\"abc\",\"password\":\"a good long password\"}")]
    [InlineData("/v1/password-reset/confirm", "not json")]
    [InlineData("/v1/password-reset/confirm", "{\"token\":[1],\"password\":\"x\"}")]
    public async Task Reset_BadInput_Is400Problem(string path, string body)
    {
        using var response = await App.Client.PostAsync(new Uri(path, UriKind.Relative), new StringContent(body, System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task PasswordGrant_FiveFailures_LockFor15Minutes_AuditedAndLiftedByReset()
    {
        var email = SharedControlPlane.Email("locked");
        var (_, userId, _) = await cp.UserAsync(email);
        for (var i = 0; i < 5; i++)
        {
            var failed = await GrantAsync(email, "wrong password " + i);
            Assert.Equal(HttpStatusCode.BadRequest, failed.Status);
            Assert.Equal("invalid_grant", failed.Body.GetProperty("error").GetString());
        }

        var locked = await GrantAsync(email, Password);

        Assert.Equal(HttpStatusCode.BadRequest, locked.Status);
        Assert.Equal("invalid_grant", locked.Body.GetProperty("error").GetString());
        Assert.Contains("locked", locked.Body.GetProperty("error_description").GetString(), StringComparison.Ordinal);
        var user = await cp.WithDbAsync(db => db.Users.AsNoTracking().SingleAsync(u => u.Id == userId));
        Assert.InRange(user.LockoutEnd!.Value - DateTimeOffset.UtcNow, TimeSpan.FromMinutes(14), TimeSpan.FromMinutes(15));
        Assert.True(await cp.WithDbAsync(db => db.AuditLog.AnyAsync(a => a.Actor == userId && a.Action == "user.locked_out")));

        await App.Client.PostAsJsonAsync("/v1/password-reset", new { email });
        var token = SharedControlPlane.Token(await cp.WaitForMailAsync(email));
        using var confirmed = await App.Client.PostAsJsonAsync("/v1/password-reset/confirm", new { token, password = "after the lockout" });

        Assert.Equal(HttpStatusCode.NoContent, confirmed.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await GrantAsync(email, "after the lockout")).Status);
        Assert.True(await cp.WithDbAsync(db => db.AuditLog.AnyAsync(a => a.Actor == userId && a.Action == "user.lockout_lifted")));
        Assert.True(await cp.WithDbAsync(db => db.AuditLog.AnyAsync(a => a.Actor == userId && a.Action == "password.reset")));
    }

    [Fact]
    public async Task PasswordGrant_SuccessResetsTheFailureCount()
    {
        var email = SharedControlPlane.Email("count");
        await cp.UserAsync(email);
        for (var round = 0; round < 2; round++)
        {
            for (var i = 0; i < 4; i++)
            {
                Assert.Equal(HttpStatusCode.BadRequest, (await GrantAsync(email, "wrong")).Status);
            }

            Assert.Equal(HttpStatusCode.OK, (await GrantAsync(email, Password)).Status);
        }
    }

    private async Task<(HttpStatusCode Status, JsonElement Body)> GrantAsync(string email, string password)
    {
        using var response = await App.Client.PostAsync(new Uri("/connect/token", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "password",
            ["username"] = email,
            ["password"] = password,
        }));
        return (response.StatusCode, await response.Content.ReadFromJsonAsync<JsonElement>());
    }

    private async Task<string> RefreshTokenAsync(string email, string password)
    {
        var (status, body) = await GrantAsync(email, password);
        Assert.Equal(HttpStatusCode.OK, status);
        return body.GetProperty("refresh_token").GetString()!;
    }
}
