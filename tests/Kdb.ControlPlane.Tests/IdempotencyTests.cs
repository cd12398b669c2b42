using System.Net;
using Kdb.Testing;
using Kdb.Testing.Postgres;

namespace Kdb.ControlPlane.Tests;

[Collection(TestCollections.Postgres)]
public sealed class IdempotencyTests(PostgresFixture postgres) : IAsyncLifetime
{
    private ControlPlaneApp _app = null!;

    public async Task InitializeAsync() => _app = await ControlPlaneApp.StartAsync(postgres);

    public async Task DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task CreateDatabase_RetriedWithTheSameKey_ReplaysTheFirstAnswerAndCreatesOnce()
    {
        var token = await _app.SignupAndLoginAsync("idem@example.com");
        var orgId = (await _app.SendAsync(HttpMethod.Get, "/v1/me", token)).Body.GetProperty("orgs")[0].GetProperty("id").GetString()!;
        void Key(HttpRequestMessage r) => r.Headers.Add("Idempotency-Key", "create-shop-1");

        var first = await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "shop" }, Key);
        var retry = await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "shop" }, Key);
        var other = await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "other" }, Key);

        Assert.Equal(HttpStatusCode.Accepted, first.Status);
        Assert.Equal(HttpStatusCode.Accepted, retry.Status);
        Assert.Equal(first.Body.ToString(), retry.Body.ToString());
        Assert.True(retry.Response.Headers.Contains("Idempotent-Replayed"));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, other.Status);
        var list = await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/databases", token);
        Assert.Single(list.Body.GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task SameKey_FromAnotherCaller_IsIndependent()
    {
        var alice = await _app.SignupAndLoginAsync("idem-a@example.com");
        var bob = await _app.SignupAndLoginAsync("idem-b@example.com");
        void Key(HttpRequestMessage r) => r.Headers.Add("Idempotency-Key", "same-key");

        var a = await _app.SendAsync(HttpMethod.Post, "/v1/orgs", alice, new { name = "A" }, Key);
        var b = await _app.SendAsync(HttpMethod.Post, "/v1/orgs", bob, new { name = "A" }, Key);

        Assert.Equal(HttpStatusCode.Created, a.Status);
        Assert.Equal(HttpStatusCode.Created, b.Status);
        Assert.NotEqual(a.Body.GetProperty("id").GetString(), b.Body.GetProperty("id").GetString());
    }
}
