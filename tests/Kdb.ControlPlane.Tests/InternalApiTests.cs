using System.Diagnostics;
using System.Net;
using Kdb.Contracts.V1;
using Kdb.Testing;
using Kdb.Testing.Postgres;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;

namespace Kdb.ControlPlane.Tests;

[Collection(TestCollections.Postgres)]
public sealed class InternalApiTests(PostgresFixture postgres) : IAsyncLifetime
{
    private ControlPlaneApp _app = null!;
    private HostReceiveEndpointHandle? _provisioning;

    public async Task InitializeAsync()
    {
        _app = await ControlPlaneApp.StartAsync(postgres, new Dictionary<string, string> { ["Routes:LongPollTimeout"] = "00:00:03" });
        _provisioning = _app.Factory.Services.GetRequiredService<IBus>().ConnectReceiveEndpoint("stand-in-" + Guid.NewGuid().ToString("N"), e =>
        {
            e.Handler<DatabaseRequested>(ctx => ctx.Publish(new DatabaseProvisioned(ctx.Message.OperationId, DateTimeOffset.UtcNow, ctx.Message.DatabaseId, 9)));
            e.Handler<DatabaseDeletionRequested>(ctx => ctx.Publish(new DatabaseDeleted(ctx.Message.OperationId, DateTimeOffset.UtcNow, ctx.Message.DatabaseId)));
        });
        await _provisioning.Ready;
    }

    public async Task DisposeAsync()
    {
        await _provisioning!.StopAsync();
        await _app.DisposeAsync();
    }

