using System.Collections.Concurrent;
using System.Net;
using Kdb.Contracts.V1;
using Kdb.PgWire.Auth;
using Kdb.Testing;
using Kdb.Testing.Postgres;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;

namespace Kdb.ControlPlane.Tests;

/// <summary>
/// The database lifecycle against a stand-in for provisioning: a receive endpoint on the control plane's
/// own bus that consumes the request events and answers with DESIGN's outcome events.
/// </summary>
[Collection(TestCollections.Postgres)]
public sealed class DatabaseLifecycleTests(PostgresFixture postgres) : IAsyncLifetime
{
    private readonly ConcurrentQueue<DatabaseRequested> _requests = new();
    private readonly ConcurrentQueue<DatabaseDeletionRequested> _deletions = new();
    private ControlPlaneApp _app = null!;
    private HostReceiveEndpointHandle? _provisioning;

    /// <summary>What the stand-in answers; null answers nothing (provisioning down).</summary>
    private Func<DatabaseRequested, object?> _answer = r => new DatabaseProvisioned(r.OperationId, DateTimeOffset.UtcNow, r.DatabaseId, 42);

    public async Task InitializeAsync()
    {
        _app = await ControlPlaneApp.StartAsync(postgres, new Dictionary<string, string>
        {
            ["Operations:ReconcileInterval"] = "00:00:00.200",
            ["Operations:RepublishAfter"] = "00:00:01",
            ["Operations:Timeout"] = "00:00:04",
            ["Connection:Host"] = "proxy.test",
        });
        var bus = _app.Factory.Services.GetRequiredService<IBus>();
        _provisioning = bus.ConnectReceiveEndpoint("test-provisioning-" + Guid.NewGuid().ToString("N"), e =>
        {
            e.Handler<DatabaseRequested>(async ctx =>
            {
                _requests.Enqueue(ctx.Message);
                if (_answer(ctx.Message) is { } outcome)
                {
                    await ctx.Publish(outcome, outcome.GetType());
                }
            });
            e.Handler<DatabaseDeletionRequested>(async ctx =>
            {
                _deletions.Enqueue(ctx.Message);
                await ctx.Publish(new DatabaseDeleted(ctx.Message.OperationId, DateTimeOffset.UtcNow, ctx.Message.DatabaseId));
            });
        });
        await _provisioning.Ready;
    }

    public async Task DisposeAsync()
    {
        if (_provisioning is not null)
        {
            await _provisioning.StopAsync();
        }

        await _app.DisposeAsync();
    }

