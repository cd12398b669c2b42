using System.Net;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Kdb.Node.Admin;
using Kdb.Node.Admin.Wire;
using Kdb.Provisioning.Moves;
using Npgsql;

using static Kdb.Testing.Provisioning.LocalCloud;

namespace Kdb.Provisioning.Tests;

/// <summary>Moving a database between shard groups that share their nodes (the normal case), on the real local cloud.</summary>
public sealed partial class LocalCloudTests
{
    [Fact]
    public async Task Move_CopiesRowsRolesAndPassword_FlipsTheRoute_DropsTheSource_AndLosesNoAcknowledgedWrite()
    {
        var (token, org) = await cloud.UserAsync("move");
        var (id, password) = await cloud.CreateReadyDatabaseAsync(token, org, "moving");
        var port = await cloud.ReplicaPgPortAsync(id);
        await using (var conn = await OpenAsync(port, id, password))
        {
            await Exec(conn, "CREATE TABLE orders (id int PRIMARY KEY, customer text NOT NULL, total numeric(10,2))");
            await Exec(conn, "CREATE INDEX orders_customer ON orders (customer)");
            await Exec(conn, "INSERT INTO orders SELECT g, 'customer ' || (g % 37), g * 1.25 FROM generate_series(1, 2000) g");
            await Exec(conn, "CREATE TABLE w (id int PRIMARY KEY)");
        }
        var (created, reader) = await cloud.SendAsync(HttpMethod.Post, $"/v1/databases/{id}/roles", token, new { name = "reader", kind = "readonly" });
        Assert.True(created == HttpStatusCode.Created, reader.ToString());
        var readerPassword = reader.GetProperty("password").GetString()!;
        await EventuallyAsync(async () => { await using var c = await OpenAsync(port, id, readerPassword, "reader"); });
        var expected = await QueryAsync(port, id, password);
        var (source, before) = await FindAsync(id);
        var target = await NewGroupAsync();
        var operatorToken = await cloud.ServiceTokenAsync("kdb-operator", OperatorSecret);

        // Operator scope only; another org's database and an unknown one are alike (404); bad bodies are RFC 7807 errors.
        var (_, otherOrg) = await cloud.UserAsync("move-stranger");
        Assert.Equal(HttpStatusCode.NotFound, (await MoveAsync(operatorToken, otherOrg, id, target)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await MoveAsync(operatorToken, org, "db_0000000000000000", target)).Status);
        var userCall = await MoveAsync(token, org, id, target);
        Assert.True(userCall.Status is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden, userCall.Status.ToString());
        var provisioningCall = await MoveAsync(await cloud.ServiceTokenAsync("kdb-provisioning", ProvisioningSecret), org, id, target);
        Assert.Equal(HttpStatusCode.Forbidden, provisioningCall.Status);
        var (badStatus, bad) = await cloud.SendAsync(HttpMethod.Post, $"/internal/v1/orgs/{org}/databases/{id}/move", operatorToken, new { targetGroupId = "not a group" });
        Assert.Equal(HttpStatusCode.BadRequest, badStatus);
        Assert.True(bad.TryGetProperty("errors", out var errors) && errors.TryGetProperty("targetGroupId", out _), bad.ToString());
        var (unknownField, _) = await cloud.SendAsync(HttpMethod.Post, $"/internal/v1/orgs/{org}/databases/{id}/move", operatorToken, new { targetGroup = "1" });
        Assert.Equal(HttpStatusCode.BadRequest, unknownField);
        var same = await MoveAsync(operatorToken, org, id, source);
        Assert.Equal(HttpStatusCode.Conflict, same.Status);

        // A writer keeps inserting while the database moves. The copy runs while writes go on (its catch-up rounds bring
        // them over); only the last round is paused: writes then get 25006 (reads go on). Sessions on the old copy end with
        // 57P01 and reconnect with the same connection string; every acknowledged row must survive.
        using var stop = new CancellationTokenSource();
        var progress = new StrongBox<int>();
        var writer = Task.Run(() => WriteUntilAsync(port, id, password, stop.Token, progress));
        await Task.Delay(200);
        var (status, move) = await MoveAsync(operatorToken, org, id, target);
        var acknowledgedAtRequest = Volatile.Read(ref progress.Value);
        Assert.True(status == HttpStatusCode.Accepted, move.ToString());
        Assert.Equal("moving", move.GetProperty("database").GetProperty("status").GetString());
        var operation = move.GetProperty("operation").GetProperty("id").GetString()!;
        Assert.Equal(HttpStatusCode.Conflict, (await MoveAsync(operatorToken, org, id, target)).Status);
        var done = await cloud.WaitForAsync($"/v1/operations/{operation}", token, o => o.GetProperty("status").GetString() != "running");
        Assert.True(done.GetProperty("status").GetString() == "succeeded", done.ToString());
        Assert.True(Volatile.Read(ref progress.Value) > acknowledgedAtRequest, "no write was acknowledged while the database moved");
        await Task.Delay(300);
        await stop.CancelAsync();
        var (acknowledged, sqlStates, readsWhilePaused) = await writer;

        // The pause is short (whether a write lands in it is timing; a read after a 25006 may meet the session's end): the
        // read-only state itself (25006 for writes, reads going on) is what quota tests check.
        Assert.InRange(readsWhilePaused, 0, sqlStates.Count(s => s == "25006"));
        Assert.All(sqlStates, s => Assert.Contains(s, new[] { "25006", "57P01", "3D000", "08000" }));
        var names = DatabaseMover.NamesFor(operation);
        var (group, after) = await FindAsync(id);
        Assert.Equal(target, group);
        Assert.Equal(names.Tenant, after.TenantId);
        Assert.Equal((Node.Admin.Wire.DatabaseState.Active, false), (after.State, after.WritesPaused));
        Assert.Equal(before.Roles.Select(r => r.Name).Order(), after.Roles.Select(r => r.Name).Order());
        Assert.Equal(1, await CopiesAsync(id));
        Assert.Equal(0, await CopiesAsync(names.StagedId));
        var placement = await cloud.PlacementAsync(id);
        Assert.Equal(target.ToString(System.Globalization.CultureInfo.InvariantCulture), placement.GetProperty("groupId").GetString());
        var (_, view) = await cloud.SendAsync(HttpMethod.Get, $"/v1/databases/{id}", token);
        Assert.Equal("ready", view.GetProperty("status").GetString());
        var (_, route) = await cloud.SendAsync(HttpMethod.Get, $"/internal/v1/routes/{id}", await cloud.ServiceTokenAsync("kdb-proxy", ProxySecret));
        Assert.Equal(names.Tenant.ToString(System.Globalization.CultureInfo.InvariantCulture), route.GetProperty("tenantId").GetString());

        // Same connection string, through a node of the new group: the same rows (the index too), every acknowledged write,
        // the moved role's password, and writes work again.
        var newPort = await cloud.ReplicaPgPortAsync(id);
        Assert.Equal(expected, await QueryAsync(newPort, id, password));
        Assert.Equal(54L, await ScalarAsync(newPort, id, password, "SELECT count(*) FROM orders WHERE customer = 'customer 5'"));
        await using (var conn = await OpenAsync(newPort, id, password))
        {
            var present = new HashSet<int>();
            await using (var cmd = new NpgsqlCommand("SELECT id FROM w", conn))
            await using (var rows = await cmd.ExecuteReaderAsync())
            {
                while (await rows.ReadAsync())
                {
                    present.Add(rows.GetInt32(0));
                }
            }
            Assert.True(acknowledged.Count > 0);
            Assert.All(acknowledged, a => Assert.Contains(a, present));
            await Exec(conn, "INSERT INTO orders VALUES (9001, 'after the move', 1.00)");
        }
        await using (var asReader = await OpenAsync(newPort, id, readerPassword, "reader"))
        await using (var count = new NpgsqlCommand("SELECT count(*) FROM orders", asReader))
        {
            Assert.Equal(2001L, await count.ExecuteScalarAsync());
        }
        var denied = await Assert.ThrowsAsync<PostgresException>(() => OpenAsync(newPort, id, "wrong password"));
        Assert.Equal("28P01", denied.SqlState);
        // The old group holds none of it: no record, and its tenant range is empty.
        foreach (var admin in await AdminsAsync())
        {
            if ((await admin.StatusAsync()).Groups.Any(g => g.GroupId == source))
            {
                Assert.DoesNotContain((await admin.DatabasesAsync(source)).Databases, d => d.DatabaseId == id || d.TenantId == before.TenantId);
            }
        }
        var sourceAdmin = await ReplicaAdminAsync(source);
        var stale = await Assert.ThrowsAsync<NodeAdminException>(() => sourceAdmin.DropDatabaseOnGroupAsync(id, source));
        Assert.Equal(HttpStatusCode.NotFound, stale.Status);
    }

