using System.Net;
using System.Text.Json;
using Kdb.Testing.EndToEnd;
using Npgsql;

namespace Kdb.EndToEnd.Tests;

/// <summary>
/// Many tenants at once, as they would use the service: sign up, create databases through REST, work on them through
/// the proxy with their own credentials; nobody sees anybody else; usage reaches the control plane; a backup runs.
/// </summary>
[Collection(CloudCollection.Name)]
public sealed class FleetTests(EndToEndCloud cloud)
{
    private static readonly string[] Tables = ["items", "tenant_mark"];
    private const int InsertedRows = 20;

    [Fact]
    public async Task Fleet_OrgsCreateDatabasesAndWorkThroughTheProxy_IsolatedMeteredAndBackedUp()
    {
        var orgCount = CloudCollection.Soak ? 100 : 8;
        var users = await ParallelAsync(Enumerable.Range(0, orgCount), i => cloud.UserAsync("fleet" + i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        // Every other org has a second database: two databases of one org must be as isolated as two orgs.
        var wanted = users.SelectMany((u, i) => Enumerable.Range(0, 1 + (i % 2)).Select(n => (u.Token, u.OrgId, Name: "app" + n.ToString(System.Globalization.CultureInfo.InvariantCulture)))).ToList();
        var databases = await ParallelAsync(wanted, w => cloud.CreateReadyDatabaseAsync(w.Token, w.OrgId, w.Name));

        await ParallelAsync(databases, WorkloadAsync);

        var violations = await IsolationProbe.FindViolationsAsync(cloud, databases, Tables);
        Assert.True(violations.Count == 0, string.Join("\n", violations));

        // Usage: every org's work reaches the control plane through the nodes' and the proxy's reports.
        foreach (var group in databases.GroupBy(d => d.OrgId).Take(CloudCollection.Soak ? int.MaxValue : 4))
        {
            var minimumRowsWritten = group.Count() * (InsertedRows + 2L);
            var usage = await cloud.WaitForAsync($"/v1/orgs/{group.Key}/usage", group.First().Token, report =>
                Sum(report, "rowsWritten") >= minimumRowsWritten && Sum(report, "egressBytes") > 0 && Sum(report, "rowsRead") > 0);
            foreach (var item in usage.GetProperty("items").EnumerateArray())
            {
                // The documented formula (docs/controlplane: request units), rounded to 3 decimals as reported.
                var expected = Math.Round((item.GetProperty("rowsRead").GetInt64() / 100.0) + (item.GetProperty("rowsWritten").GetInt64() / 10.0)
                    + ((item.GetProperty("bytesRead").GetInt64() + item.GetProperty("bytesWritten").GetInt64()) / 1048576.0) + (item.GetProperty("cpuMs").GetInt64() / 100.0), 3);
                Assert.Equal(expected, item.GetProperty("requestUnits").GetDouble(), 3);
            }
        }

        // A backup through REST completes with a checksum.
        var source = databases[0];
        var (status, created) = await cloud.SendAsync(HttpMethod.Post, $"/v1/databases/{source.Id}/backups", source.Token, new { });
        Assert.True(status == HttpStatusCode.Accepted, created.ToString());
        var backupId = created.GetProperty("backup").GetProperty("id").GetString()!;
        var backup = await cloud.WaitForAsync($"/v1/databases/{source.Id}/backups/{backupId}", source.Token, b => b.GetProperty("status").GetString() is "completed" or "failed");
        Assert.True(backup.GetProperty("status").GetString() == "completed", backup.ToString());
        Assert.Matches("^[0-9a-f]{64}$", backup.GetProperty("sha256").GetString());
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
        await using var read = new NpgsqlCommand("SELECT count(*), sum(qty) FROM items", conn);
        await using var reader = await read.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal(InsertedRows + 1L, reader.GetInt64(0));
        Assert.Equal((InsertedRows * (InsertedRows + 1) / 2) + 500L + 7L, reader.GetInt64(1));
    }

    private static long Sum(JsonElement report, string field) =>
        report.GetProperty("items").EnumerateArray().Sum(i => i.GetProperty(field).GetInt64());

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
