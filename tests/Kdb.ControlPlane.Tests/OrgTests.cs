using System.Net;
using Kdb.ControlPlane.Data;
using Kdb.Testing;
using Kdb.Testing.Postgres;
using Microsoft.Extensions.DependencyInjection;

namespace Kdb.ControlPlane.Tests;

[Collection(TestCollections.Postgres)]
public sealed class OrgTests(PostgresFixture postgres) : IAsyncLifetime
{
    private ControlPlaneApp _app = null!;

    public async Task InitializeAsync() => _app = await ControlPlaneApp.StartAsync(postgres);

    public async Task DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task OrgOfAnotherUser_IsNotFoundOnEverySurface()
    {
        var alice = await _app.SignupAndLoginAsync("alice@example.com");
        var mallory = await _app.SignupAndLoginAsync("mallory@example.com");
        var created = await _app.SendAsync(HttpMethod.Post, "/v1/orgs", alice, new { name = "Alice Co" });
        var orgId = created.Body.GetProperty("id").GetString()!;

        var attempts = new (HttpMethod Method, string Path, object? Body)[]
        {
            (HttpMethod.Get, $"/v1/orgs/{orgId}", null),
            (HttpMethod.Patch, $"/v1/orgs/{orgId}", new { name = "pwned" }),
            (HttpMethod.Delete, $"/v1/orgs/{orgId}", null),
            (HttpMethod.Get, $"/v1/orgs/{orgId}/members", null),
        };
        foreach (var (method, path, body) in attempts)
        {
            var result = await _app.SendAsync(method, path, mallory, body);
            Assert.True(result.Status == HttpStatusCode.NotFound, $"{method} {path}: {result.Status}");
        }

        var list = await _app.SendAsync(HttpMethod.Get, "/v1/orgs", mallory);
        Assert.DoesNotContain(orgId, list.Body.GetProperty("items").EnumerateArray().Select(o => o.GetProperty("id").GetString()));
        Assert.Equal("Alice Co", (await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}", alice)).Body.GetProperty("name").GetString());
    }

    [Fact]
    public async Task Roles_AreEnforcedPerFunction()
    {
        var owner = await _app.SignupAndLoginAsync("owner@example.com");
        var orgId = (await _app.SendAsync(HttpMethod.Post, "/v1/orgs", owner, new { name = "Roles" })).Body.GetProperty("id").GetString()!;
        var tokens = new Dictionary<string, string>();
        foreach (var role in new[] { "viewer", "developer", "admin" })
        {
            tokens[role] = await _app.SignupAndLoginAsync($"{role}@example.com");
            await AddMemberAsync(orgId, $"{role}@example.com", role);
        }

        foreach (var role in new[] { "viewer", "developer" })
        {
            Assert.Equal(HttpStatusCode.OK, (await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}", tokens[role])).Status);
            Assert.Equal(HttpStatusCode.Forbidden, (await _app.SendAsync(HttpMethod.Patch, $"/v1/orgs/{orgId}", tokens[role], new { name = "x" })).Status);
            Assert.Equal(HttpStatusCode.Forbidden, (await _app.SendAsync(HttpMethod.Delete, $"/v1/orgs/{orgId}", tokens[role])).Status);
        }

        Assert.Equal(HttpStatusCode.OK, (await _app.SendAsync(HttpMethod.Patch, $"/v1/orgs/{orgId}", tokens["admin"], new { name = "Renamed" })).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await _app.SendAsync(HttpMethod.Patch, $"/v1/orgs/{orgId}", tokens["admin"], new { plan = "pro" })).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await _app.SendAsync(HttpMethod.Delete, $"/v1/orgs/{orgId}", tokens["admin"])).Status);

        var upgraded = await _app.SendAsync(HttpMethod.Patch, $"/v1/orgs/{orgId}", owner, new { plan = "pro" });
        Assert.Equal("pro", upgraded.Body.GetProperty("plan").GetString());
        var members = await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/members", tokens["viewer"]);
        Assert.Equal(4, members.Body.GetProperty("items").GetArrayLength());
        Assert.Equal(HttpStatusCode.NoContent, (await _app.SendAsync(HttpMethod.Delete, $"/v1/orgs/{orgId}", owner)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}", owner)).Status);
    }

    [Theory]
    [InlineData("{\"id\":\"org_00000000000000000000000000\"}")]
    [InlineData("{\"name\":\"ok\",\"createdAt\":\"2020-01-01T00:00:00Z\"}")]
    [InlineData("{\"plan\":\"platinum\"}")]
    [InlineData("{\"name\":\"\"}")]
    [InlineData("{\"name\":")]
    [InlineData("[]")]
    public async Task Patch_MassAssignmentOrBadInput_Is400AndChangesNothing(string body)
    {
        var owner = await _app.SignupAndLoginAsync("mass@example.com");
        var orgId = (await _app.SendAsync(HttpMethod.Post, "/v1/orgs", owner, new { name = "Mass" })).Body.GetProperty("id").GetString()!;

        var result = await _app.SendAsync(HttpMethod.Patch, $"/v1/orgs/{orgId}", owner, body);

        Assert.Equal(HttpStatusCode.BadRequest, result.Status);
        var org = await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}", owner);
        Assert.Equal("Mass", org.Body.GetProperty("name").GetString());
        Assert.Equal("free", org.Body.GetProperty("plan").GetString());
    }