    [Fact]
    public async Task Routes_OnlyProxyServiceTokensMayRead()
    {
        var user = await _app.SignupAndLoginAsync("notaproxy@example.com");
        var node = await _app.ServiceTokenAsync("kdb-node", ControlPlaneApp.NodeSecret);
        var proxy = await _app.ServiceTokenAsync("kdb-proxy", ControlPlaneApp.ProxySecret);

        using var anonymous = await _app.Client.GetAsync(new Uri("/internal/v1/routes", UriKind.Relative));
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await _app.SendAsync(HttpMethod.Get, "/internal/v1/routes", user)).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await _app.SendAsync(HttpMethod.Get, "/internal/v1/routes", node)).Status);
        Assert.Equal(HttpStatusCode.OK, (await _app.SendAsync(HttpMethod.Get, "/internal/v1/routes", proxy)).Status);
        // And a service token is no management-API token.
        Assert.Equal(HttpStatusCode.Unauthorized, (await _app.SendAsync(HttpMethod.Get, "/v1/me", proxy)).Status);
    }

    [Fact]
    public async Task Routes_FullThenLongPollDeltas_UpsertOnReadyAndRemovalOnDelete()
    {
        var proxy = await _app.ServiceTokenAsync("kdb-proxy", ControlPlaneApp.ProxySecret);
        var user = await _app.SignupAndLoginAsync("routes@example.com");
        var orgId = (await _app.SendAsync(HttpMethod.Get, "/v1/me", user)).Body.GetProperty("orgs")[0].GetProperty("id").GetString()!;

        var full = await _app.SendAsync(HttpMethod.Get, "/internal/v1/routes?proxy=p1", proxy);
        Assert.True(full.Body.GetProperty("full").GetBoolean());
        var version = full.Body.GetProperty("version").GetInt64();

        // Nothing changes: the poll waits out its timeout and answers the same version.
        var watch = Stopwatch.StartNew();
        var idle = await _app.SendAsync(HttpMethod.Get, $"/internal/v1/routes?since={version}&proxy=p1", proxy);
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(2), $"returned after {watch.Elapsed}");
        Assert.Equal(version, idle.Body.GetProperty("version").GetInt64());
        Assert.Empty(idle.Body.GetProperty("upserts").EnumerateArray());

        var poll = _app.SendAsync(HttpMethod.Get, $"/internal/v1/routes?since={version}&proxy=p1", proxy);
        var created = await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", user, new { name = "routed" });
        var databaseId = created.Body.GetProperty("database").GetProperty("id").GetString()!;
        var delta = await poll;
        if (delta.Body.GetProperty("upserts").GetArrayLength() == 0)
        {
            delta = await _app.SendAsync(HttpMethod.Get, $"/internal/v1/routes?since={delta.Body.GetProperty("version").GetInt64()}&proxy=p1", proxy);
        }

        var entry = Assert.Single(delta.Body.GetProperty("upserts").EnumerateArray());
        Assert.False(delta.Body.GetProperty("full").GetBoolean());
        Assert.Equal(databaseId, entry.GetProperty("databaseId").GetString());
        Assert.Equal("9", entry.GetProperty("groupId").GetString());
        Assert.True(ulong.Parse(entry.GetProperty("tenantId").GetString()!, System.Globalization.CultureInfo.InvariantCulture) > 0);
        var role = Assert.Single(entry.GetProperty("roles").EnumerateArray());
        Assert.StartsWith("SCRAM-SHA-256$", role.GetProperty("scramVerifier").GetString(), StringComparison.Ordinal);
        Assert.Equal(20, entry.GetProperty("limits").GetProperty("maxConnections").GetInt32());
        var one = await _app.SendAsync(HttpMethod.Get, $"/internal/v1/routes/{databaseId}", proxy);
        Assert.Equal(HttpStatusCode.OK, one.Status);

        var afterCreate = delta.Body.GetProperty("version").GetInt64();
        // Like a live proxy, p1 polls on from what it holds: only then does the database turn ready.
        Assert.Equal(HttpStatusCode.OK, (await _app.SendAsync(HttpMethod.Get, $"/internal/v1/routes?since={afterCreate}&proxy=p1", proxy)).Status);
        await Eventually.WaitAsync(async () => (await _app.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}", user)).Body.GetProperty("status").GetString() == "ready" ? true : (bool?)null, "ready");
        Assert.Equal(HttpStatusCode.Accepted, (await _app.SendAsync(HttpMethod.Delete, $"/v1/databases/{databaseId}", user)).Status);
        var removal = await _app.SendAsync(HttpMethod.Get, $"/internal/v1/routes?since={afterCreate}&proxy=p1", proxy);
        Assert.Contains(databaseId, removal.Body.GetProperty("removals").EnumerateArray().Select(r => r.GetString()));
        Assert.Equal(HttpStatusCode.NotFound, (await _app.SendAsync(HttpMethod.Get, $"/internal/v1/routes/{databaseId}", proxy)).Status);
    }

    [Fact]
    public async Task Heartbeats_RecordNodes_ThatProvisioningLists()
    {
        var node = await _app.ServiceTokenAsync("kdb-node", ControlPlaneApp.NodeSecret);
        var provisioning = await _app.ServiceTokenAsync("kdb-provisioning", ControlPlaneApp.ProvisioningSecret);
        var proxy = await _app.ServiceTokenAsync("kdb-proxy", ControlPlaneApp.ProxySecret);
        var beat = new { pgEndpoint = "127.0.0.1:7001", internalEndpoint = "127.0.0.1:7101", httpEndpoint = "http://127.0.0.1:7201", capacity = 100, groups = new[] { new { groupId = "1", role = "leader" } } };

        Assert.Equal(HttpStatusCode.NoContent, (await _app.SendAsync(HttpMethod.Post, "/internal/v1/nodes/node_a/heartbeat", node, beat)).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await _app.SendAsync(HttpMethod.Post, "/internal/v1/nodes/node_b/heartbeat", proxy, beat)).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await _app.SendAsync(HttpMethod.Post, "/internal/v1/nodes/node_c/heartbeat", node, new { capacity = -1 })).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await _app.SendAsync(HttpMethod.Post, "/internal/v1/nodes/node_c/heartbeat", node, "{\"pgEndpoint\":")).Status);

        var nodes = await _app.SendAsync(HttpMethod.Get, "/internal/v1/nodes", provisioning);
        var listed = Assert.Single(nodes.Body.GetProperty("items").EnumerateArray());
        Assert.Equal("node_a", listed.GetProperty("nodeId").GetString());
        Assert.Equal("alive", listed.GetProperty("status").GetString());
        Assert.Equal("leader", listed.GetProperty("groups")[0].GetProperty("role").GetString());
        Assert.Equal(HttpStatusCode.Forbidden, (await _app.SendAsync(HttpMethod.Get, "/internal/v1/nodes", node)).Status);
    }
}
