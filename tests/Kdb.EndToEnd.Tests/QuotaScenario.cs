using System.Net;
using System.Text.Json;
using Kdb.Testing.Cloud;
using Kdb.Testing.EndToEnd;
using Kdb.Testing.Postgres;
using Npgsql;

namespace Kdb.EndToEnd.Tests;

/// <summary>
/// A tenant that goes over its plan meets DESIGN's quota states one after another, each enforced where DESIGN says:
/// <c>warning</c> (nothing changes for the client), <c>throttled</c> (the proxy paces statements, which still succeed),
/// <c>read_only</c> (nodes refuse writes with 25006, reads work), <c>suspended</c> (the proxy refuses connections with
/// 53400). The plan limits are fixed in code (free: 1,000,000 request units a month, 1 GiB per database), far beyond
/// what a test can do through SQL, so the excess is reported the way a node reports usage (<c>POST /internal/v1/usage</c>
/// with the node's service credentials); everything after that — metering, evaluation, the event, provisioning, the
/// nodes and the proxy — is the real path. Part of the fleet test, run while the fleet waits for its scheduled backup.
/// </summary>
internal sealed class QuotaScenario(EndToEndCloud cloud)
{
    private const long GiB = 1L << 30;

    public async Task RunAsync()
    {
        var (token, orgId) = await cloud.UserAsync("quota");
        var database = await cloud.CreateReadyDatabaseAsync(token, orgId, "heavy");
        var connectionString = cloud.ProxyConnectionString(database.Id, database.Password);
        await BankWorkload.RetryAsync(async () =>
        {
            await using var conn = await Npg.OpenAsync(connectionString);
            await Npg.ExecAsync(conn, "CREATE TABLE IF NOT EXISTS notes (id int PRIMARY KEY)");
        });
        var meter = new UsageMeter(cloud, database.Id, await cloud.ServiceTokenAsync("kdb-node", EndToEndCloud.NodeSecret));
        var nextId = 0;

        // 85% of the org's monthly request units (a row written is 1/10 RU): a warning the client does not notice.
        await meter.ReportAsync(rowsWritten: 8_500_000);
        await WaitForStateAsync(database, "warning");
        await InsertAndCountAsync(connectionString, ++nextId);

        // 105%: the proxy throttles; statements are paced, never refused.
        await meter.ReportAsync(rowsWritten: 2_000_000);
        await WaitForStateAsync(database, "throttled");
        await InsertAndCountAsync(connectionString, ++nextId);

        // Storage over the plan's 1 GiB ranks above throttled: the nodes refuse writes, reads still work.
        await meter.ReportAsync(storageBytes: 2 * GiB);
        await WaitForStateAsync(database, "read_only");
        await PollUntilAsync(async () =>
        {
            await using var conn = await Npg.OpenAsync(connectionString);
            try
            {
                await using var insert = new NpgsqlCommand($"INSERT INTO notes VALUES ({++nextId})", conn);
                await insert.ExecuteNonQueryAsync();
                return false;
            }
            catch (PostgresException e) when (e.SqlState == "25006")
            {
                await using var count = new NpgsqlCommand("SELECT count(*) FROM notes", conn);
                Assert.True((long)(await count.ExecuteScalarAsync())! >= 2);
                return true;
            }
        }, "writes refused with 25006");

        // 130%: suspended; the proxy refuses new connections.
        await meter.ReportAsync(rowsWritten: 2_500_000);
        await WaitForStateAsync(database, "suspended");
        await PollUntilAsync(async () =>
        {
            try
            {
                await using var conn = await Npg.OpenAsync(connectionString);
                return false;
            }
            catch (PostgresException e) when (e.SqlState == "53400")
            {
                Assert.Equal("database suspended: quota exceeded", e.MessageText);
                return true;
            }
        }, "connections refused with 53400");

        // Every transition was recorded once, in order, by the metering system.
        var (status, audit) = await cloud.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/audit-log?action=quota.state_changed&limit=50", token);
        Assert.Equal(HttpStatusCode.OK, status);
        var transitions = audit.GetProperty("items").EnumerateArray().Reverse().Select(a => a.GetProperty("action").GetString()).ToList();
        Assert.Equal(
            ["quota.state_changed ok -> warning", "quota.state_changed warning -> throttled", "quota.state_changed throttled -> read_only", "quota.state_changed read_only -> suspended"],
            transitions);
        var (quotaStatus, quota) = await cloud.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/quota", token);
        Assert.Equal(HttpStatusCode.OK, quotaStatus);
        Assert.True(quota.GetProperty("monthlyRequestUnits").GetDouble() > 1_250_000, quota.ToString());
    }

    private Task WaitForStateAsync(CloudDatabase database, string state) =>
        cloud.WaitForAsync($"/v1/databases/{database.Id}", database.Token, d => d.GetProperty("quotaState").GetString() == state);

    /// <summary>A write and a read that must both succeed (through reconnects).</summary>
    private static Task InsertAndCountAsync(string connectionString, int id) => BankWorkload.RetryAsync(async () =>
    {
        await using var conn = await Npg.OpenAsync(connectionString);
        await Npg.ExecAsync(conn, $"INSERT INTO notes VALUES ({id}) ON CONFLICT DO NOTHING");
        await using var count = new NpgsqlCommand("SELECT count(*) FROM notes", conn);
        Assert.Equal((long)id, (long)(await count.ExecuteScalarAsync())!);
    });

    /// <summary>Polls until the state reaches the nodes and the proxy (an event and a route version away from the API).</summary>
    private static async Task PollUntilAsync(Func<Task<bool>> attempt, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (true)
        {
            try
            {
                if (await attempt())
                {
                    return;
                }
            }
            catch (Exception e) when (BankWorkload.IsTransient(e))
            {
            }
            Assert.True(DateTime.UtcNow < deadline, "never saw " + what);
            await Task.Delay(250);
        }
    }

    /// <summary>Reports usage for one database as a node does: its own source id, consecutive sequences, the current hour.</summary>
    private sealed class UsageMeter(EndToEndCloud cloud, string databaseId, string nodeToken)
    {
        private readonly string _source = "e2e-meter-" + Guid.NewGuid().ToString("N")[..8];
        private long _sequence;

        public async Task ReportAsync(long rowsWritten = 0, long storageBytes = 0)
        {
            var hour = UsageRecord.CurrentHour();
            // A storage gauge is also reported for the next hour, so that crossing an hour mid-test does not lift it.
            DateTimeOffset[] hours = storageBytes > 0 ? [hour, hour.AddHours(1)] : [hour];
            var records = hours.Select(h => new UsageRecord(_source, ++_sequence, databaseId, h, RowsWritten: rowsWritten, StorageBytes: storageBytes, Connections: 0)).ToArray();
            var (status, body) = await cloud.SendAsync(HttpMethod.Post, "/internal/v1/usage", nodeToken, records);
            Assert.True(status == HttpStatusCode.Accepted, $"usage report: {(int)status} {(body.ValueKind == JsonValueKind.Undefined ? "" : body.ToString())}");
        }
    }
}