    [Fact]
    public async Task Move_ToAnUnknownOrLeaderlessGroup_Fails_AndLeavesTheDatabaseOnItsSource_Writable()
    {
        var (token, org) = await cloud.UserAsync("move-fail");
        var (id, password) = await cloud.CreateReadyDatabaseAsync(token, org, "staying");
        var port = await cloud.ReplicaPgPortAsync(id);
        await using (var conn = await OpenAsync(port, id, password))
        {
            await Exec(conn, "CREATE TABLE t (id int PRIMARY KEY, v text)");
            await Exec(conn, "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 500) g");
            await Exec(conn, "CREATE TABLE w (id int PRIMARY KEY)");
        }
        var (source, before) = await FindAsync(id);
        var operatorToken = await cloud.ServiceTokenAsync("kdb-operator", OperatorSecret);

        // No node hosts the group: refused before anything is paused.
        var unknown = (ulong)Random.Shared.NextInt64(1, long.MaxValue);
        var failed = await MoveToFailureAsync(operatorToken, token, org, id, unknown);
        Assert.Contains("unknown", failed.GetProperty("error").GetString());

        // A group one node hosts whose other members do not exist never elects a leader: the move waits for the target
        // (MoveTargetLeaderTimeout, 10 s) before it pauses anything, and gives up. A writer meanwhile has every write
        // acknowledged, and loses none.
        var node = cloud.Nodes[0];
        var leaderless = (ulong)Random.Shared.NextInt64(1, long.MaxValue);
        var request = new CreateGroupRequest { GroupId = leaderless };
        request.Members.Add(new Member { NodeId = node.NodeId, InternalUrl = node.InternalUrl });
        request.Members.Add(new Member { NodeId = "node-missing-1", InternalUrl = "http://127.0.0.1:1" });
        request.Members.Add(new Member { NodeId = "node-missing-2", InternalUrl = "http://127.0.0.1:2" });
        var admin = (await AdminsAsync()).First(a => a.InternalUrl.Port == new Uri(node.InternalUrl).Port);
        await admin.CreateGroupAsync(request);
        using var stop = new CancellationTokenSource();
        var writer = Task.Run(() => WriteUntilAsync(port, id, password, stop.Token));
        try
        {
            failed = await MoveToFailureAsync(operatorToken, token, org, id, leaderless);
            Assert.Contains("no leader", failed.GetProperty("error").GetString());
        }
        finally
        {
            await stop.CancelAsync();
            await admin.RemoveGroupAsync(leaderless);
        }
        var (acknowledged, sqlStates, _) = await writer;
        Assert.Empty(sqlStates);
        Assert.NotEmpty(acknowledged);
        Assert.Equal((long)acknowledged.Count, await ScalarAsync(port, id, password, "SELECT count(*) FROM w"));

        var (group, after) = await FindAsync(id);
        Assert.Equal(source, group);
        Assert.Equal(before.TenantId, after.TenantId);
        Assert.Equal((Node.Admin.Wire.DatabaseState.Active, false), (after.State, after.WritesPaused));
        Assert.Equal(1, await CopiesAsync(id));
        Assert.Equal(source.ToString(System.Globalization.CultureInfo.InvariantCulture), (await cloud.PlacementAsync(id)).GetProperty("groupId").GetString());
        await using (var conn = await OpenAsync(port, id, password))
        {
            await Exec(conn, "INSERT INTO t VALUES (501, 'after the failed moves')");
        }
        Assert.Equal(501L, await ScalarAsync(port, id, password, "SELECT count(*) FROM t"));
    }

