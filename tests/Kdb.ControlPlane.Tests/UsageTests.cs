using System.Net;
using Kdb.Testing;
using Kdb.Testing.Cloud;
using Kdb.Testing.Postgres;

namespace Kdb.ControlPlane.Tests;

[Collection(TestCollections.Postgres)]
public sealed class UsageTests(PostgresFixture postgres) : IAsyncLifetime
{
    private static readonly DateTimeOffset Hour = new(2026, 11, 21, 10, 0, 0, TimeSpan.Zero);
    private ControlPlaneApp _app = null!;

    public async Task InitializeAsync() => _app = await ControlPlaneApp.StartAsync(postgres);

    public async Task DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task Ingest_IsIdempotentPerSourceAndSequence_AndReportsHourAndDaySums()
    {
        var (user, orgId, databaseId) = await DatabaseAsync("usage@example.com");
        var node = await _app.ServiceTokenAsync("kdb-node", ControlPlaneApp.NodeSecret);
        var proxy = await _app.ServiceTokenAsync("kdb-proxy", ControlPlaneApp.ProxySecret);
        object[] batch =
        [
            new UsageRecord("node_a", 1, databaseId, Hour.AddMinutes(5), RowsRead: 1000, StorageBytes: 500),
            new UsageRecord("node_a", 2, databaseId, Hour.AddMinutes(30), RowsRead: 200, RowsWritten: 50, StorageBytes: 700),
            new UsageRecord("node_a", 2, databaseId, Hour.AddMinutes(30), RowsRead: 200, RowsWritten: 50, StorageBytes: 700), // duplicate inside the batch
            new UsageRecord("node_b", 1, databaseId, Hour.AddHours(1), RowsWritten: 10, CpuMs: 300, StorageBytes: 600),
        ];

        Assert.Equal(HttpStatusCode.Accepted, (await _app.SendAsync(HttpMethod.Post, "/internal/v1/usage", node, batch)).Status);
        Assert.Equal(HttpStatusCode.Accepted, (await _app.SendAsync(HttpMethod.Post, "/internal/v1/usage", node, batch)).Status); // a retried batch
        Assert.Equal(HttpStatusCode.Accepted, (await _app.SendAsync(HttpMethod.Post, "/internal/v1/usage", proxy, new[] { new UsageRecord("proxy_1", 1, databaseId, Hour, EgressBytes: 4096) })).Status);

        var hourly = await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/usage?from={Uri.EscapeDataString(Hour.AddHours(-1).ToString("O"))}&to={Uri.EscapeDataString(Hour.AddHours(3).ToString("O"))}&granularity=hour", user);
        var items = hourly.Body.GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(2, items.Count);
        Assert.Equal(1200, items[0].GetProperty("rowsRead").GetInt64());
        Assert.Equal(50, items[0].GetProperty("rowsWritten").GetInt64());
        Assert.Equal(700, items[0].GetProperty("storageBytes").GetInt64());
        Assert.Equal(4096, items[0].GetProperty("egressBytes").GetInt64());
        Assert.Equal(17, items[0].GetProperty("requestUnits").GetDouble()); // 1200/100 + 50/10
        Assert.Equal(300, items[1].GetProperty("cpuMs").GetInt64());

        var daily = await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/usage?from={Uri.EscapeDataString(Hour.AddDays(-1).ToString("O"))}&to={Uri.EscapeDataString(Hour.AddDays(1).ToString("O"))}&granularity=day", user);
        var day = Assert.Single(daily.Body.GetProperty("items").EnumerateArray());
        Assert.Equal(60, day.GetProperty("rowsWritten").GetInt64());
    }

    [Fact]
    public async Task Ingest_OverlappingShuffledAndConcurrentBatches_CountEachSourceAndSequenceOnce()
    {
        var (user, orgId, databaseId) = await DatabaseAsync("usage-ranges@example.com");
        var node = await _app.ServiceTokenAsync("kdb-node", ControlPlaneApp.NodeSecret);
        var random = new Random(8);
        var seen = new HashSet<(string, long)>();

        // Random batches over a small sequence space: gaps, repeats, overlaps with earlier batches, two sources;
        // each pair of batches is posted at once, as a retry racing its original would be.
        for (var round = 0; round < 4; round++)
        {
            var batches = new List<object[]>();
            for (var b = 0; b < 2; b++)
            {
                var batch = new List<object>();
                var count = random.Next(1, 120);
                for (var i = 0; i < count; i++)
                {
                    var source = random.Next(3) == 0 ? "node_s" : "node_r";
                    var sequence = random.Next(1, 300);
                    seen.Add((source, sequence));
                    batch.Add(new UsageRecord(source, sequence, databaseId, Hour.AddMinutes(random.Next(60)), RowsRead: 1));
                }

                batches.Add(batch.ToArray());
            }

            var posted = await Task.WhenAll(batches.Select(batch => _app.SendAsync(HttpMethod.Post, "/internal/v1/usage", node, batch)));
            Assert.All(posted, p => Assert.Equal(HttpStatusCode.Accepted, p.Status));
        }

        var report = await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/usage?from={Uri.EscapeDataString(Hour.ToString("O"))}&to={Uri.EscapeDataString(Hour.AddHours(1).ToString("O"))}", user);
        Assert.Equal(seen.Count, Assert.Single(report.Body.GetProperty("items").EnumerateArray()).GetProperty("rowsRead").GetInt64());
    }

