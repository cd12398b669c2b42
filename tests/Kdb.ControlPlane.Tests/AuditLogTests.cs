using System.Net;
using System.Text.Json;
using Kdb.Testing;
using Kdb.Testing.Postgres;
using Npgsql;

namespace Kdb.ControlPlane.Tests;

[Collection(TestCollections.Postgres)]
public sealed class AuditLogTests(PostgresFixture postgres) : IAsyncLifetime
{
    private ControlPlaneApp _app = null!;

    public async Task InitializeAsync() => _app = await ControlPlaneApp.StartAsync(postgres);

    public async Task DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task MutatingActions_AreRecordedWithActorOutcomeAndResource_ForAdminsOfThatOrgOnly()
    {
        var owner = await _app.SignupAndLoginAsync("audit@example.com");
        var me = await _app.SendAsync(HttpMethod.Get, "/v1/me", owner);
        var userId = me.Body.GetProperty("id").GetString()!;
        var orgId = me.Body.GetProperty("orgs")[0].GetProperty("id").GetString()!;
        await _app.SendAsync(HttpMethod.Patch, $"/v1/orgs/{orgId}", owner, new { name = "Audited" });
        var database = await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", owner, new { name = "audited" });
        var databaseId = database.Body.GetProperty("database").GetProperty("id").GetString()!;
        await _app.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/roles", owner, new { name = "Bad Name", kind = "readonly" });
        var stranger = await _app.SignupAndLoginAsync("audit-stranger@example.com");
        await _app.SendAsync(HttpMethod.Delete, $"/v1/databases/{databaseId}", stranger);

        var log = await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/audit-log", owner);
        var entries = log.Body.GetProperty("items").EnumerateArray().ToList();
        Assert.Contains(entries, e => e.GetProperty("action").GetString() == "PATCH /v1/orgs/{orgId}" && e.GetProperty("status").GetInt32() == 200 && e.GetProperty("actor").GetString() == userId);
        Assert.Contains(entries, e => e.GetProperty("action").GetString() == "POST /v1/orgs/{orgId}/databases" && e.GetProperty("status").GetInt32() == 202);
        Assert.Contains(entries, e => e.GetProperty("action").GetString() == "POST /v1/databases/{databaseId}/roles" && e.GetProperty("status").GetInt32() == 400 && e.GetProperty("resourceId").GetString() == databaseId);
        // The stranger's failed attempt on this org's database is on this org's record.
        Assert.Contains(entries, e => e.GetProperty("action").GetString() == "DELETE /v1/databases/{databaseId}" && e.GetProperty("status").GetInt32() == 404);

        var filtered = await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/audit-log?resource={databaseId}&action=roles", owner);
        Assert.Single(filtered.Body.GetProperty("items").EnumerateArray());
        Assert.Equal(HttpStatusCode.NotFound, (await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/audit-log", stranger)).Status);
    }

    [Fact]
    public async Task EntriesWithoutAnOrg_AreShownToTheUserTheyConcern_AndToNobodyElse()
    {
        const string Email = "me-audit@example.com";
        var token = await _app.SignupAndLoginAsync(Email);
        var userId = (await _app.SendAsync(HttpMethod.Get, "/v1/me", token)).Body.GetProperty("id").GetString()!;
        var other = await _app.SignupAndLoginAsync("me-audit-other@example.com");
        for (var i = 0; i < 5; i++)
        {
            using var refused = await _app.Client.PostAsync(new Uri("/connect/token", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "password",
                ["username"] = Email,
                ["password"] = "not the password " + i,
            }));
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        }

        // The access token from before the failures still works: the lockout stops new logins only.
        var mine = await _app.SendAsync(HttpMethod.Get, "/v1/me/audit?limit=3", token);
        Assert.Equal(HttpStatusCode.OK, mine.Status);
        var page = mine.Body.GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(3, page.Count);
        Assert.Equal("user.locked_out", page[0].GetProperty("action").GetString());
        Assert.All(page, e => Assert.Equal(userId, e.GetProperty("resourceId").GetString()));
        Assert.All(page.Skip(1), e => Assert.Equal("user.login_failed", e.GetProperty("action").GetString()));
        var rest = await _app.SendAsync(HttpMethod.Get, $"/v1/me/audit?limit=50&cursor={mine.Body.GetProperty("nextCursor").GetString()}&action=login_failed", token);
        Assert.Equal(3, rest.Body.GetProperty("items").GetArrayLength()); // 5 failures, 2 on the first page
        Assert.Equal(JsonValueKind.Null, rest.Body.GetProperty("nextCursor").ValueKind);

        // Nobody else sees them, whatever they ask; the org log does not hold them.
        Assert.Empty((await _app.SendAsync(HttpMethod.Get, "/v1/me/audit", other)).Body.GetProperty("items").EnumerateArray());
        var orgId = (await _app.SendAsync(HttpMethod.Get, "/v1/me", token)).Body.GetProperty("orgs")[0].GetProperty("id").GetString()!;
        Assert.DoesNotContain((await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/audit-log", token)).Body.GetProperty("items").EnumerateArray(), e => e.GetProperty("action").GetString()!.StartsWith("user.", StringComparison.Ordinal));
        using var anonymous = await _app.Client.GetAsync(new Uri("/v1/me/audit", UriKind.Relative));
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
    }

    [Fact]
    public async Task AuditLog_RefusesUpdatesAndDeletesInTheDatabaseItself()
    {
        var owner = await _app.SignupAndLoginAsync("append@example.com");
        var orgId = (await _app.SendAsync(HttpMethod.Get, "/v1/me", owner)).Body.GetProperty("orgs")[0].GetProperty("id").GetString()!;
        await _app.SendAsync(HttpMethod.Patch, $"/v1/orgs/{orgId}", owner, new { name = "x" });

        await using var connection = new NpgsqlConnection(_app.Database.ConnectionString);
        await connection.OpenAsync();
        foreach (var sql in new[] { "UPDATE audit_log SET \"Status\" = 200", "DELETE FROM audit_log" })
        {
            await using var command = new NpgsqlCommand(sql, connection);
            var ex = await Assert.ThrowsAsync<PostgresException>(() => command.ExecuteNonQueryAsync());
            Assert.Contains("append-only", ex.MessageText, StringComparison.Ordinal);
        }
    }
}