    [Fact]
    public async Task NodeAdoptAndGroupScopedCalls_RefuseBadInput()
    {
        var (token, org) = await cloud.UserAsync("adopt-input");
        var (id, _) = await cloud.CreateReadyDatabaseAsync(token, org, "adopt");
        var (group, info) = await FindAsync(id);
        var admin = await ReplicaAdminAsync(group);
        async Task<HttpStatusCode> RefusedAsync(Func<Task> call) => (await Assert.ThrowsAsync<NodeAdminException>(call)).Status;

        Assert.Equal(HttpStatusCode.NotFound, await RefusedAsync(() => admin.AdoptDatabaseAsync(id, "db_no_such_thing", Node.Admin.Wire.DatabaseState.Active)));
        Assert.Equal(HttpStatusCode.BadRequest, await RefusedAsync(() => admin.AdoptDatabaseAsync(id, id, Node.Admin.Wire.DatabaseState.Active)));
        Assert.Equal(HttpStatusCode.BadRequest, await RefusedAsync(() => admin.AdoptDatabaseAsync("Not An Id", id, Node.Admin.Wire.DatabaseState.Active)));
        Assert.Equal(HttpStatusCode.BadRequest, await RefusedAsync(() => admin.AdoptDatabaseAsync(id, "Not An Id", Node.Admin.Wire.DatabaseState.Active)));
        // A staged copy cannot take an id its own group already holds.
        var scratch = "db_adopt_" + Guid.NewGuid().ToString("N")[..12];
        var create = new CreateDatabaseRequest { GroupId = group, DatabaseId = scratch, TenantId = (ulong)Random.Shared.NextInt64() | 1UL << 63, Owner = info.Roles[0] };
        await EventuallyAsync(() => admin.CreateDatabaseAsync(create));
        Assert.Equal(HttpStatusCode.Conflict, await RefusedAsync(() => admin.AdoptDatabaseAsync(id, scratch, Node.Admin.Wire.DatabaseState.Active)));
        Assert.Equal(HttpStatusCode.BadRequest, await RefusedAsync(() => admin.AdoptDatabaseAsync(id + "x", scratch, (Node.Admin.Wire.DatabaseState)7)));
        // Group-scoped calls: a group that does not host the id is 404, a malformed group 400.
        Assert.Equal(HttpStatusCode.NotFound, await RefusedAsync(() => admin.DropDatabaseOnGroupAsync(id, group ^ 1)));
        Assert.Equal(HttpStatusCode.BadRequest, await RefusedAsync(() => admin.SetStateOnGroupAsync(id, 0, Node.Admin.Wire.DatabaseState.ReadOnly)));
        await admin.DropDatabaseOnGroupAsync(scratch, group);
        Assert.Equal(0, await CopiesAsync(scratch));
        Assert.Equal(info.TenantId, (await FindAsync(id)).Info.TenantId);
    }

