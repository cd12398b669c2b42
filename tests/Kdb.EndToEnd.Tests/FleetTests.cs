using System.Globalization;
using System.Net;
using System.Text.Json;
using Kdb.Testing.EndToEnd;
using Kdb.Testing.Postgres;
using Npgsql;
using Xunit.Abstractions;

namespace Kdb.EndToEnd.Tests;

/// <summary>
/// Many tenants at once, as they would use the service: sign up, create databases through REST, work on them through
/// the proxy with their own credentials; nobody sees anybody else; usage reaches the control plane and the invoice;
/// backups run on request and on schedule, and a scheduled one is verified by the restore drill and restored; a tenant
/// over its plan meets the quota states in their graduated order.
/// </summary>
[Collection(CloudCollection.Name)]
public sealed class FleetTests(EndToEndCloud cloud, ITestOutputHelper output)
{
    private static readonly string[] Tables = ["items", "tenant_mark"];
    private const int InsertedRows = 20;

    [Fact]
    public async Task Fleet_OrgsCreateDatabasesAndWorkThroughTheProxy_IsolatedMeteredBilledQuotaLimitedAndBackedUp()
    {
        var orgCount = CloudCollection.Soak ? 100 : 8;
        var users = await ParallelAsync(Enumerable.Range(0, orgCount), i => cloud.UserAsync("fleet" + i.ToString(CultureInfo.InvariantCulture)));
        // One org pays (pro plan: its invoice prices usage); it has two databases, as every other org does.
        var (planStatus, planned) = await cloud.SendAsync(HttpMethod.Patch, $"/v1/orgs/{users[1].OrgId}", users[1].Token, new { plan = "pro" });
        Assert.True(planStatus == HttpStatusCode.OK, planned.ToString());
        // Every other org has a second database: two databases of one org must be as isolated as two orgs.
        var wanted = users.SelectMany((u, i) => Enumerable.Range(0, 1 + (i % 2)).Select(n => (u.Token, u.OrgId, Name: "app" + n.ToString(CultureInfo.InvariantCulture)))).ToList();
        var databases = await ParallelAsync(wanted, w => cloud.CreateReadyDatabaseAsync(w.Token, w.OrgId, w.Name));
        // The soak's record: how many tenants and databases this run had, and how long they took to become ready.
        var ready = databases.Select(d => d.CreateToReady.TotalSeconds).Order().ToList();
        output.WriteLine($"{orgCount} orgs, {databases.Count} databases ready; request to ready p50 {ready[ready.Count / 2]:0.00} s, max {ready[^1]:0.00} s");

        // The first database's data is final before its backup schedule starts, so the restored copy must equal it;
        // the minute until cron fires passes while the rest of the fleet works.
        await WorkloadAsync(databases[0]);
        var scheduled = ScheduledBackupRestoresAsync(databases[0]);
        // Meanwhile one more tenant goes over its plan, and its quota states trip one after another.
        var quotas = new QuotaScenario(cloud).RunAsync();
        await ParallelAsync(databases.Skip(1), WorkloadAsync);

        var violations = await IsolationProbe.FindViolationsAsync(cloud, databases, Tables);
        output.WriteLine($"{databases.Count} databases worked through the proxy; {violations.Count} isolation violations");
        Assert.True(violations.Count == 0, string.Join("\n", violations));

        // Usage: every org's work reaches the control plane through the nodes' and the proxy's reports.
        foreach (var group in databases.GroupBy(d => d.OrgId).Take(CloudCollection.Soak ? int.MaxValue : 4))
        {
            var minimumRowsWritten = group.Count() * (InsertedRows + 2L);
            var usage = await cloud.WaitForAsync($"/v1/orgs/{group.Key}/usage", group.First().Token, report =>
                Sum(report, "rowsWritten") >= minimumRowsWritten && Sum(report, "egressBytes") > 0 && Sum(report, "rowsRead") > 0);
            foreach (var item in usage.GetProperty("items").EnumerateArray())
            {
                // The documented formula (docs/usage-metering.md: request units), rounded to 3 decimals as reported.
                var expected = Math.Round((item.GetProperty("rowsRead").GetInt64() / 100.0) + (item.GetProperty("rowsWritten").GetInt64() / 10.0)
                    + ((item.GetProperty("bytesRead").GetInt64() + item.GetProperty("bytesWritten").GetInt64()) / 1048576.0) + (item.GetProperty("cpuMs").GetInt64() / 100.0), 3);
                Assert.Equal(expected, item.GetProperty("requestUnits").GetDouble(), 3);
            }
        }
        await InvoiceMatchesUsageAsync(users[1].OrgId, users[1].Token, [.. databases.Where(d => d.OrgId == users[1].OrgId).Select(d => d.Id)]);

        // A backup through REST completes with a checksum.
        var source = databases[^1];
        var (status, created) = await cloud.SendAsync(HttpMethod.Post, $"/v1/databases/{source.Id}/backups", source.Token, new { });
        Assert.True(status == HttpStatusCode.Accepted, created.ToString());
        var backupId = created.GetProperty("backup").GetProperty("id").GetString()!;
        var backup = await cloud.WaitForAsync($"/v1/databases/{source.Id}/backups/{backupId}", source.Token, b => b.GetProperty("status").GetString() is "completed" or "failed");
        Assert.True(backup.GetProperty("status").GetString() == "completed", backup.ToString());
        Assert.Matches("^[0-9a-f]{64}$", backup.GetProperty("sha256").GetString());

        await scheduled;
        await quotas;
    }

