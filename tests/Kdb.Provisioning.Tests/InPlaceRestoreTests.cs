using System.Net;
using System.Text.Json;
using Kdb.Node.Admin;
using Kdb.Node.Admin.Wire;
using Kdb.Provisioning.Backups;
using Npgsql;

using static Kdb.Testing.Provisioning.LocalCloud;

namespace Kdb.Provisioning.Tests;

/// <summary>In-place restores (safety backup, staged copy, one swap entry) and the node's staged import, on real nodes.</summary>
public sealed partial class LocalCloudTests
{
    [Fact]
    public async Task RestoreInPlace_TakesASafetyBackup_ReplacesTheKeyspace_AndEndsOpenSessionsWith57P01()
    {
        var (token, org) = await cloud.UserAsync("inplace");
        var (id, password) = await cloud.CreateReadyDatabaseAsync(token, org, "inplace");
        var port = await cloud.ReplicaPgPortAsync(id);
        await using (var conn = await OpenAsync(port, id, password))
        {
            await Exec(conn, "CREATE TABLE orders (id int PRIMARY KEY, customer text NOT NULL, total numeric(10,2))");
            await Exec(conn, "CREATE INDEX orders_customer ON orders (customer)");
            await Exec(conn, "INSERT INTO orders SELECT g, 'customer ' || (g % 37), g * 1.25 FROM generate_series(1, 2000) g");
        }
        var expected = await QueryAsync(port, id, password);
        var backupId = await BackupAsync(token, id);
        var (before, _) = await FindAsync(id);
        // After the backup: rows deleted, a table created, a session left open.
        await using var open = await OpenAsync(port, id, password);
        await Exec(open, "DELETE FROM orders WHERE id <= 100");
        await Exec(open, "CREATE TABLE later (x int)");
        var (stranger, _) = await cloud.UserAsync("inplace-stranger");
        var (hidden, _) = await cloud.SendAsync(HttpMethod.Post, $"/v1/databases/{id}/restore", stranger, new { backupId, target = "in_place" });
        Assert.Equal(HttpStatusCode.NotFound, hidden);

        var (status, restore) = await cloud.SendAsync(HttpMethod.Post, $"/v1/databases/{id}/restore", token, new { backupId, target = "in_place" });
        Assert.True(status == HttpStatusCode.Accepted, restore.ToString());
        var operation = restore.GetProperty("operation").GetProperty("id").GetString()!;
        var done = await cloud.WaitForAsync($"/v1/operations/{operation}", token, o => o.GetProperty("status").GetString() != "running");
        Assert.True(done.GetProperty("status").GetString() == "succeeded", done.ToString());
        await cloud.WaitForAsync($"/v1/databases/{id}", token, d => d.GetProperty("status").GetString() == "ready");

        // The same name and password now hold the backup's data; what came after it is gone.
        Assert.Equal(expected, await QueryAsync(port, id, password));
        var missing = await Assert.ThrowsAsync<PostgresException>(() => ScalarAsync(port, id, password, "SELECT count(*) FROM later"));
        Assert.Equal("42P01", missing.SqlState);
        // A session opened before the swap reads a keyspace that is gone: it ends, and the client reconnects.
        var ended = await Assert.ThrowsAsync<PostgresException>(() => Exec(open, "SELECT count(*) FROM orders"));
        Assert.Equal("57P01", ended.SqlState);
        // One entry switched the database onto the staged copy's tenant, and the staged record is gone.
        var names = InPlaceRestore.NamesFor(operation);
        var (group, after) = await FindAsync(id);
        Assert.Equal(before, group);
        Assert.Equal(names.Tenant, after.TenantId);
        Assert.Equal(0, await CopiesAsync(names.ScratchId));
        // The control plane's record follows (RestoreCompleted.TenantId), as the proxies' route shows.
        var (_, route) = await cloud.SendAsync(HttpMethod.Get, $"/internal/v1/routes/{id}", await cloud.ServiceTokenAsync("kdb-proxy", LocalCloud.ProxySecret));
        Assert.Equal(names.Tenant.ToString(System.Globalization.CultureInfo.InvariantCulture), route.GetProperty("tenantId").GetString());
        // The data as it was before the restore is kept in the safety backup (1,900 rows, no index entries beyond theirs),
        // which the control plane lists as a backup of kind safety.
        var safetyView = default(JsonElement);
        await EventuallyAsync(async () =>
        {
            var (_, list) = await cloud.SendAsync(HttpMethod.Get, $"/v1/databases/{id}/backups", token);
            safetyView = Assert.Single(list.GetProperty("items").EnumerateArray(), b => b.GetProperty("kind").GetString() == "safety");
        });
        Assert.Equal("completed", safetyView.GetProperty("status").GetString());
        var safetyId = safetyView.GetProperty("id").GetString()!;
        Assert.NotEqual(names.SafetyBackupId, safetyId);
        var safety = JsonDocument.Parse((await File.ReadAllBytesAsync(Path.Combine(cloud.ObjectStorePath, "backups", safetyId, "manifest.json")))[48..]).RootElement;
        Assert.Equal(id, safety.GetProperty("databaseId").GetString());
        var backup = JsonDocument.Parse((await File.ReadAllBytesAsync(Path.Combine(cloud.ObjectStorePath, "backups", backupId, "manifest.json")))[48..]).RootElement;
        Assert.True(safety.GetProperty("rows").GetInt64() < backup.GetProperty("rows").GetInt64(), safety.ToString());
        Assert.Equal(safety.GetProperty("storedSha256").GetString(), safetyView.GetProperty("sha256").GetString());
        // Writes go on as usual on the restored database.
        await using (var conn = await OpenAsync(port, id, password))
        {
            await Exec(conn, "INSERT INTO orders VALUES (5000, 'customer 5', 1.00)");
        }
        Assert.Equal(2001L, await ScalarAsync(port, id, password, "SELECT count(*) FROM orders"));

        // The safety backup restores through the API like any other: the pre-restore data, in a new database.
        var (restoring, fromSafety) = await cloud.SendAsync(HttpMethod.Post, $"/v1/databases/{id}/restore", token, new { backupId = safetyId, target = "new", name = "before-restore" });
        Assert.True(restoring == HttpStatusCode.Accepted, fromSafety.ToString());
        var safetyOperation = fromSafety.GetProperty("operation").GetProperty("id").GetString()!;
        var safetyDone = await cloud.WaitForAsync($"/v1/operations/{safetyOperation}", token, o => o.GetProperty("status").GetString() != "running");
        Assert.True(safetyDone.GetProperty("status").GetString() == "succeeded", safetyDone.ToString());
        var copy = fromSafety.GetProperty("database").GetProperty("id").GetString()!;
        await cloud.WaitForAsync($"/v1/databases/{copy}", token, d => d.GetProperty("status").GetString() == "ready");
        Assert.Equal(1900L, await ScalarAsync(await cloud.ReplicaPgPortAsync(copy), copy, password, "SELECT count(*) FROM orders"));
    }

