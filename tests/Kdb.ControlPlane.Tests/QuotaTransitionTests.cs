using System.Collections.Concurrent;
using System.Net;
using Kdb.Contracts.V1;
using Kdb.Testing;
using Kdb.Testing.Cloud;
using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Kdb.ControlPlane.Tests;

[Collection(TestCollections.Postgres)]
public sealed class QuotaTransitionTests(SharedControlPlane cp) : IClassFixture<SharedControlPlane>, IAsyncLifetime
{
    // The free plan: 1,000,000 request units a month; 1 GiB of storage and 20 connections per database.
    private const long FreeStorage = 1L << 30;
    private readonly ConcurrentQueue<QuotaStateChanged> _published = new();
    private HostReceiveEndpointHandle? _listener;

    private ControlPlaneApp App => cp.App;

    public async Task InitializeAsync()
    {
        _listener = App.Factory.Services.GetRequiredService<IBus>().ConnectReceiveEndpoint("test-quota-" + Guid.NewGuid().ToString("N"), e =>
            e.Handler<QuotaStateChanged>(ctx =>
            {
                _published.Enqueue(ctx.Message);
                return Task.CompletedTask;
            }));
        await _listener.Ready;
    }

    public async Task DisposeAsync()
    {
        if (_listener is not null)
        {
            await _listener.StopAsync();
        }
    }

    [Theory]
    [InlineData(0, 0, 0, "ok")]
    [InlineData(799_999, 0, 0, "ok")]
    [InlineData(800_000, 0, 0, "warning")]
    [InlineData(0, 858_993_460, 0, "warning")] // 80% of 1 GiB, rounded up
    [InlineData(0, 0, 16, "warning")] // 80% of 20 connections
    [InlineData(1_000_000, 0, 0, "warning")] // exactly 100% is not over
    [InlineData(1_000_001, 0, 0, "throttled")]
    [InlineData(0, FreeStorage + 1, 0, "read_only")]
    [InlineData(1_100_000, FreeStorage + 1, 0, "read_only")]
    [InlineData(1_250_001, FreeStorage + 1, 0, "suspended")]
    public void StateFor_AppliesDesignsThresholds(double units, long storage, long connections, string expected) =>
        Assert.Equal(expected, Usage.QuotaEvaluator.StateFor(units, 1_000_000, storage, FreeStorage, connections, 20));

    [Fact]
    public async Task Usage_MovesTheStateThroughWarningThrottledSuspended_PublishingEachTransitionOnce()
    {
        var (token, orgId, databaseId) = await DatabaseAsync("ru");
        var versionBefore = await RouteVersionAsync(databaseId);

        await IngestAsync(databaseId, rowsWritten: 8_000_000); // 800,000 RU: 80%
        await IngestAsync(databaseId, rowsWritten: 10); // still warning: no second event
        await StateBecomesAsync(token, databaseId, "warning");
        Assert.True(await RouteVersionAsync(databaseId) > versionBefore);

        await IngestAsync(databaseId, rowsWritten: 2_000_000); // 1,000,001 RU
        await StateBecomesAsync(token, databaseId, "throttled");

        await IngestAsync(databaseId, rowsWritten: 2_500_000); // 1,250,001 RU
        await StateBecomesAsync(token, databaseId, "suspended");

        // Proxies see it in the route entry.
        await cp.WithDbAsync(db => db.Databases.Where(d => d.Id == databaseId).ExecuteUpdateAsync(s => s.SetProperty(d => d.Status, "ready")));
        var proxy = await App.ServiceTokenAsync("kdb-proxy", ControlPlaneApp.ProxySecret);
        var route = await App.SendAsync(HttpMethod.Get, $"/internal/v1/routes/{databaseId}", proxy);
        Assert.Equal("suspended", route.Body.GetProperty("quotaState").GetString());

        var events = await EventsAsync(databaseId, 3);
        Assert.Equal([QuotaState.Warning, QuotaState.Throttled, QuotaState.Suspended], events.Select(e => e.State));
        Assert.All(events, e => Assert.StartsWith("op_", e.OperationId, StringComparison.Ordinal));
        var audit = await App.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/audit-log?actor=system:metering", token);
        var actions = audit.Body.GetProperty("items").EnumerateArray().Select(a => a.GetProperty("action").GetString()).Reverse().ToList();
        Assert.Equal(["quota.state_changed ok -> warning", "quota.state_changed warning -> throttled", "quota.state_changed throttled -> suspended"], actions);
    }

