using System.Collections.Concurrent;
using System.Net;
using Kdb.Contracts.V1;
using Kdb.PgWire.Auth;
using Kdb.Testing;
using Kdb.Testing.Postgres;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Kdb.ControlPlane.Tests;

[Collection(TestCollections.Postgres)]
public sealed class RoleTests(PostgresFixture postgres) : IAsyncLifetime
{
    private readonly ConcurrentQueue<RoleChanged> _roleEvents = new();
    private ControlPlaneApp _app = null!;
    private HostReceiveEndpointHandle? _listener;

    public async Task InitializeAsync()
    {
        _app = await ControlPlaneApp.StartAsync(postgres);
        _listener = _app.Factory.Services.GetRequiredService<IBus>().ConnectReceiveEndpoint("roles-" + Guid.NewGuid().ToString("N"), e =>
        {
            e.Handler<DatabaseRequested>(ctx => ctx.Publish(new DatabaseProvisioned(ctx.Message.OperationId, DateTimeOffset.UtcNow, ctx.Message.DatabaseId, 1)));
            e.Handler<RoleChanged>(ctx =>
            {
                _roleEvents.Enqueue(ctx.Message);
                return Task.CompletedTask;
            });
        });
        await _listener.Ready;
    }

    public async Task DisposeAsync()
    {
        await _listener!.StopAsync();
        await _app.DisposeAsync();
    }

    [Fact]
    public async Task Roles_CreateResetDelete_PublishVerifiersNeverPasswords()
    {
        var (token, _, databaseId) = await DatabaseAsync("roles@example.com");

        var created = await _app.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/roles", token, new { name = "app", kind = "readwrite" });
        Assert.Equal(HttpStatusCode.Created, created.Status);
        var password = created.Body.GetProperty("password").GetString()!;
        var changed = await NextEventAsync(e => e.Role == "app" && !e.Deleted);
        Assert.Equal(RoleKind.ReadWrite, changed.Kind);
        var verifier = ScramSha256Verifier.Parse(changed.ScramVerifier!);
        Assert.Equal(verifier.ToString(), ScramSha256Verifier.Create(password, verifier.Iterations, verifier.Salt).ToString());

        var listed = await _app.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/roles", token);
        Assert.Equal(["app", "owner"], listed.Body.GetProperty("items").EnumerateArray().Select(r => r.GetProperty("name").GetString()));
        Assert.DoesNotContain(password, listed.Body.ToString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Conflict, (await _app.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/roles", token, new { name = "app", kind = "readonly" })).Status);

        var reset = await _app.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/roles/app/reset-password", token);
        var newPassword = reset.Body.GetProperty("password").GetString()!;
        Assert.NotEqual(password, newPassword);
        Assert.Contains(Uri.EscapeDataString(newPassword), reset.Body.GetProperty("uris").GetProperty("psql").GetString(), StringComparison.Ordinal);
        var after = await NextEventAsync(e => e.Role == "app" && e.ScramVerifier != changed.ScramVerifier && !e.Deleted);
        Assert.NotNull(after.ScramVerifier);

        Assert.Equal(HttpStatusCode.NoContent, (await _app.SendAsync(HttpMethod.Delete, $"/v1/databases/{databaseId}/roles/app", token)).Status);
        var deleted = await NextEventAsync(e => e.Role == "app" && e.Deleted);
        Assert.Null(deleted.ScramVerifier);
        Assert.Equal(HttpStatusCode.Conflict, (await _app.SendAsync(HttpMethod.Delete, $"/v1/databases/{databaseId}/roles/owner", token)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await _app.SendAsync(HttpMethod.Delete, $"/v1/databases/{databaseId}/roles/nosuch", token)).Status);
    }

    [Theory]
    [InlineData("{\"name\":\"Bad-Name\",\"kind\":\"readonly\"}")]
    [InlineData("{\"name\":\"ok\",\"kind\":\"superuser\"}")]
    [InlineData("{\"name\":\"ok\",\"kind\":\"readonly\",\"scramVerifier\":\"x\"}")]
    [InlineData("{\"name\":")]
    public async Task CreateRole_BadInput_Is400(string body)
    {
        var (token, _, databaseId) = await DatabaseAsync("badrole@example.com");

        Assert.Equal(HttpStatusCode.BadRequest, (await _app.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/roles", token, body)).Status);
    }

    [Fact]
    public async Task DataToken_CarriesDatabaseAndRole_ForTheDataAudienceOnly()
    {
        var (token, orgId, databaseId) = await DatabaseAsync("datatoken@example.com");

        var minted = await _app.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/tokens", token, new { role = "owner", ttlSeconds = 600 });
        Assert.Equal(HttpStatusCode.OK, minted.Status);
        var jwks = new JsonWebKeySet(await _app.Client.GetStringAsync(new Uri("/.well-known/jwks.json", UriKind.Relative)));
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(minted.Body.GetProperty("token").GetString(), new TokenValidationParameters
        {
            ValidIssuer = ControlPlaneApp.Issuer,
            ValidAudience = "kdb-data",
            IssuerSigningKeys = jwks.GetSigningKeys(),
        });
        Assert.True(result.IsValid, result.Exception?.Message);
        Assert.Equal(databaseId, result.Claims["db"]);
        Assert.Equal("owner", result.Claims["role"]);
        Assert.Equal(orgId, result.Claims["org"]);
        Assert.False(result.Claims.ContainsKey("tenantId"));
        // A data token opens no management endpoint.
        Assert.Equal(HttpStatusCode.Unauthorized, (await _app.SendAsync(HttpMethod.Get, "/v1/me", minted.Body.GetProperty("token").GetString()!)).Status);

        Assert.Equal(HttpStatusCode.BadRequest, (await _app.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/tokens", token, new { role = "owner", ttlSeconds = 90_000 })).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await _app.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/tokens", token, new { role = "ghost" })).Status);
    }

    [Fact]
    public async Task RolesAndTokens_OfAnotherOrgsDatabase_AreNotFound()
    {
        var (_, _, databaseId) = await DatabaseAsync("ownerx@example.com");
        var mallory = await _app.SignupAndLoginAsync("malloryx@example.com");

        foreach (var (method, path, body) in new (HttpMethod, string, object?)[]
        {
            (HttpMethod.Get, $"/v1/databases/{databaseId}/roles", null),
            (HttpMethod.Post, $"/v1/databases/{databaseId}/roles", new { name = "evil", kind = "owner" }),
            (HttpMethod.Post, $"/v1/databases/{databaseId}/roles/owner/reset-password", null),
            (HttpMethod.Delete, $"/v1/databases/{databaseId}/roles/owner", null),
            (HttpMethod.Post, $"/v1/databases/{databaseId}/tokens", new { role = "owner" }),
        })
        {
            var result = await _app.SendAsync(method, path, mallory, body);
            Assert.True(result.Status == HttpStatusCode.NotFound, $"{method} {path}: {result.Status}");
        }
    }

    private async Task<RoleChanged> NextEventAsync(Func<RoleChanged, bool> match)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            var found = _roleEvents.FirstOrDefault(match);
            if (found is not null)
            {
                return found;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException("no matching RoleChanged event");
    }

    private async Task<(string Token, string OrgId, string DatabaseId)> DatabaseAsync(string email)
    {
        var token = await _app.SignupAndLoginAsync(email);
        var orgId = (await _app.SendAsync(HttpMethod.Get, "/v1/me", token)).Body.GetProperty("orgs")[0].GetProperty("id").GetString()!;
        var created = await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "withroles" });
        return (token, orgId, created.Body.GetProperty("database").GetProperty("id").GetString()!);
    }
}
