using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Kdb.Testing;
using Kdb.Testing.Postgres;
using Npgsql;

namespace Kdb.ControlPlane.Tests;

[Collection(TestCollections.Postgres)]
public sealed class ApiKeyTests(PostgresFixture postgres) : IAsyncLifetime
{
    private ControlPlaneApp _app = null!;

    public async Task InitializeAsync() => _app = await ControlPlaneApp.StartAsync(postgres);

    public async Task DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task ApiKey_SecretShownOnce_StoredHashed_ActsInItsOrgOnly_AndDiesWhenDeleted()
    {
        var owner = await _app.SignupAndLoginAsync("keys@example.com");
        var orgId = (await _app.SendAsync(HttpMethod.Post, "/v1/orgs", owner, new { name = "Keyed" })).Body.GetProperty("id").GetString()!;
        var otherOrg = (await _app.SendAsync(HttpMethod.Post, "/v1/orgs", owner, new { name = "Other" })).Body.GetProperty("id").GetString()!;

        var created = await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/api-keys", owner, new { name = "ci", role = "developer" });
        Assert.Equal(HttpStatusCode.Created, created.Status);
        var keyId = created.Body.GetProperty("apiKey").GetProperty("id").GetString()!;
        var secret = created.Body.GetProperty("secret").GetString()!;
        Assert.Matches("^key_[0-9a-hjkmnp-tv-z]{26}$", keyId);

        var listed = await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/api-keys", owner);
        Assert.DoesNotContain(secret, listed.Body.ToString(), StringComparison.Ordinal);
        Assert.False(listed.Body.GetProperty("items")[0].TryGetProperty("secret", out _));
        await using (var connection = new NpgsqlConnection(_app.Database.ConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("SELECT \"SecretHash\" FROM api_keys", connection);
            var stored = (string)(await command.ExecuteScalarAsync())!;
            Assert.NotEqual(secret, stored);
            Assert.Equal(64, stored.Length);
        }

        var keyToken = await KeyTokenAsync(keyId, secret);
        var me = await _app.SendAsync(HttpMethod.Get, "/v1/me", keyToken);
        Assert.Equal("api_key", me.Body.GetProperty("kind").GetString());
        Assert.Equal(HttpStatusCode.OK, (await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}", keyToken)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{otherOrg}", keyToken)).Status);
        Assert.Single((await _app.SendAsync(HttpMethod.Get, "/v1/orgs", keyToken)).Body.GetProperty("items").EnumerateArray());
        // A developer key cannot manage keys or the org.
        Assert.Equal(HttpStatusCode.Forbidden, (await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/api-keys", keyToken, new { name = "escalate", role = "owner" })).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await _app.SendAsync(HttpMethod.Patch, $"/v1/orgs/{orgId}", keyToken, new { name = "x" })).Status);

        Assert.Equal(HttpStatusCode.NoContent, (await _app.SendAsync(HttpMethod.Delete, $"/v1/orgs/{orgId}/api-keys/{keyId}", owner)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}", keyToken)).Status);
        using var again = await _app.Client.PostAsync(new Uri("/connect/token", UriKind.Relative), Form(keyId, secret));
        Assert.Equal(HttpStatusCode.Unauthorized, again.StatusCode);
    }

    [Fact]
    public async Task ApiKey_RoleAboveTheCreatorsOrBadInput_IsRefused()
    {
        var owner = await _app.SignupAndLoginAsync("esc@example.com");
        var orgId = (await _app.SendAsync(HttpMethod.Post, "/v1/orgs", owner, new { name = "Esc" })).Body.GetProperty("id").GetString()!;
        var adminKey = await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/api-keys", owner, new { name = "admin", role = "admin" });
        var adminToken = await KeyTokenAsync(adminKey.Body.GetProperty("apiKey").GetProperty("id").GetString()!, adminKey.Body.GetProperty("secret").GetString()!);

        Assert.Equal(HttpStatusCode.Forbidden, (await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/api-keys", adminToken, new { name = "up", role = "owner" })).Status);
        Assert.Equal(HttpStatusCode.Created, (await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/api-keys", adminToken, new { name = "down", role = "viewer" })).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/api-keys", owner, new { name = "x", role = "god" })).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/api-keys", owner, new { name = "x", expiresAt = "2000-01-01T00:00:00Z" })).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/api-keys", owner, "{\"name\":\"x\",\"orgId\":\"org_00000000000000000000000000\"}")).Status);
    }

    [Fact]
    public async Task ApiKeys_OfAnotherOrg_AreNotFound()
    {
        var alice = await _app.SignupAndLoginAsync("ka@example.com");
        var bob = await _app.SignupAndLoginAsync("kb@example.com");
        var orgId = (await _app.SendAsync(HttpMethod.Post, "/v1/orgs", alice, new { name = "A" })).Body.GetProperty("id").GetString()!;
        var bobOrg = (await _app.SendAsync(HttpMethod.Post, "/v1/orgs", bob, new { name = "B" })).Body.GetProperty("id").GetString()!;
        var key = await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/api-keys", alice, new { name = "k" });
        var keyId = key.Body.GetProperty("apiKey").GetProperty("id").GetString()!;

        Assert.Equal(HttpStatusCode.NotFound, (await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/api-keys", bob)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/api-keys", bob, new { name = "k" })).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await _app.SendAsync(HttpMethod.Delete, $"/v1/orgs/{orgId}/api-keys/{keyId}", bob)).Status);
        // Naming Alice's key under Bob's own org finds nothing either.
        Assert.Equal(HttpStatusCode.NotFound, (await _app.SendAsync(HttpMethod.Delete, $"/v1/orgs/{bobOrg}/api-keys/{keyId}", bob)).Status);
        Assert.Single((await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/api-keys", alice)).Body.GetProperty("items").EnumerateArray());
    }

    private async Task<string> KeyTokenAsync(string keyId, string secret)
    {
        using var response = await _app.Client.PostAsync(new Uri("/connect/token", UriKind.Relative), Form(keyId, secret));
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
        return body.GetProperty("access_token").GetString()!;
    }

    private static FormUrlEncodedContent Form(string keyId, string secret) => new(new Dictionary<string, string>
    {
        ["grant_type"] = "client_credentials",
        ["client_id"] = keyId,
        ["client_secret"] = secret,
    });
}