    [Fact]
    public async Task Create_Returns202WithOneTimeCredentials_ThenBecomesReadyWhenProvisioned()
    {
        var (token, orgId) = await OwnerAsync("create@example.com");

        var created = await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "shop" });

        Assert.Equal(HttpStatusCode.Accepted, created.Status);
        var database = created.Body.GetProperty("database");
        var databaseId = database.GetProperty("id").GetString()!;
        Assert.Matches("^db_[0-9a-hjkmnp-tv-z]{16}$", databaseId);
        Assert.Equal("provisioning", database.GetProperty("status").GetString());
        Assert.False(database.TryGetProperty("tenantId", out _), "tenant ids stay internal");
        var password = created.Body.GetProperty("credentials").GetProperty("password").GetString()!;
        Assert.Contains($"@proxy.test:6432/{databaseId}?sslmode=require", created.Body.GetProperty("credentials").GetProperty("uris").GetProperty("psql").GetString(), StringComparison.Ordinal);

        var operationId = created.Body.GetProperty("operation").GetProperty("id").GetString()!;
        var operation = await WaitAsync(async () =>
        {
            var op = await _app.SendAsync(HttpMethod.Get, $"/v1/operations/{operationId}", token);
            return op.Body.GetProperty("status").GetString() == "succeeded" ? op.Body : (System.Text.Json.JsonElement?)null;
        });
        Assert.Equal("database.create", operation.GetProperty("kind").GetString());
        var ready = await _app.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}", token);
        Assert.Equal("ready", ready.Body.GetProperty("status").GetString());
        Assert.Equal("42", ready.Body.GetProperty("groupId").GetString());

        // Provisioning got a verifier that proves the password, never the password itself.
        var request = Assert.Single(_requests);
        Assert.Equal(databaseId, request.DatabaseId);
        Assert.NotEqual(0ul, request.TenantId);
        Assert.DoesNotContain(password, request.Owner.ScramVerifier, StringComparison.Ordinal);
        var verifier = ScramSha256Verifier.Parse(request.Owner.ScramVerifier);
        Assert.Equal(verifier.ToString(), ScramSha256Verifier.Create(password, verifier.Iterations, verifier.Salt).ToString());

        var connection = await _app.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/connection", token);
        Assert.Equal("owner", connection.Body.GetProperty("user").GetString());
        Assert.DoesNotContain(password, connection.Body.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Create_ProvisioningFails_DatabaseFailsWithTheReason()
    {
        _answer = r => new DatabaseProvisioningFailed(r.OperationId, DateTimeOffset.UtcNow, r.DatabaseId, "no shard group has room");
        var (token, orgId) = await OwnerAsync("fail@example.com");

        var created = await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "doomed" });
        var databaseId = created.Body.GetProperty("database").GetProperty("id").GetString()!;

        var failed = await WaitAsync(async () =>
        {
            var d = await _app.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}", token);
            return d.Body.GetProperty("status").GetString() == "failed" ? d.Body : (System.Text.Json.JsonElement?)null;
        });
        Assert.Equal("no shard group has room", failed.GetProperty("statusReason").GetString());
    }

    [Fact]
    public async Task Create_NoAnswer_IsRepublishedThenTimesOutIntoFailed()
    {
        _answer = _ => null;
        var (token, orgId) = await OwnerAsync("silent@example.com");

        var created = await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "silent" });
        var operationId = created.Body.GetProperty("operation").GetProperty("id").GetString()!;

        var operation = await WaitAsync(async () =>
        {
            var op = await _app.SendAsync(HttpMethod.Get, $"/v1/operations/{operationId}", token);
            return op.Body.GetProperty("status").GetString() == "failed" ? op.Body : (System.Text.Json.JsonElement?)null;
        });
        Assert.Contains("timed out", operation.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.True(_requests.Count(r => r.OperationId == operationId) >= 2, "the request event was published again while the operation ran");
        var database = await _app.SendAsync(HttpMethod.Get, $"/v1/databases/{created.Body.GetProperty("database").GetProperty("id").GetString()}", token);
        Assert.Equal("failed", database.Body.GetProperty("status").GetString());
    }

    [Fact]
    public async Task Create_BadNamesDuplicatesAndPlanQuota_AreRefused()
    {
        var (token, orgId) = await OwnerAsync("quota@example.com");

        foreach (var bad in new[] { "", "Upper", "1starts-with-digit", new string('a', 64), "semi;colon" })
        {
            Assert.Equal(HttpStatusCode.BadRequest, (await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = bad })).Status);
        }

        Assert.Equal(HttpStatusCode.BadRequest, (await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, "{\"name\":\"x\",\"status\":\"ready\"}")).Status);
        Assert.Equal(HttpStatusCode.Accepted, (await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "one" })).Status);
        var duplicate = await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "one" });
        Assert.Equal(HttpStatusCode.Conflict, duplicate.Status);
        Assert.EndsWith("/database-name-taken", duplicate.Body.GetProperty("type").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Accepted, (await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "two" })).Status);
        Assert.Equal(HttpStatusCode.Accepted, (await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "three" })).Status);
        var fourth = await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "four" });
        Assert.Equal(HttpStatusCode.Conflict, fourth.Status);
        Assert.EndsWith("/quota-exceeded", fourth.Body.GetProperty("type").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task DatabaseOfAnotherOrg_IsNotFoundOnEverySurface()
    {
        var (alice, aliceOrg) = await OwnerAsync("dba@example.com");
        var (mallory, malloryOrg) = await OwnerAsync("dbm@example.com");
        var created = await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{aliceOrg}/databases", alice, new { name = "secret" });
        var databaseId = created.Body.GetProperty("database").GetProperty("id").GetString()!;
        var operationId = created.Body.GetProperty("operation").GetProperty("id").GetString()!;

        foreach (var (method, path) in new[]
        {
            (HttpMethod.Get, $"/v1/databases/{databaseId}"),
            (HttpMethod.Delete, $"/v1/databases/{databaseId}"),
            (HttpMethod.Get, $"/v1/databases/{databaseId}/connection"),
            (HttpMethod.Get, $"/v1/operations/{operationId}"),
            (HttpMethod.Get, $"/v1/orgs/{aliceOrg}/databases"),
            (HttpMethod.Post, $"/v1/orgs/{aliceOrg}/databases"),
        })
        {
            var result = await _app.SendAsync(method, path, mallory, method == HttpMethod.Post ? new { name = "x" } : null);
            Assert.True(result.Status == HttpStatusCode.NotFound, $"{method} {path}: {result.Status}");
        }

        var own = await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{malloryOrg}/databases", mallory);
        Assert.Empty(own.Body.GetProperty("items").EnumerateArray());
        // The same name in another org is no conflict: names are unique per org only.
        Assert.Equal(HttpStatusCode.Accepted, (await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{malloryOrg}/databases", mallory, new { name = "secret" })).Status);
    }

    [Fact]
    public async Task Delete_GoesThroughDeletingToGone_AndFreesTheName()
    {
        var (token, orgId) = await OwnerAsync("del@example.com");
        var created = await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "temp" });
        var databaseId = created.Body.GetProperty("database").GetProperty("id").GetString()!;
        await WaitAsync(async () =>
        {
            var d = await _app.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}", token);
            return d.Body.GetProperty("status").GetString() == "ready" ? d.Body : (System.Text.Json.JsonElement?)null;
        });

        var deleting = await _app.SendAsync(HttpMethod.Delete, $"/v1/databases/{databaseId}", token);
        Assert.Equal(HttpStatusCode.Accepted, deleting.Status);
        Assert.Equal("deleting", deleting.Body.GetProperty("database").GetProperty("status").GetString());

        await WaitAsync(async () =>
        {
            var d = await _app.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}", token);
            return d.Status == HttpStatusCode.NotFound ? d.Body : (System.Text.Json.JsonElement?)null;
        });
        Assert.Equal(databaseId, Assert.Single(_deletions).DatabaseId);
        Assert.Equal(HttpStatusCode.Accepted, (await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "temp" })).Status);
    }

    private async Task<(string Token, string OrgId)> OwnerAsync(string email)
    {
        var token = await _app.SignupAndLoginAsync(email);
        var me = await _app.SendAsync(HttpMethod.Get, "/v1/me", token);
        return (token, me.Body.GetProperty("orgs")[0].GetProperty("id").GetString()!);
    }

    private static async Task<System.Text.Json.JsonElement> WaitAsync(Func<Task<System.Text.Json.JsonElement?>> probe)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            if (await probe() is { } done)
            {
                return done;
            }

            Assert.True(DateTime.UtcNow < deadline, "condition not reached within 30 s");
            await Task.Delay(100);
        }
    }
}