    [Fact]
    public async Task WritesPause_StaysApartFromTheQuotaState_AndSaysWhy()
    {
        var (token, org) = await cloud.UserAsync("pause");
        var (id, password) = await cloud.CreateReadyDatabaseAsync(token, org, "paused");
        var port = await cloud.ReplicaPgPortAsync(id);
        await using (var conn = await OpenAsync(port, id, password))
        {
            await Exec(conn, "CREATE TABLE t (id int PRIMARY KEY)");
            await Exec(conn, "INSERT INTO t VALUES (1)");
        }
        var (group, _) = await FindAsync(id);
        var admin = await ReplicaAdminAsync(group);
        async Task<PostgresException> RefusedWriteAsync(int value) => await Assert.ThrowsAsync<PostgresException>(async () =>
        {
            await using var conn = await OpenAsync(port, id, password);
            await Exec(conn, $"INSERT INTO t VALUES ({value})");
        });

        // Paused (a move's last round): writes get 25006 saying why, reads go on, the status shows the flag.
        await admin.SetWritesPausedOnGroupAsync(id, group, true);
        Assert.True((await FindAsync(id)).Info.WritesPaused);
        await EventuallyAsync(async () => Assert.Contains("moves", (await RefusedWriteAsync(2)).MessageText, StringComparison.Ordinal));
        Assert.Equal("25006", (await RefusedWriteAsync(2)).SqlState);
        Assert.Equal(1L, await ScalarAsync(port, id, password, "SELECT count(*) FROM t"));

        // A quota change meanwhile (read-only, then back to ok) sets the state but does not lift the pause.
        await admin.SetStateOnGroupAsync(id, group, Node.Admin.Wire.DatabaseState.ReadOnly);
        await admin.SetStateOnGroupAsync(id, group, Node.Admin.Wire.DatabaseState.Active);
        var (_, info) = await FindAsync(id);
        Assert.Equal((Node.Admin.Wire.DatabaseState.Active, true), (info.State, info.WritesPaused));
        Assert.Equal("25006", (await RefusedWriteAsync(3)).SqlState);

        // The pause lifted leaves a quota state set meanwhile in force, with the quota's own message.
        await admin.SetStateOnGroupAsync(id, group, Node.Admin.Wire.DatabaseState.ReadOnly);
        await admin.SetWritesPausedOnGroupAsync(id, group, false);
        (_, info) = await FindAsync(id);
        Assert.Equal((Node.Admin.Wire.DatabaseState.ReadOnly, false), (info.State, info.WritesPaused));
        Assert.Contains("quota", (await RefusedWriteAsync(4)).MessageText, StringComparison.Ordinal);
        await admin.SetStateOnGroupAsync(id, group, Node.Admin.Wire.DatabaseState.Active);
        await EventuallyAsync(async () =>
        {
            await using var conn = await OpenAsync(port, id, password);
            await Exec(conn, "INSERT INTO t VALUES (5)");
        });
        Assert.Equal(2L, await ScalarAsync(port, id, password, "SELECT count(*) FROM t"));

        // Bad input: a group that does not host the id is 404, a malformed group 400.
        Assert.Equal(HttpStatusCode.NotFound, (await Assert.ThrowsAsync<NodeAdminException>(() => admin.SetWritesPausedOnGroupAsync(id, group ^ 1, true))).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await Assert.ThrowsAsync<NodeAdminException>(() => admin.SetWritesPausedOnGroupAsync(id, 0, true))).Status);
        Assert.False((await FindAsync(id)).Info.WritesPaused);
    }

    private Task<(HttpStatusCode Status, JsonElement Body)> MoveAsync(string token, string org, string databaseId, ulong targetGroup) =>
        cloud.SendAsync(HttpMethod.Post, $"/internal/v1/orgs/{org}/databases/{databaseId}/move", token,
            new { targetGroupId = targetGroup.ToString(System.Globalization.CultureInfo.InvariantCulture) });

    /// <summary>Starts a move that must fail; returns the failed operation once the database is ready again.</summary>
    private async Task<JsonElement> MoveToFailureAsync(string operatorToken, string token, string org, string databaseId, ulong targetGroup)
    {
        var (status, move) = await MoveAsync(operatorToken, org, databaseId, targetGroup);
        Assert.True(status == HttpStatusCode.Accepted, move.ToString());
        var operation = move.GetProperty("operation").GetProperty("id").GetString()!;
        var done = await cloud.WaitForAsync($"/v1/operations/{operation}", token, o => o.GetProperty("status").GetString() != "running");
        Assert.True(done.GetProperty("status").GetString() == "failed", done.ToString());
        var (_, view) = await cloud.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}", token);
        Assert.Equal("ready", view.GetProperty("status").GetString());
        Assert.Equal(0, await CopiesAsync(DatabaseMover.NamesFor(operation).StagedId));
        return done;
    }

    /// <summary>A new three-replica group on the cloud's nodes, with a leader.</summary>
    private async Task<ulong> NewGroupAsync()
    {
        var groupId = (ulong)Random.Shared.NextInt64(1, long.MaxValue);
        var request = new CreateGroupRequest { GroupId = groupId };
        request.Members.AddRange(cloud.Nodes.Select(n => new Member { NodeId = n.NodeId, InternalUrl = n.InternalUrl }));
        var admins = await AdminsAsync();
        await Task.WhenAll(admins.Select(a => a.CreateGroupAsync(request)));
        await EventuallyAsync(async () =>
        {
            var status = await admins[0].StatusAsync();
            Assert.Contains(status.Groups, g => g.GroupId == groupId && g.LeaderNodeId.Length > 0);
        });
        return groupId;
    }

    /// <summary>Inserts increasing ids until stopped, reconnecting after an ended session; returns the acknowledged ids, the
    /// SQLSTATEs seen ("08000" for a dropped connection) and how many reads worked right after a 25006.</summary>
    private static async Task<(List<int> Acknowledged, List<string> SqlStates, int ReadsWhilePaused)> WriteUntilAsync(int port, string databaseId, string password, CancellationToken stop, StrongBox<int>? progress = null)
    {
        var acknowledged = new List<int>();
        var states = new List<string>();
        var reads = 0;
        var next = 1;
        NpgsqlConnection? conn = null;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                conn ??= await OpenAsync(port, databaseId, password);
                var id = next++;
                try
                {
                    await Exec(conn, $"INSERT INTO w VALUES ({id})");
                    acknowledged.Add(id);
                    if (progress is not null)
                    {
                        Interlocked.Increment(ref progress.Value);
                    }
                }
                catch (PostgresException e) when (e.SqlState == "25006")
                {
                    states.Add(e.SqlState);
                    await using var count = new NpgsqlCommand("SELECT count(*) FROM w", conn);
                    await count.ExecuteScalarAsync(CancellationToken.None);
                    reads++;
                }
            }
            catch (PostgresException e)
            {
                states.Add(e.SqlState);
                await DropAsync(conn);
                conn = null;
            }
            catch (Exception e) when (e is NpgsqlException or IOException)
            {
                states.Add("08000");
                await DropAsync(conn);
                conn = null;
            }
        }
        await DropAsync(conn);
        return (acknowledged, states, reads);

        static async Task DropAsync(NpgsqlConnection? c)
        {
            if (c is not null)
            {
                await c.DisposeAsync();
            }
        }
    }
}
