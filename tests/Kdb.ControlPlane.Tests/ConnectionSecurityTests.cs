using System.Net;
using Kdb.Testing;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Tests;

[Collection(TestCollections.Postgres)]
public sealed class ConnectionSecurityTests(SharedControlPlane cp) : IClassFixture<SharedControlPlane>
{
    private ControlPlaneApp App => cp.App;

    [Fact]
    public async Task ConnectionLog_IngestedFromProxies_IsListedNewestFirst_FilteredAndPaged()
    {
        var (owner, _, databaseId) = await DatabaseAsync("log");
        var proxy = await App.ServiceTokenAsync("kdb-proxy", ControlPlaneApp.ProxySecret);
        var now = DateTimeOffset.UtcNow;

        var ingested = await App.SendAsync(HttpMethod.Post, "/internal/v1/connection-log", proxy, new object[]
        {
            Event(databaseId, now.AddSeconds(-3), "connect", null, "10.0.0.1"),
            Event(databaseId, now.AddSeconds(-2), "deny", "auth_failed", "10.0.0.2"),
            Event(databaseId, now.AddSeconds(-1), "throttle", "rate_limited", "10.0.0.1"),
            Event("db_doesnotexist0000", now, "deny", "auth_failed", "10.0.0.9"),
        });

        Assert.Equal(HttpStatusCode.Accepted, ingested.Status);
        Assert.Equal(3, ingested.Body.GetProperty("accepted").GetInt32());
        Assert.Equal(1, ingested.Body.GetProperty("ignored").GetInt32());
        var all = await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/connection-log", owner);
        Assert.Equal(["throttle", "deny", "connect"], all.Body.GetProperty("items").EnumerateArray().Select(e => e.GetProperty("kind").GetString()));
        Assert.Equal("kdb-proxy", all.Body.GetProperty("items")[0].GetProperty("source").GetString());
        var denies = await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/connection-log?kind=deny", owner);
        Assert.Equal("auth_failed", Assert.Single(denies.Body.GetProperty("items").EnumerateArray()).GetProperty("reason").GetString());
        var page1 = await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/connection-log?limit=2", owner);
        var page2 = await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/connection-log?limit=2&cursor={page1.Body.GetProperty("nextCursor").GetString()}", owner);
        Assert.Equal("connect", Assert.Single(page2.Body.GetProperty("items").EnumerateArray()).GetProperty("kind").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, (await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/connection-log?kind=hack", owner)).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/connection-log?cursor=abc", owner)).Status);
    }

    [Fact]
    public async Task ConnectionLog_Ingest_OnlyProxies_AndBadBatchesAre400()
    {
        var (owner, _, databaseId) = await DatabaseAsync("badlog");
        var proxy = await App.ServiceTokenAsync("kdb-proxy", ControlPlaneApp.ProxySecret);
        var node = await App.ServiceTokenAsync("kdb-node", ControlPlaneApp.NodeSecret);
        var good = new[] { Event(databaseId, DateTimeOffset.UtcNow, "connect", null, "10.0.0.1") };

        Assert.Equal(HttpStatusCode.Unauthorized, (await App.SendAsync(HttpMethod.Post, "/internal/v1/connection-log", owner, good)).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await App.SendAsync(HttpMethod.Post, "/internal/v1/connection-log", node, good)).Status);
        string[] bad =
        [
            "[]",
            "{}",
            "[{\"databaseId\":\"" + databaseId + "\",\"at\":\"2026-11-22T00:00:00Z\",\"kind\":\"explode\"}]",
            "[{\"databaseId\":\"" + databaseId + "\",\"at\":\"2026-11-22T00:00:00Z\",\"kind\":\"deny\"}]",
            "[{\"databaseId\":\"" + databaseId + "\",\"kind\":\"connect\"}]",
            "[{\"databaseId\":\"" + databaseId + "\",\"at\":\"yesterday\",\"kind\":\"connect\"}]",
            "[{\"databaseId\":\"" + new string('x', 64) + "\",\"at\":\"2026-11-22T00:00:00Z\",\"kind\":\"connect\"}]",
            "[{\"databaseId\":\"" + databaseId + "\",\"at\":\"2026-11-22T00:00:00Z\",\"kind\":\"deny\",\"reason\":\"" + new string('r', 201) + "\"}]",
            "[{\"databaseId\":",
        ];
        foreach (var body in bad)
        {
            var result = await App.SendAsync(HttpMethod.Post, "/internal/v1/connection-log", proxy, body);
            Assert.True(result.Status == HttpStatusCode.BadRequest, $"{body}: {result.Status}");
        }

        Assert.Empty((await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/connection-log", owner)).Body.GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task AuthLockouts_ShowLockedOutClients_AndLiftingResetsThemInTheRouteEntry()
    {
        var (owner, orgId, databaseId) = await DatabaseAsync("lockouts");
        var proxy = await App.ServiceTokenAsync("kdb-proxy", ControlPlaneApp.ProxySecret);
        var now = DateTimeOffset.UtcNow;
        await App.SendAsync(HttpMethod.Post, "/internal/v1/connection-log", proxy, new object[]
        {
            Event(databaseId, now.AddSeconds(-5), "deny", "auth_failed", "10.0.0.1"),
            Event(databaseId, now.AddSeconds(-4), "deny", "auth_failed", "10.0.0.1"),
            Event(databaseId, now.AddSeconds(-3), "deny", "locked_out", "10.0.0.1"),
            Event(databaseId, now.AddSeconds(-2), "deny", "locked_out", "10.0.0.1"),
            Event(databaseId, now.AddSeconds(-1), "deny", "auth_failed", "10.0.0.2"),
            Event(databaseId, now.AddHours(-1), "deny", "locked_out", "10.0.0.3"), // outside the window
        });

        var lockouts = await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/auth-lockouts", owner);

        var item = Assert.Single(lockouts.Body.GetProperty("items").EnumerateArray());
        Assert.Equal("10.0.0.1", item.GetProperty("clientIp").GetString());
        Assert.Equal(2, item.GetProperty("refusedConnections").GetInt32());
        Assert.Equal(2, item.GetProperty("failedLogins").GetInt32());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, lockouts.Body.GetProperty("lockoutResetAt").ValueKind);

        await cp.WithDbAsync(db => db.Databases.Where(d => d.Id == databaseId).ExecuteUpdateAsync(s => s.SetProperty(d => d.Status, "ready")));
        var versionBefore = (await App.SendAsync(HttpMethod.Get, $"/internal/v1/routes/{databaseId}", proxy)).Body.GetProperty("version").GetInt64();
        var lifted = await App.SendAsync(HttpMethod.Delete, $"/v1/databases/{databaseId}/auth-lockouts", owner);

        Assert.Equal(HttpStatusCode.OK, lifted.Status);
        var route = await App.SendAsync(HttpMethod.Get, $"/internal/v1/routes/{databaseId}", proxy);
        Assert.True(route.Body.GetProperty("version").GetInt64() > versionBefore);
        Assert.Equal(lifted.Body.GetProperty("lockoutResetAt").GetDateTimeOffset(), route.Body.GetProperty("lockoutResetAt").GetDateTimeOffset());
        var after = await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/auth-lockouts", owner);
        Assert.Empty(after.Body.GetProperty("items").EnumerateArray());
        Assert.NotEqual(System.Text.Json.JsonValueKind.Null, after.Body.GetProperty("lockoutResetAt").ValueKind);
        var audit = await App.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/audit-log?resource={databaseId}", owner);
        Assert.Contains(audit.Body.GetProperty("items").EnumerateArray(), a => a.GetProperty("action").GetString() == "DELETE /v1/databases/{databaseId}/auth-lockouts" && a.GetProperty("status").GetInt32() == 200);
    }

    [Fact]
    public async Task ConnectionSecurity_EachRole_GetsExactlyItsRights()
    {
        var (owner, orgId, databaseId) = await DatabaseAsync("roles");
        var (admin, _) = await cp.JoinAsync(orgId, owner, "admin");
        var (developer, _) = await cp.JoinAsync(orgId, owner, "developer");
        var (viewer, _) = await cp.JoinAsync(orgId, owner, "viewer");

        Assert.Equal(HttpStatusCode.Forbidden, (await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/connection-log", viewer)).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/auth-lockouts", viewer)).Status);
        Assert.Equal(HttpStatusCode.OK, (await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/connection-log", developer)).Status);
        Assert.Equal(HttpStatusCode.OK, (await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/auth-lockouts", developer)).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await App.SendAsync(HttpMethod.Delete, $"/v1/databases/{databaseId}/auth-lockouts", viewer)).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await App.SendAsync(HttpMethod.Delete, $"/v1/databases/{databaseId}/auth-lockouts", developer)).Status);
        Assert.Equal(HttpStatusCode.OK, (await App.SendAsync(HttpMethod.Delete, $"/v1/databases/{databaseId}/auth-lockouts", admin)).Status);
        Assert.NotNull(await cp.WithDbAsync(db => db.Databases.Where(d => d.Id == databaseId).Select(d => d.LockoutResetAt).SingleAsync()));
    }

    [Fact]
    public async Task ConnectionSecurity_OfAnotherOrgsDatabase_IsNotFound()
    {
        var (_, _, databaseId) = await DatabaseAsync("victim");
        var (mallory, _, _) = await cp.UserAsync(SharedControlPlane.Email("mallory"));

        Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/connection-log", mallory)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/auth-lockouts", mallory)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Delete, $"/v1/databases/{databaseId}/auth-lockouts", mallory)).Status);
        Assert.Null(await cp.WithDbAsync(db => db.Databases.Where(d => d.Id == databaseId).Select(d => d.LockoutResetAt).SingleAsync()));
    }

    private async Task<(string Token, string OrgId, string DatabaseId)> DatabaseAsync(string name)
    {
        var (token, _, orgId) = await cp.UserAsync(SharedControlPlane.Email(name));
        var created = await App.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "guarded" });
        Assert.Equal(HttpStatusCode.Accepted, created.Status);
        return (token, orgId, created.Body.GetProperty("database").GetProperty("id").GetString()!);
    }

    private static object Event(string databaseId, DateTimeOffset at, string kind, string? reason, string clientIp) =>
        new { databaseId, at, kind, reason, clientIp, user = "owner" };
}