    [Fact]
    public async Task NodeImportAndSwap_RefuseBadInput_AndLeaveNothingStaged()
    {
        var (token, org) = await cloud.UserAsync("import-input");
        var (id, password) = await cloud.CreateReadyDatabaseAsync(token, org, "import");
        var port = await cloud.ReplicaPgPortAsync(id);
        await using (var conn = await OpenAsync(port, id, password))
        {
            await Exec(conn, "CREATE TABLE t (id int PRIMARY KEY, v text)");
            // Over 4 MiB: the node gathers the export's 1 MiB chunks into more than one staged record and Raft entry.
            await Exec(conn, "INSERT INTO t SELECT g, repeat('v', 200) FROM generate_series(1, 24000) g");
        }
        var (group, info) = await FindAsync(id);
        var admin = await ReplicaAdminAsync(group);
        var export = new MemoryStream();
        await admin.ExportAsync(id, export);
        var stream = export.ToArray();
        Assert.True(stream.Length > 5 << 20, "several export chunks expected");
        // The totals-only export: the same scan's closing chunk, no pairs; not importable as a backup.
        var totals = new MemoryStream();
        await admin.ExportTotalsAsync(id, totals);
        Assert.True(totals.Length < 256, $"{totals.Length} bytes of totals");
        var full = await BackupCodec.ReadExportAsync(new MemoryStream(stream), _ => Task.CompletedTask, CancellationToken.None);
        totals.Position = 0;
        var summary = await BackupCodec.ReadExportAsync(totals, _ => Task.CompletedTask, CancellationToken.None);
        Assert.Equal((full.Rows, full.TotalCrc32C), (summary.Rows, summary.TotalCrc32C));
        Assert.True(summary.RaftIndex >= full.RaftIndex, "the totals come from a snapshot at least as new");
        Assert.True(summary.Rows > 24000, $"{summary.Rows} pairs: the rows and the table's catalog entries");
        var scratch = "db_import_" + Guid.NewGuid().ToString("N")[..12];
        var create = new CreateDatabaseRequest { GroupId = group, DatabaseId = scratch, TenantId = (ulong)Random.Shared.NextInt64() | 1UL << 63, Owner = info.Roles[0] };
        await EventuallyAsync(() => admin.CreateDatabaseAsync(create));

        var random = new byte[4096];
        Random.Shared.NextBytes(random);
        foreach (var bad in new[] { random, stream[..(stream.Length / 2)], stream[..^3], Array.Empty<byte>(), totals.ToArray() })
        {
            var refused = await Assert.ThrowsAsync<NodeAdminException>(() => admin.ImportAsync(scratch, new MemoryStream(bad)));
            Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.Status);
        }
        var flipped = (byte[])stream.Clone();
        flipped[stream.Length / 3] ^= 0x40;
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await Assert.ThrowsAsync<NodeAdminException>(() => admin.ImportAsync(scratch, new MemoryStream(flipped)))).Status);
        Assert.Equal(0, await ExportedRowsAsync(admin, scratch));

        // The whole stream imports (staged on disk, proposed several entries at a time), and equals its source.
        await admin.ImportAsync(scratch, new MemoryStream(stream));
        Assert.Equal(await ExportedRowsAsync(admin, id), await ExportedRowsAsync(admin, scratch));
        var copyTotals = new MemoryStream();
        await admin.ExportTotalsAsync(scratch, copyTotals);
        copyTotals.Position = 0;
        var copy = await BackupCodec.ReadExportAsync(copyTotals, _ => Task.CompletedTask, CancellationToken.None);
        Assert.Equal((full.Rows, full.TotalCrc32C), (copy.Rows, copy.TotalCrc32C));
        var again = await Assert.ThrowsAsync<NodeAdminException>(() => admin.ImportAsync(scratch, new MemoryStream(stream)));
        Assert.Equal(HttpStatusCode.Conflict, again.Status);
        foreach (var node in cloud.Nodes)
        {
            var staging = Path.Combine(node.DataDirectory, "import-staging");
            Assert.True(!Directory.Exists(staging) || Directory.GetFiles(staging).Length == 0, "a staging file was left on " + node.NodeId);
        }

        var noStaged = await Assert.ThrowsAsync<NodeAdminException>(() => admin.SwapDatabaseAsync(id, "db_no_such_thing"));
        Assert.Equal(HttpStatusCode.NotFound, noStaged.Status);
        var self = await Assert.ThrowsAsync<NodeAdminException>(() => admin.SwapDatabaseAsync(scratch, scratch));
        Assert.Equal(HttpStatusCode.BadRequest, self.Status);
        var badId = await Assert.ThrowsAsync<NodeAdminException>(() => admin.SwapDatabaseAsync(id, "Not A Database"));
        Assert.Equal(HttpStatusCode.BadRequest, badId.Status);
        Assert.Equal(24000L, await ScalarAsync(port, id, password, "SELECT count(*) FROM t"));
        await admin.DropDatabaseAsync(scratch);
    }

    /// <summary>A node holding a replica of the group.</summary>
    private async Task<NodeAdminClient> ReplicaAdminAsync(ulong group)
    {
        foreach (var admin in await AdminsAsync())
        {
            if ((await admin.StatusAsync()).Groups.Any(g => g.GroupId == group))
            {
                return admin;
            }
        }
        throw new InvalidOperationException($"no node holds group {group}");
    }

    private static async Task<long> ExportedRowsAsync(NodeAdminClient admin, string databaseId)
    {
        var export = new MemoryStream();
        await admin.ExportAsync(databaseId, export);
        export.Position = 0;
        return (await BackupCodec.ReadExportAsync(export, _ => Task.CompletedTask, CancellationToken.None)).Rows;
    }
}
