using System.Net;

namespace Kdb.Portal.Benchmarks;

/// <summary>What was seeded; <see cref="DatabaseId"/> is the database whose pages are measured.</summary>
internal sealed record SeededOrg(string DatabaseId, int Backups, int ConnectionEvents, int UsageRecords, int ApiKeys, int Invitations);

/// <summary>Fills one org the way a busy customer's looks: databases, and through the API everything the other pages list.</summary>
internal static class Seed
{
    public static async Task<SeededOrg> OrgAsync(BenchCloud cloud, string token, string orgId, int databases)
    {
        // Enterprise allows 1,000 databases; the owner changes the plan as a customer would.
        await cloud.SendAsync(HttpMethod.Patch, $"/v1/orgs/{orgId}", token, new { plan = "enterprise" });
        await cloud.SeedDatabasesAsync(orgId, databases);
        var first = await cloud.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/databases?limit=60", token, null);
        var ids = first.GetProperty("items").EnumerateArray().Select(d => d.GetProperty("id").GetString()!).ToList();
        var databaseId = ids[0];

        const int Backups = 25;
        for (var i = 0; i < Backups; i++)
        {
            await cloud.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/backups", token, null, HttpStatusCode.Accepted);
        }

        var now = DateTimeOffset.UtcNow;
        var events = Enumerable.Range(0, 200).Select(i => new
        {
            source = "proxy_bench",
            databaseId,
            at = now.AddSeconds(-i * 7),
            kind = (i % 10) switch { 0 => "deny", 1 => "throttle", _ => "connect" },
            reason = (i % 10) switch { 0 => i % 20 == 0 ? "locked_out" : "auth_failed", 1 => "statements_per_second", _ => (string?)null },
            clientIp = $"198.51.100.{i % 50}",
            user = "owner",
        }).ToArray();
        await cloud.SendAsync(HttpMethod.Post, "/internal/v1/connection-log", await cloud.ServiceTokenAsync("kdb-proxy"), events, HttpStatusCode.Accepted);

        // 48 hours of usage for 50 databases: the usage chart and this month's statement have something to sum.
        var hour = new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, 0, 0, TimeSpan.Zero);
        var usage = new List<object>();
        var sequence = 0;
        foreach (var id in ids.Take(50))
        {
            for (var h = 0; h < 48; h++)
            {
                usage.Add(new { source = "node_bench", sequence = ++sequence, databaseId = id, hourStart = hour.AddHours(-h), rowsRead = 10_000 + h, rowsWritten = 100 + h, bytesRead = 1L << 20, bytesWritten = 1L << 18, storageBytes = 50L << 20, cpuMs = 250, egressBytes = 1L << 20, connections = 3 });
            }
        }

        await cloud.SendAsync(HttpMethod.Post, "/internal/v1/usage", await cloud.ServiceTokenAsync("kdb-node"), usage, HttpStatusCode.Accepted);

        const int ApiKeys = 30;
        for (var i = 0; i < ApiKeys; i++)
        {
            await cloud.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/api-keys", token, new { name = $"key-{i}", role = "viewer" }, HttpStatusCode.Created);
        }

        const int Invitations = 10;
        for (var i = 0; i < Invitations; i++)
        {
            await cloud.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/members", token, new { email = $"invitee{i}@example.com", role = "developer" }, HttpStatusCode.Accepted);
        }

        return new SeededOrg(databaseId, Backups, events.Length, usage.Count, ApiKeys, Invitations);
    }
}
