using System.Buffers.Binary;
using System.Net;
using System.Text;
using Google.Protobuf;
using Kdb.Cluster;
using Kdb.Node.Admin;
using Kdb.Node.Admin.Wire;
using Kdb.Transactions;
using Npgsql;

using static Kdb.Testing.Provisioning.LocalCloud;

namespace Kdb.Provisioning.Tests;

/// <summary>Deletion with a retention window (suspend, undelete, purge) and drops on a real group.</summary>
public sealed partial class LocalCloudTests
{
    [Fact]
    public async Task DeletedDatabase_IsKeptSuspended_UndeleteBringsItBack_AndPastTheWindowItIsPurged()
    {
        var (token, org) = await cloud.UserAsync("retention");
        var (id, password) = await cloud.CreateReadyDatabaseAsync(token, org, "kept");
        var port = await cloud.ReplicaPgPortAsync(id);
        await using (var conn = await OpenAsync(port, id, password))
        {
            await Exec(conn, "CREATE TABLE t (id int PRIMARY KEY, v text)");
            await Exec(conn, "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 300) g");
        }
        var backupId = await BackupAsync(token, id);
        var (stranger, _) = await cloud.UserAsync("retention-stranger");

        await DeleteAsync(token, id);
        Assert.Equal(HttpStatusCode.NotFound, (await cloud.SendAsync(HttpMethod.Get, $"/v1/databases/{id}", token)).Status);
        var (_, deleted) = await cloud.SendAsync(HttpMethod.Get, $"/v1/orgs/{org}/deleted-databases", token);
        Assert.Contains(deleted.GetProperty("items").EnumerateArray(), d => d.GetProperty("id").GetString() == id);
        // Kept on its nodes, but suspended: nothing is served while it is deleted.
        await EventuallyAsync(async () =>
        {
            var e = await Assert.ThrowsAsync<PostgresException>(() => OpenAsync(port, id, password));
            Assert.Equal("53400", e.SqlState);
        });
        // Another org cannot bring it back, nor tell it exists.
        var (hidden, problem) = await cloud.SendAsync(HttpMethod.Post, $"/v1/databases/{id}/undelete", stranger);
        Assert.Equal(HttpStatusCode.NotFound, hidden);
        Assert.Equal(404, problem.GetProperty("status").GetInt32());

        var (status, undelete) = await cloud.SendAsync(HttpMethod.Post, $"/v1/databases/{id}/undelete", token);
        Assert.True(status == HttpStatusCode.Accepted, undelete.ToString());
        var operation = undelete.GetProperty("operation").GetProperty("id").GetString()!;
        var done = await cloud.WaitForAsync($"/v1/operations/{operation}", token, o => o.GetProperty("status").GetString() != "running");
        Assert.True(done.GetProperty("status").GetString() == "succeeded", done.ToString());
        await cloud.WaitForAsync($"/v1/databases/{id}", token, d => d.GetProperty("status").GetString() == "ready");
        // The same password, the same rows, and writes work again.
        await EventuallyAsync(async () => Assert.Equal(300L, await ScalarAsync(port, id, password, "SELECT count(*) FROM t")));
        await using (var conn = await OpenAsync(port, id, password))
        {
            await Exec(conn, "INSERT INTO t VALUES (301, 'after')");
        }

        // Deleted again, and its window over: data, record and backups go.
        await DeleteAsync(token, id);
        await using (var control = new NpgsqlConnection(cloud.ControlPlaneDatabase))
        {
            await control.OpenAsync();
            await using var backdate = new NpgsqlCommand("""UPDATE operations SET "FinishedAt" = "FinishedAt" - interval '8 days' WHERE "ResourceId" = @id AND "Kind" = 'database.delete'""", control);
            backdate.Parameters.AddWithValue("id", id);
            Assert.Equal(2, await backdate.ExecuteNonQueryAsync());
        }
        var provisioning = await cloud.ServiceTokenAsync("kdb-provisioning", LocalCloud.ProvisioningSecret);
        await EventuallyAsync(async () =>
            Assert.Equal(HttpStatusCode.NotFound, (await cloud.SendAsync(HttpMethod.Get, $"/internal/v1/placements/{id}?includeDeleted=true", provisioning)).Status), seconds: 90);
        Assert.Equal(0, await CopiesAsync(id));
        var gone = await Assert.ThrowsAsync<PostgresException>(() => OpenAsync(port, id, password));
        Assert.Equal("28P01", gone.SqlState);
        await EventuallyAsync(() =>
        {
            Assert.False(File.Exists(Path.Combine(cloud.ObjectStorePath, "backups", backupId, "manifest.json")));
            return Task.CompletedTask;
        });
        var (late, _) = await cloud.SendAsync(HttpMethod.Post, $"/v1/databases/{id}/undelete", token);
        Assert.Equal(HttpStatusCode.NotFound, late);
    }