    [Fact]
    public async Task Patch_StaleIfMatch_Is412()
    {
        var owner = await _app.SignupAndLoginAsync("etag@example.com");
        var created = await _app.SendAsync(HttpMethod.Post, "/v1/orgs", owner, new { name = "Tagged" });
        var orgId = created.Body.GetProperty("id").GetString()!;
        var etag = created.Response.Headers.ETag!.ToString();

        var first = await _app.SendAsync(HttpMethod.Patch, $"/v1/orgs/{orgId}", owner, new { name = "One" }, r => r.Headers.TryAddWithoutValidation("If-Match", etag));
        var stale = await _app.SendAsync(HttpMethod.Patch, $"/v1/orgs/{orgId}", owner, new { name = "Two" }, r => r.Headers.TryAddWithoutValidation("If-Match", etag));

        Assert.Equal(HttpStatusCode.OK, first.Status);
        Assert.Equal(HttpStatusCode.PreconditionFailed, stale.Status);
    }

    [Fact]
    public async Task List_PagesWithACursor()
    {
        var owner = await _app.SignupAndLoginAsync("pages@example.com");
        for (var i = 0; i < 3; i++)
        {
            await _app.SendAsync(HttpMethod.Post, "/v1/orgs", owner, new { name = $"Org {i}" });
        }

        var first = await _app.SendAsync(HttpMethod.Get, "/v1/orgs?limit=3", owner);
        var cursor = first.Body.GetProperty("nextCursor").GetString();
        var second = await _app.SendAsync(HttpMethod.Get, $"/v1/orgs?limit=3&cursor={cursor}", owner);

        Assert.Equal(3, first.Body.GetProperty("items").GetArrayLength());
        Assert.Equal(1, second.Body.GetProperty("items").GetArrayLength()); // the personal org plus three
        Assert.Equal(System.Text.Json.JsonValueKind.Null, second.Body.GetProperty("nextCursor").ValueKind);
    }

    [Fact]
    public async Task Orgs_WithoutToken_Are401()
    {
        using var response = await _app.Client.GetAsync(new Uri("/v1/orgs", UriKind.Relative));
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    private async Task AddMemberAsync(string orgId, string email, string role)
    {
        // Placed directly to keep the role matrix quick; MemberTests covers the invitation path.
        await using var scope = _app.Factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
        var user = db.Users.Single(u => u.Email == email);
        db.Memberships.Add(new Membership { OrgId = orgId, UserId = user.Id, Role = role, CreatedAt = DateTimeOffset.UtcNow });
        await db.SaveChangesAsync();
    }
}