    /// <summary>
    /// A schedule firing every minute takes a backup with nobody asking; the control plane's restore drill verifies
    /// it; a restore of it into a new database brings back exactly the data, opened with the owner's own password.
    /// </summary>
    private async Task ScheduledBackupRestoresAsync(CloudDatabase database)
    {
        var schedulePath = $"/v1/databases/{database.Id}/backup-schedule";
        var (status, schedule) = await cloud.SendAsync(HttpMethod.Put, schedulePath, database.Token, new { cron = "* * * * *", retentionDays = 1 });
        Assert.True(status == HttpStatusCode.OK, schedule.ToString());
        Assert.Equal(JsonValueKind.String, schedule.GetProperty("nextRunAt").ValueKind);
        var backups = await cloud.WaitForAsync($"/v1/databases/{database.Id}/backups", database.Token,
            list => list.GetProperty("items").EnumerateArray().Any(b => b.GetProperty("status").GetString() is "completed" or "failed"), seconds: 240, pollMs: 500);
        // One scheduled backup is enough: stop the schedule so later tests run without backups in the background.
        (status, schedule) = await cloud.SendAsync(HttpMethod.Put, schedulePath, database.Token, new { cron = "* * * * *", retentionDays = 1, enabled = false });
        Assert.True(status == HttpStatusCode.OK, schedule.ToString());
        var taken = backups.GetProperty("items").EnumerateArray().First(b => b.GetProperty("status").GetString() is "completed" or "failed");
        Assert.True(taken.GetProperty("status").GetString() == "completed", taken.ToString());
        var backupId = taken.GetProperty("id").GetString()!;

        var verified = await cloud.WaitForAsync($"/v1/databases/{database.Id}/backups/{backupId}", database.Token,
            b => b.GetProperty("verifiedAt").ValueKind == JsonValueKind.String, seconds: 180, pollMs: 500);
        Assert.True(verified.GetProperty("verified").GetBoolean(), "restore drill: " + verified);

        var (restoreStatus, restore) = await cloud.SendAsync(HttpMethod.Post, $"/v1/databases/{database.Id}/restore", database.Token, new { backupId, target = "new", name = "restored" });
        Assert.True(restoreStatus == HttpStatusCode.Accepted, restore.ToString());
        var targetId = restore.GetProperty("database").GetProperty("id").GetString()!;
        var target = await cloud.WaitForAsync($"/v1/databases/{targetId}", database.Token, d => d.GetProperty("status").GetString() is "ready" or "failed", seconds: 180);
        Assert.True(target.GetProperty("status").GetString() == "ready", target.ToString());
        await BankWorkload.RetryAsync(async () =>
        {
            await using var conn = await Npg.OpenAsync(cloud.ProxyConnectionString(targetId, database.Password));
            await AssertItemsAsync(conn);
        });
    }

    /// <summary>
    /// The open invoice prices the org's metered usage by docs/usage-metering.md: per database, request units in
    /// millions, GB-hours of storage and GB of egress, each amount the quantity times the plan's price in cents, the
    /// total their sum. Usage is read just before and just after, as it keeps arriving.
    /// </summary>
    private async Task InvoiceMatchesUsageAsync(string orgId, string token, IReadOnlyCollection<string> databaseIds)
    {
        var now = DateTimeOffset.UtcNow;
        var monthStart = new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero);
        var usagePath = $"/v1/orgs/{orgId}/usage?granularity=day&from={Uri.EscapeDataString(monthStart.ToString("O", CultureInfo.InvariantCulture))}&to={Uri.EscapeDataString(now.AddDays(1).ToString("O", CultureInfo.InvariantCulture))}";
        var before = await cloud.WaitForAsync(usagePath, token, _ => true);
        var (status, invoice) = await cloud.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/invoices/{monthStart.ToString("yyyy-MM", CultureInfo.InvariantCulture)}", token);
        var after = await cloud.WaitForAsync(usagePath, token, _ => true);
        Assert.True(status == HttpStatusCode.OK, invoice.ToString());
        Assert.Equal("pro", invoice.GetProperty("plan").GetString());
        Assert.Equal("open", invoice.GetProperty("status").GetString());

