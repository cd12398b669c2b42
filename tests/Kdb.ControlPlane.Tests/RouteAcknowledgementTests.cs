using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Kdb.Contracts.V1;
using Kdb.Testing;
using Kdb.Testing.Postgres;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;

namespace Kdb.ControlPlane.Tests;

/// <summary>A control plane with a stand-in provisioning that places every new database in group 9.</summary>
internal sealed class RoutedControlPlane : IAsyncDisposable
{
    private HostReceiveEndpointHandle? _provisioning;

    public ControlPlaneApp App { get; private set; } = null!;

    public CapturingLoggerProvider Logs { get; } = new();

    public static async Task<RoutedControlPlane> StartAsync(PostgresFixture postgres, IReadOnlyDictionary<string, string> settings)
    {
        var routed = new RoutedControlPlane();
        routed.App = await ControlPlaneApp.StartAsync(postgres, settings, routed.Logs);
        routed._provisioning = routed.App.Factory.Services.GetRequiredService<IBus>().ConnectReceiveEndpoint("stand-in-" + Guid.NewGuid().ToString("N"), e =>
            e.Handler<DatabaseRequested>(ctx => ctx.Publish(new DatabaseProvisioned(ctx.Message.OperationId, DateTimeOffset.UtcNow, ctx.Message.DatabaseId, 9))));
        await routed._provisioning.Ready;
        return routed;
    }

    /// <summary>A new user's database, once the API shows it ready.</summary>
    public async Task<(string Token, string DatabaseId)> ReadyDatabaseAsync(string name)
    {
        var token = await App.SignupAndLoginAsync(SharedControlPlane.Email(name));
        var orgId = (await App.SendAsync(HttpMethod.Get, "/v1/me", token)).Body.GetProperty("orgs")[0].GetProperty("id").GetString()!;
        var created = await App.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name });
        Assert.Equal(HttpStatusCode.Accepted, created.Status);
        var databaseId = created.Body.GetProperty("database").GetProperty("id").GetString()!;
        await WaitReadyAsync(token, databaseId);
        return (token, databaseId);
    }

    public Task WaitReadyAsync(string token, string databaseId) => Eventually.WaitAsync(async () =>
    {
        var database = await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}", token);
        return database.Body.GetProperty("status").GetString() == "ready" ? true : (bool?)null;
    }, "the database is ready");

    public async ValueTask DisposeAsync()
    {
        if (_provisioning is not null)
        {
            await _provisioning.StopAsync();
        }

        await App.DisposeAsync();
    }
}

/// <summary>DESIGN, no race after a change: `ready` and role changes wait until every live proxy has fetched them.</summary>
[Collection(TestCollections.Postgres)]
public sealed class RouteAcknowledgementTests(PostgresFixture postgres) : IAsyncLifetime
{
    private static readonly TimeSpan ApplyDelay = TimeSpan.FromMilliseconds(700);
    private RoutedControlPlane _cp = null!;

    public async Task InitializeAsync() => _cp = await RoutedControlPlane.StartAsync(postgres, new Dictionary<string, string>
    {
        ["Routes:LongPollTimeout"] = "00:00:03",
        // Long enough that the slow proxy below is always waited for, even on a loaded machine.
        ["Routes:ProxyAckTimeout"] = "00:00:30",
    });

    public async Task DisposeAsync() => await _cp.DisposeAsync();

    [Fact]
    public async Task RoleCreateResetDelete_ReturnOnlyOnceTheLiveProxyHoldsTheChange()
    {
        var (token, databaseId) = await _cp.ReadyDatabaseAsync("acked-roles");
        await using var proxy = new TestProxy(_cp.App, "slow-" + Guid.NewGuid().ToString("N")[..8], ApplyDelay);
        await proxy.StartAsync();

        var watch = Stopwatch.StartNew();
        var created = await _cp.App.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/roles", token, new { name = "app_rw", kind = "readwrite" });
        Assert.Equal(HttpStatusCode.Created, created.Status);
        // The proxy applies an answer only after ApplyDelay and polls again only then: the response cannot precede it.
        Assert.True(watch.Elapsed >= ApplyDelay * 0.9, $"returned after {watch.Elapsed}");
        var verifier = Verifier(proxy, databaseId, "app_rw");
        Assert.NotNull(verifier);

        var reset = await _cp.App.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/roles/app_rw/reset-password", token);
        Assert.Equal(HttpStatusCode.OK, reset.Status);
        Assert.NotEqual(verifier, Verifier(proxy, databaseId, "app_rw"));

        Assert.Equal(HttpStatusCode.NoContent, (await _cp.App.SendAsync(HttpMethod.Delete, $"/v1/databases/{databaseId}/roles/app_rw", token)).Status);
        Assert.Null(Verifier(proxy, databaseId, "app_rw"));
    }