    [Fact]
    public async Task DropThenCreateAgainWithTheSameId_ACommitFromBeforeTheDrop_FindsNoDatabase()
    {
        var (token, org) = await cloud.UserAsync("redrop");
        var (id, _) = await cloud.CreateReadyDatabaseAsync(token, org, "redrop");
        var (group, info) = await FindAsync(id);
        var admin = await ReplicaAdminAsync(group);
        var reused = "db_redrop_" + Guid.NewGuid().ToString("N")[..12];
        var oldTenant = (ulong)Random.Shared.NextInt64() | 1UL << 63;
        var newTenant = oldTenant ^ 0x5a5a_5a5a;
        await EventuallyAsync(() => admin.CreateDatabaseAsync(new CreateDatabaseRequest { GroupId = group, DatabaseId = reused, TenantId = oldTenant, Owner = info.Roles[0] }));
        Assert.Equal(ApplyStatus.Ok, (await ProposeCommitAsync(group, oldTenant, "before")).Status);

        await admin.DropDatabaseAsync(reused);
        await admin.CreateDatabaseAsync(new CreateDatabaseRequest { GroupId = group, DatabaseId = reused, TenantId = newTenant, Owner = info.Roles[0] });

        // A session opened before the drop still commits under the old tenant: no database has it any more.
        Assert.Equal(ApplyStatus.NotFound, (await ProposeCommitAsync(group, oldTenant, "after")).Status);
        Assert.Equal(ApplyStatus.Ok, (await ProposeCommitAsync(group, newTenant, "new")).Status);
        Assert.Equal(1, await ExportedRowsAsync(admin, reused));
        // The old tenant id stays reserved: it is never given to another database.
        var reuse = await Assert.ThrowsAsync<NodeAdminException>(() =>
            admin.CreateDatabaseAsync(new CreateDatabaseRequest { GroupId = group, DatabaseId = reused + "x", TenantId = oldTenant, Owner = info.Roles[0] }));
        Assert.Equal(HttpStatusCode.Conflict, reuse.Status);
        await admin.DropDatabaseAsync(reused);
    }

    private async Task DeleteAsync(string token, string databaseId)
    {
        var (status, body) = await cloud.SendAsync(HttpMethod.Delete, $"/v1/databases/{databaseId}", token);
        Assert.True(status == HttpStatusCode.Accepted, body.ToString());
        var operation = body.GetProperty("operation").GetProperty("id").GetString()!;
        var done = await cloud.WaitForAsync($"/v1/operations/{operation}", token, o => o.GetProperty("status").GetString() != "running");
        Assert.True(done.GetProperty("status").GetString() == "succeeded", done.ToString());
    }

    /// <summary>Proposes a one-row commit under <paramref name="tenant"/> on the group's leader, as a node's session would.</summary>
    private async Task<ApplyResult> ProposeCommitAsync(ulong group, ulong tenant, string value)
    {
        var key = new byte[20];
        BinaryPrimitives.WriteUInt64BigEndian(key, tenant);
        BinaryPrimitives.WriteUInt32BigEndian(key.AsSpan(8), 0x7fff_0001);
        BinaryPrimitives.WriteUInt32BigEndian(key.AsSpan(16), (uint)value.Length);
        var nodeToken = await cloud.ServiceTokenAsync("kdb-node", LocalCloud.NodeSecret);
        ApplyResult? result = null;
        await EventuallyAsync(async () =>
        {
            foreach (var node in await cloud.NodeListAsync())
            {
                var admin = new NodeAdminClient(AdminHttp, new Uri("http://" + node.GetProperty("internalEndpoint").GetString()), _ => ValueTask.FromResult(nodeToken));
                if ((await admin.StatusAsync()).Groups.FirstOrDefault(g => g.GroupId == group && g.Role == "leader") is not { } leader)
                {
                    continue;
                }
                var record = new CommitRecord(tenant, leader.AppliedIndex, [], [], [TxWrite.Put(key, Encoding.UTF8.GetBytes(value))]);
                var response = await admin.ProposeAsync(group, new ProposeRequest { Command = ByteString.CopyFrom(ShardCommand.Commit(record)) });
                result = ApplyResult.Decode(response.Result.Span);
                return;
            }
            Assert.Fail($"no leader of group {group}");
        });
        return result!.Value;
    }
}