    [Fact]
    public async Task Storage_OverTheLimit_IsReadOnly_AndAPlanUpgradeLiftsIt()
    {
        var (token, orgId, databaseId) = await DatabaseAsync("storage");

        await IngestAsync(databaseId, storageBytes: FreeStorage + 1);
        await StateBecomesAsync(token, databaseId, "read_only");
        Assert.Equal("read_only", (await App.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/quota", token)).Body.GetProperty("perDatabase")[0].GetProperty("quotaState").GetString());

        Assert.Equal(HttpStatusCode.OK, (await App.SendAsync(HttpMethod.Patch, $"/v1/orgs/{orgId}", token, new { plan = "pro" })).Status);

        await StateBecomesAsync(token, databaseId, "ok");
        var events = await EventsAsync(databaseId, 2);
        Assert.Equal([QuotaState.ReadOnly, QuotaState.Ok], events.Select(e => e.State));
    }

    [Fact]
    public async Task RequestUnits_CountPerOrg_SoASiblingDatabaseMovesToo()
    {
        var (token, orgId, first) = await DatabaseAsync("org-wide");
        var second = (await App.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "sibling" })).Body.GetProperty("database").GetProperty("id").GetString()!;

        await IngestAsync(first, rowsWritten: 6_000_000);
        await IngestAsync(second, rowsWritten: 5_000_000); // 1,100,000 RU over both

        await StateBecomesAsync(token, first, "throttled");
        await StateBecomesAsync(token, second, "throttled");
    }

    [Fact]
    public async Task ConcurrentBatches_PublishATransitionOnce()
    {
        var (token, orgId, databaseId) = await DatabaseAsync("race");

        await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => IngestAsync(databaseId, rowsWritten: 2_000_000))); // 1,200,000 RU in all

        await StateBecomesAsync(token, databaseId, "throttled");
        var audited = await cp.WithDbAsync(db => db.AuditLog.CountAsync(a => a.OrgId == orgId && a.ResourceId == databaseId && a.Actor == Usage.QuotaEvaluator.Actor));
        var events = await EventsAsync(databaseId, audited);
        // Whatever the interleaving (ok → warning → throttled, or straight to throttled), every state change
        // was published exactly once and audited beside it.
        Assert.Equal(audited, events.Count);
        Assert.Equal(QuotaState.Throttled, events[^1].State);
        Assert.Equal(events.Count, events.Select(e => e.State).Distinct().Count());
    }

    private async Task<(string Token, string OrgId, string DatabaseId)> DatabaseAsync(string name)
    {
        var (token, _, orgId) = await cp.UserAsync(SharedControlPlane.Email(name));
        var created = await App.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "metered" });
        Assert.Equal(HttpStatusCode.Accepted, created.Status);
        return (token, orgId, created.Body.GetProperty("database").GetProperty("id").GetString()!);
    }

    private async Task IngestAsync(string databaseId, long rowsWritten = 0, long storageBytes = 0)
    {
        var node = await App.ServiceTokenAsync("kdb-node", ControlPlaneApp.NodeSecret);
        var record = new UsageRecord("nq-" + Guid.NewGuid().ToString("N"), 1, databaseId, DateTimeOffset.UtcNow, RowsWritten: rowsWritten, StorageBytes: storageBytes);
        Assert.Equal(HttpStatusCode.Accepted, (await App.SendAsync(HttpMethod.Post, "/internal/v1/usage", node, new[] { record })).Status);
    }

    /// <summary>Waits for a state: usage is evaluated in the background, each org at most once a second.</summary>
    private Task StateBecomesAsync(string token, string databaseId, string expected) => Eventually.WaitAsync(async () =>
        (await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}", token)).Body.GetProperty("quotaState").GetString() == expected ? true : (bool?)null,
        $"quota state {expected}");

    private Task<long> RouteVersionAsync(string databaseId) =>
        cp.WithDbAsync(db => db.Databases.Where(d => d.Id == databaseId).Select(d => d.RouteVersion).SingleAsync());

    /// <summary>The events published for a database, once <paramref name="count"/> have arrived (the outbox dispatches in the background).</summary>
    private async Task<List<QuotaStateChanged>> EventsAsync(string databaseId, int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var events = _published.Where(e => e.DatabaseId == databaseId).ToList();
            if (events.Count >= count || DateTime.UtcNow > deadline)
            {
                // A little longer, so a duplicate would show.
                await Task.Delay(300);
                return [.. _published.Where(e => e.DatabaseId == databaseId).OrderBy(e => e.Timestamp)];
            }

            await Task.Delay(100);
        }
    }
}