    [Fact]
    public async Task Ingest_OnlyUsageReporters_AndBadBatchesAre400()
    {
        var (user, _, databaseId) = await DatabaseAsync("badusage@example.com");
        var node = await _app.ServiceTokenAsync("kdb-node", ControlPlaneApp.NodeSecret);
        var provisioning = await _app.ServiceTokenAsync("kdb-provisioning", ControlPlaneApp.ProvisioningSecret);
        var good = new[] { new UsageRecord("node_a", 1, databaseId, Hour, RowsRead: 1) };

        Assert.Equal(HttpStatusCode.Unauthorized, (await _app.SendAsync(HttpMethod.Post, "/internal/v1/usage", user, good)).Status);
        // Provisioning's usage collector relays the nodes' counters (source = the node id), so it reports too.
        Assert.Equal(HttpStatusCode.Accepted, (await _app.SendAsync(HttpMethod.Post, "/internal/v1/usage", provisioning, good)).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await _app.SendAsync(HttpMethod.Post, "/internal/v1/usage", node, Array.Empty<object>())).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await _app.SendAsync(HttpMethod.Post, "/internal/v1/usage", node, new[] { new UsageRecord("node_a", 2, databaseId, Hour, RowsRead: -5) })).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await _app.SendAsync(HttpMethod.Post, "/internal/v1/usage", node, new[] { new UsageRecord("", 3, databaseId, Hour) })).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await _app.SendAsync(HttpMethod.Post, "/internal/v1/usage", node, "[{\"source\":\"n\",")).Status);
    }

    [Fact]
    public async Task Report_ShowsOnlyTheOrgsOwnDatabases()
    {
        var (alice, aliceOrg, aliceDb) = await DatabaseAsync("ua@example.com");
        var (bob, bobOrg, _) = await DatabaseAsync("ub@example.com");
        var node = await _app.ServiceTokenAsync("kdb-node", ControlPlaneApp.NodeSecret);
        await _app.SendAsync(HttpMethod.Post, "/internal/v1/usage", node, new[] { new UsageRecord("node_a", 1, aliceDb, Hour, RowsRead: 100) });
        var range = $"from={Uri.EscapeDataString(Hour.AddHours(-1).ToString("O"))}&to={Uri.EscapeDataString(Hour.AddHours(1).ToString("O"))}";

        Assert.Single((await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{aliceOrg}/usage?{range}", alice)).Body.GetProperty("items").EnumerateArray());
        Assert.Empty((await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{bobOrg}/usage?{range}", bob)).Body.GetProperty("items").EnumerateArray());
        Assert.Equal(HttpStatusCode.NotFound, (await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{aliceOrg}/usage?{range}", bob)).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{aliceOrg}/usage?granularity=minute", alice)).Status);
    }

    [Fact]
    public async Task DatabaseReport_ShowsOneDatabasesUsageOverTime_AnotherOrgsDatabaseIs404()
    {
        var (alice, aliceOrg, aliceDb) = await DatabaseAsync("udb-a@example.com");
        var sibling = (await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{aliceOrg}/databases", alice, new { name = "sibling" })).Body.GetProperty("database").GetProperty("id").GetString()!;
        var (bob, _, bobDb) = await DatabaseAsync("udb-b@example.com");
        var node = await _app.ServiceTokenAsync("kdb-node", ControlPlaneApp.NodeSecret);
        object[] batch =
        [
            new UsageRecord("node_d", 1, aliceDb, Hour, RowsRead: 1000, StorageBytes: 500, EgressBytes: 10, Connections: 3),
            new UsageRecord("node_d", 2, aliceDb, Hour.AddMinutes(20), RowsWritten: 20, StorageBytes: 800, EgressBytes: 5, Connections: 7),
            new UsageRecord("node_d", 3, aliceDb, Hour.AddHours(1), CpuMs: 200, StorageBytes: 900, Connections: 2),
            new UsageRecord("node_d", 4, sibling, Hour, RowsRead: 999_999, StorageBytes: 1),
            new UsageRecord("node_d", 5, bobDb, Hour, RowsRead: 5),
        ];
        Assert.Equal(HttpStatusCode.Accepted, (await _app.SendAsync(HttpMethod.Post, "/internal/v1/usage", node, batch)).Status);
        var range = $"from={Uri.EscapeDataString(Hour.AddHours(-1).ToString("O"))}&to={Uri.EscapeDataString(Hour.AddHours(3).ToString("O"))}";

        var hourly = await _app.SendAsync(HttpMethod.Get, $"/v1/databases/{aliceDb}/usage?{range}", alice);
        Assert.Equal(HttpStatusCode.OK, hourly.Status);
        Assert.Equal(aliceDb, hourly.Body.GetProperty("databaseId").GetString());
        var items = hourly.Body.GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(2, items.Count);
        Assert.Equal(1000, items[0].GetProperty("rowsRead").GetInt64()); // the sibling's reads are not this database's
        Assert.Equal(20, items[0].GetProperty("rowsWritten").GetInt64());
        Assert.Equal(800, items[0].GetProperty("storageBytes").GetInt64()); // largest in the hour
        Assert.Equal(7, items[0].GetProperty("connections").GetInt64()); // peak in the hour
        Assert.Equal(15, items[0].GetProperty("egressBytes").GetInt64());
        Assert.Equal(12, items[0].GetProperty("requestUnits").GetDouble()); // 1000/100 + 20/10
        Assert.Equal(2, items[1].GetProperty("requestUnits").GetDouble()); // 200 ms CPU / 100

        var daily = await _app.SendAsync(HttpMethod.Get, $"/v1/databases/{aliceDb}/usage?{range}&granularity=day", alice);
        var day = Assert.Single(daily.Body.GetProperty("items").EnumerateArray());
        Assert.Equal(900, day.GetProperty("storageBytes").GetInt64());
        Assert.Equal(14, day.GetProperty("requestUnits").GetDouble());

        // Another org's database looks exactly like a missing one; so does a deleted or made-up id.
        var foreign = await _app.SendAsync(HttpMethod.Get, $"/v1/databases/{aliceDb}/usage?{range}", bob);
        var missing = await _app.SendAsync(HttpMethod.Get, $"/v1/databases/db_doesnotexist0000/usage?{range}", bob);
        Assert.Equal(HttpStatusCode.NotFound, foreign.Status);
        Assert.Equal(missing.Body.GetProperty("detail").GetString(), foreign.Body.GetProperty("detail").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, (await _app.SendAsync(HttpMethod.Get, $"/v1/databases/{aliceDb}/usage?granularity=week", alice)).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await _app.SendAsync(HttpMethod.Get, $"/v1/databases/{aliceDb}/usage?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", alice)).Status);
    }

    [Fact]
    public async Task Quota_ShowsPlanLimitsBesideThisMonthsUsage_ToMembersOnly()
    {
        var (user, orgId, databaseId) = await DatabaseAsync("quota-view@example.com");
        var node = await _app.ServiceTokenAsync("kdb-node", ControlPlaneApp.NodeSecret);
        var now = DateTimeOffset.UtcNow;
        await _app.SendAsync(HttpMethod.Post, "/internal/v1/usage", node, new[] { new UsageRecord("node_q", 1, databaseId, now, RowsRead: 10_000, StorageBytes: 12345) });
        var stranger = await _app.SignupAndLoginAsync("quota-stranger@example.com");

        var quota = await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/quota", user);

        Assert.Equal("free", quota.Body.GetProperty("plan").GetString());
        Assert.Equal(3, quota.Body.GetProperty("limits").GetProperty("databasesPerOrg").GetInt32());
        Assert.Equal(1, quota.Body.GetProperty("databases").GetInt32());
        Assert.Equal(100, quota.Body.GetProperty("monthlyRequestUnits").GetDouble());
        Assert.Equal(12345, quota.Body.GetProperty("perDatabase")[0].GetProperty("storageBytes").GetInt64());
        Assert.Equal(HttpStatusCode.NotFound, (await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/quota", stranger)).Status);
    }

    private async Task<(string Token, string OrgId, string DatabaseId)> DatabaseAsync(string email)
    {
        var token = await _app.SignupAndLoginAsync(email);
        var orgId = (await _app.SendAsync(HttpMethod.Get, "/v1/me", token)).Body.GetProperty("orgs")[0].GetProperty("id").GetString()!;
        var created = await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "metered" });
        return (token, orgId, created.Body.GetProperty("database").GetProperty("id").GetString()!);
    }
}