    [Fact]
    public async Task Database_TurnsReadyOnlyOnceTheLiveProxyHoldsItsRoute()
    {
        var token = await _cp.App.SignupAndLoginAsync(SharedControlPlane.Email("acked-ready"));
        var orgId = (await _cp.App.SendAsync(HttpMethod.Get, "/v1/me", token)).Body.GetProperty("orgs")[0].GetProperty("id").GetString()!;
        await using var proxy = new TestProxy(_cp.App, "slow-" + Guid.NewGuid().ToString("N")[..8], ApplyDelay);
        await proxy.StartAsync();

        var created = await _cp.App.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "acked" });
        var databaseId = created.Body.GetProperty("database").GetProperty("id").GetString()!;
        var sawProvisioning = false;
        await Eventually.WaitAsync(async () =>
        {
            var status = (await _cp.App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}", token)).Body.GetProperty("status").GetString();
            if (status != "ready")
            {
                sawProvisioning = true;
                return null;
            }

            // The first time the API says ready, the proxy already routes the database with its owner role.
            Assert.True(proxy.Entries.TryGetValue(databaseId, out var entry), "ready before the proxy held the route");
            Assert.Equal("9", entry.GetProperty("groupId").GetString());
            Assert.Contains("owner", entry.GetProperty("roles").EnumerateArray().Select(r => r.GetProperty("name").GetString()));
            return (bool?)true;
        }, "the database is ready");
        Assert.True(sawProvisioning);
    }

    private static string? Verifier(TestProxy proxy, string databaseId, string role) =>
        proxy.Entries.TryGetValue(databaseId, out var entry)
            ? entry.GetProperty("roles").EnumerateArray().Where(r => r.GetProperty("name").GetString() == role).Select(r => r.GetProperty("scramVerifier").GetString()).FirstOrDefault()
            : null;
}

/// <summary>A proxy that stops polling delays changes by the acknowledgement timeout at most, with a warning, then stops counting.</summary>
[Collection(TestCollections.Postgres)]
public sealed class StalledProxyTests(PostgresFixture postgres) : IAsyncLifetime
{
    private static readonly TimeSpan AckTimeout = TimeSpan.FromSeconds(1);
    private RoutedControlPlane _cp = null!;

    public async Task InitializeAsync() => _cp = await RoutedControlPlane.StartAsync(postgres, new Dictionary<string, string>
    {
        ["Routes:LongPollTimeout"] = "00:00:01",
        ["Routes:ProxyAckTimeout"] = "00:00:01",
    });

    public async Task DisposeAsync() => await _cp.DisposeAsync();

    [Fact]
    public async Task StalledProxy_DelaysARoleChangeByTheTimeout_LogsAWarning_ThenIsNoLongerLive()
    {
        var (token, databaseId) = await _cp.ReadyDatabaseAsync("stalled");
        var proxyToken = await _cp.App.ServiceTokenAsync("kdb-proxy", ControlPlaneApp.ProxySecret);
        // One full fetch, then silence.
        var stalledAt = Stopwatch.StartNew();
        Assert.Equal(HttpStatusCode.OK, (await _cp.App.SendAsync(HttpMethod.Get, "/internal/v1/routes?proxy=stalled-proxy", proxyToken)).Status);

        var watch = Stopwatch.StartNew();
        Assert.Equal(HttpStatusCode.Created, (await _cp.App.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/roles", token, new { name = "first", kind = "readonly" })).Status);
        Assert.True(watch.Elapsed >= AckTimeout * 0.9, $"returned after {watch.Elapsed}: the stalled proxy was not waited for");
        Assert.Contains(_cp.Logs.Messages, m => m.StartsWith("Warning", StringComparison.Ordinal) && m.Contains("stalled-proxy", StringComparison.Ordinal));

        // Past the long-poll timeout plus the grace (1 + 5 s) without a poll, it is no longer live: no more waits or warnings.
        var remaining = TimeSpan.FromSeconds(6.5) - stalledAt.Elapsed;
        if (remaining > TimeSpan.Zero)
        {
            await Task.Delay(remaining);
        }

        var warnings = _cp.Logs.Messages.Count(m => m.Contains("stalled-proxy", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.Created, (await _cp.App.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/roles", token, new { name = "second", kind = "readonly" })).Status);
        Assert.Equal(warnings, _cp.Logs.Messages.Count(m => m.Contains("stalled-proxy", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Poll_WithAnOverlongProxyId_Is400()
    {
        var proxyToken = await _cp.App.ServiceTokenAsync("kdb-proxy", ControlPlaneApp.ProxySecret);
        var bad = await _cp.App.SendAsync(HttpMethod.Get, "/internal/v1/routes?proxy=" + new string('p', 65), proxyToken);
        Assert.Equal(HttpStatusCode.BadRequest, bad.Status);
        Assert.Equal("application/problem+json", bad.Response.Content.Headers.ContentType?.MediaType);
        Assert.True(bad.Body.GetProperty("errors").TryGetProperty("proxy", out JsonElement _));
    }
}