        var lines = invoice.GetProperty("lineItems").EnumerateArray().ToList();
        var total = 0m;
        foreach (var line in lines)
        {
            var amount = line.GetProperty("amount").GetDecimal();
            Assert.Equal(Math.Round(line.GetProperty("quantity").GetDecimal() * line.GetProperty("unitPrice").GetDecimal(), 2, MidpointRounding.AwayFromZero), amount);
            total += amount;
        }
        Assert.Equal(total, invoice.GetProperty("total").GetDecimal());
        Assert.Contains(lines, l => l.GetProperty("description").GetString() == "pro plan" && l.GetProperty("unitPrice").GetDecimal() == 25.00m);

        // Each database's lines; quantities are rounded to a millionth (1 RU, 1 kB), the report's units to a thousandth.
        var units = lines.Where(l => l.GetProperty("unit").GetString() == "million RU").ToList();
        Assert.Equal(databaseIds.Order(StringComparer.Ordinal), units.Select(l => l.GetProperty("databaseId").GetString()!).Distinct().Order(StringComparer.Ordinal));
        var billedUnits = units.Sum(l => l.GetProperty("quantity").GetDecimal()) * 1_000_000m;
        Assert.InRange(billedUnits, (decimal)SumDouble(before, "requestUnits") - units.Count - 1, (decimal)SumDouble(after, "requestUnits") + units.Count + 1);
        Assert.True(billedUnits > 0, invoice.ToString());
        var billedEgress = lines.Where(l => l.GetProperty("unit").GetString() == "GB").Sum(l => l.GetProperty("quantity").GetDecimal()) * 1_000_000_000m;
        Assert.InRange(billedEgress, Sum(before, "egressBytes") - (1000m * units.Count), Sum(after, "egressBytes") + (1000m * units.Count));
    }

    /// <summary>Schema, a bulk insert, a transaction of updates and an insert, reads that check what was written.</summary>
    private async Task WorkloadAsync(CloudDatabase database)
    {
        await BankWorkload.RetryAsync(async () =>
        {
            await using var conn = new NpgsqlConnection(cloud.ProxyConnectionString(database.Id, database.Password));
            await conn.OpenAsync();
            await ExecAsync(conn, "CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, qty int NOT NULL)");
            await ExecAsync(conn, "CREATE TABLE IF NOT EXISTS tenant_mark (db text PRIMARY KEY)");
            await ExecAsync(conn, $"INSERT INTO tenant_mark VALUES ('{database.Id}') ON CONFLICT DO NOTHING");
            await ExecAsync(conn, $"INSERT INTO items SELECT g, g FROM generate_series(1, {InsertedRows}) g ON CONFLICT DO NOTHING");
        });
        await using var conn = new NpgsqlConnection(cloud.ProxyConnectionString(database.Id, database.Password));
        await conn.OpenAsync();
        await using (var tx = await conn.BeginTransactionAsync())
        {
            await ExecAsync(conn, "UPDATE items SET qty = qty + 100 WHERE id <= 5", tx);
            await ExecAsync(conn, $"INSERT INTO items VALUES ({InsertedRows + 1}, 7)", tx);
            await tx.CommitAsync();
        }
        await AssertItemsAsync(conn);
    }

    /// <summary>What <see cref="WorkloadAsync"/> leaves in <c>items</c>.</summary>
    private static async Task AssertItemsAsync(NpgsqlConnection conn)
    {
        await using var read = new NpgsqlCommand("SELECT count(*), sum(qty) FROM items", conn);
        await using var reader = await read.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal(InsertedRows + 1L, reader.GetInt64(0));
        Assert.Equal((InsertedRows * (InsertedRows + 1) / 2) + 500L + 7L, reader.GetInt64(1));
    }

    private static long Sum(JsonElement report, string field) =>
        report.GetProperty("items").EnumerateArray().Sum(i => i.GetProperty(field).GetInt64());

    private static double SumDouble(JsonElement report, string field) =>
        report.GetProperty("items").EnumerateArray().Sum(i => i.GetProperty(field).GetDouble());

    private static async Task ExecAsync(NpgsqlConnection conn, string sql, NpgsqlTransaction? tx = null)
    {
        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        await cmd.ExecuteNonQueryAsync();
    }

    /// <summary>Runs at most four at a time (the machine has two cores) and keeps the input order.</summary>
    private static async Task<List<TResult>> ParallelAsync<T, TResult>(IEnumerable<T> items, Func<T, Task<TResult>> body)
    {
        using var gate = new SemaphoreSlim(4);
        return [.. await Task.WhenAll(items.Select(async item =>
        {
            await gate.WaitAsync();
            try
            {
                return await body(item);
            }
            finally
            {
                gate.Release();
            }
        }))];
    }

    private static Task ParallelAsync<T>(IEnumerable<T> items, Func<T, Task> body) =>
        ParallelAsync(items, async item =>
        {
            await body(item);
            return 0;
        });
}
