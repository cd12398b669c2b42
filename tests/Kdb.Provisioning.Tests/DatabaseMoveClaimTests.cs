using System.Globalization;
using System.Net;
using Kdb.Contracts.V1;
using Kdb.Provisioning.Moves;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Kdb.Provisioning.Tests;

/// <summary>
/// Move claims, rate limits and automatic targets against the local cloud's real control plane, PostgreSQL and nodes. The
/// provisioning processes are move consumers hosted in the test process (each its own in-memory bus, mover and claims), on
/// operations written into the control plane's operations table without an outbox entry and with their re-send put off, so
/// the control plane's embedded provisioning never takes them; the operator's endpoint drives the embedded one.
/// </summary>
public sealed partial class LocalCloudTests
{
    [Fact]
    public async Task MoveRequest_GivenToTwoProvisioningProcesses_CopiesOnce_AndASilentHolderIsTakenOver()
    {
        var (token, org) = await cloud.UserAsync("move-claims");
        // Databases first: placement puts a new database on the least-filled group, which the new target would be.
        var (id, password) = await DatabaseWithRowsAsync(token, org, "claimed", 200);
        var (other, otherPassword) = await DatabaseWithRowsAsync(token, org, "taken-over", 150);
        var target = await NewGroupAsync();
        await using var first = await ProvisioningHostAsync();
        await using var second = await ProvisioningHostAsync();

        // The same request to both processes at once: one claims and moves, the other acknowledges without copying.
        var (source, _) = await FindAsync(id);
        var request = new DatabaseMoveRequested(await MoveOperationAsync(org, id, source, target), DateTimeOffset.UtcNow, id, source, target, QuotaState.Ok);
        await Task.WhenAll(first.Harness.Bus.Publish(request), second.Harness.Bus.Publish(request));
        await first.WaitConsumedAsync<DatabaseMoveRequested>(1);
        await second.WaitConsumedAsync<DatabaseMoveRequested>(1);
        var moved = (await WaitMovedAsync(first, second, 1)).Single();
        Assert.Equal((request.OperationId, target, DatabaseMover.NamesFor(request.OperationId).Tenant), (moved.OperationId, moved.GroupId, moved.TenantId));
        Assert.Equal(1, Mover(first).PeakConcurrentMoves + Mover(second).PeakConcurrentMoves);
        Assert.Empty(first.Harness.Published.Select<DatabaseMoveFailed>(ProvisioningHost.Now));
        Assert.Empty(second.Harness.Published.Select<DatabaseMoveFailed>(ProvisioningHost.Now));
        Assert.Equal(1, await CopiesAsync(id));
        Assert.Equal(0, await CopiesAsync(DatabaseMover.NamesFor(request.OperationId).StagedId));
        Assert.Equal(200L, await ScalarAsync(await cloud.ReplicaPgPortAsync(id), id, password, "SELECT count(*) FROM t"));
        // As the control plane does on DatabaseMoved (which goes to the test's buses here): the move's claim and groups end.
        await FinishOperationAsync(request.OperationId);

        // A claim held by an attempt that is still heartbeating: refused, nothing copied. Once that attempt has been silent
        // past the lease (a crashed worker), the re-sent request takes the move over and completes it.
        var (otherSource, _) = await FindAsync(other);
        var stalled = new DatabaseMoveRequested(await MoveOperationAsync(org, other, otherSource, target), DateTimeOffset.UtcNow, other, otherSource, target, QuotaState.Ok);
        await SetClaimAsync(stalled.OperationId, "crashed-worker", DateTimeOffset.UtcNow);
        await using var third = await ProvisioningHostAsync();
        await third.Harness.Bus.Publish(stalled);
        await third.WaitConsumedAsync<DatabaseMoveRequested>(1);
        Assert.Equal(0, Mover(third).PeakConcurrentMoves);
        Assert.Empty(third.Harness.Published.Select<DatabaseMoved>(ProvisioningHost.Now));
        Assert.Equal((otherSource, 1), ((await FindAsync(other)).Group, await CopiesAsync(other)));

        await SetClaimAsync(stalled.OperationId, "crashed-worker", DateTimeOffset.UtcNow.AddMinutes(-5));
        await third.Harness.Bus.Publish(stalled);
        var takenOver = Assert.Single(await third.WaitPublishedAsync<DatabaseMoved>(1));
        Assert.Equal((stalled.OperationId, target), (takenOver.OperationId, takenOver.GroupId));
        Assert.Equal((target, 1), ((await FindAsync(other)).Group, await CopiesAsync(other)));
        Assert.Equal(150L, await ScalarAsync(await cloud.ReplicaPgPortAsync(other), other, otherPassword, "SELECT count(*) FROM t"));
        Assert.NotEqual("crashed-worker", await ClaimHolderAsync(stalled.OperationId));
        await FinishOperationAsync(stalled.OperationId);
    }

    [Fact]
    public async Task MoveRequests_BeyondTheProcessLimit_WaitAndAllComplete()
    {
        var (token, org) = await cloud.UserAsync("move-limit");
        var databases = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            databases.Add((await DatabaseWithRowsAsync(token, org, "limited-" + i.ToString(CultureInfo.InvariantCulture), 100)).Id);
        }
        var target = await NewGroupAsync();
        await using var host = await ProvisioningHostAsync(new Dictionary<string, string?> { ["Provisioning:MaxConcurrentMoves"] = "1" });
        var requests = new List<DatabaseMoveRequested>();
        foreach (var id in databases)
        {
            var (source, _) = await FindAsync(id);
            // Operations the control plane does not run: no claims, so only this process's limit orders them.
            requests.Add(new DatabaseMoveRequested("op_limit_" + Guid.NewGuid().ToString("N")[..16], DateTimeOffset.UtcNow, id, source, target, QuotaState.Ok));
        }
        await Task.WhenAll(requests.Select(r => host.Harness.Bus.Publish(r)));
        var moved = await host.WaitPublishedAsync<DatabaseMoved>(3);
        Assert.Equal(requests.Select(r => r.OperationId).Order(), moved.Select(m => m.OperationId).Order());
        Assert.Equal(1, Mover(host).PeakConcurrentMoves);
        foreach (var r in requests)
        {
            Assert.Equal((target, 1), ((await FindAsync(r.DatabaseId)).Group, await CopiesAsync(r.DatabaseId)));
        }
    }

    [Fact]
    public async Task Move_WithoutATarget_GoesToAnotherGroupThatPlacementPicks()
    {
        var (token, org) = await cloud.UserAsync("move-anywhere");
        var (id, password) = await DatabaseWithRowsAsync(token, org, "anywhere", 250);
        var (source, before) = await FindAsync(id);
        var operatorToken = await cloud.ServiceTokenAsync("kdb-operator", Kdb.Testing.Provisioning.LocalCloud.OperatorSecret);
        var (status, move) = await cloud.SendAsync(HttpMethod.Post, $"/internal/v1/orgs/{org}/databases/{id}/move", operatorToken, new { });
        Assert.True(status == HttpStatusCode.Accepted, move.ToString());
        var operation = move.GetProperty("operation").GetProperty("id").GetString()!;
        var done = await cloud.WaitForAsync($"/v1/operations/{operation}", token, o => o.GetProperty("status").GetString() != "running");
        Assert.True(done.GetProperty("status").GetString() == "succeeded", done.ToString() + cloud.Logs);

        var (group, after) = await FindAsync(id);
        Assert.NotEqual(source, group);
        Assert.NotEqual(before.TenantId, after.TenantId);
        Assert.Equal(1, await CopiesAsync(id));
        var (_, view) = await cloud.SendAsync(HttpMethod.Get, $"/v1/databases/{id}", token);
        Assert.Equal(("ready", group.ToString(CultureInfo.InvariantCulture)), (view.GetProperty("status").GetString(), view.GetProperty("groupId").GetString()));
        Assert.Equal(250L, await ScalarAsync(await cloud.ReplicaPgPortAsync(id), id, password, "SELECT count(*) FROM t"));
        // The choice was recorded in the operation's request (a re-sent request names it).
        Assert.Contains($"\"TargetGroupId\":{group.ToString(CultureInfo.InvariantCulture)}", await RequestPayloadAsync(operation), StringComparison.Ordinal);
    }

    private static DatabaseMover Mover(ProvisioningHost host) => host.Services.GetRequiredService<DatabaseMover>();

    private async Task<(string Id, string Password)> DatabaseWithRowsAsync(string token, string org, string name, int rows)
    {
        var (id, password) = await cloud.CreateReadyDatabaseAsync(token, org, name);
        await using var conn = await OpenAsync(await cloud.ReplicaPgPortAsync(id), id, password);
        await Exec(conn, "CREATE TABLE t (id int PRIMARY KEY, v text)");
        await Exec(conn, $"INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, {rows}) g");
        return (id, password);
    }

    /// <summary>
    /// A running move operation in the control plane, as the operator's endpoint records it but without its outbox entry and
    /// with its re-send put off an hour: only the test's provisioning processes see its request.
    /// </summary>
    private async Task<string> MoveOperationAsync(string org, string databaseId, ulong source, ulong target)
    {
        var id = "op_" + Guid.NewGuid().ToString("N")[..26];
        var payload = System.Text.Json.JsonSerializer.Serialize(new DatabaseMoveRequested(id, DateTimeOffset.UtcNow, databaseId, source, target, QuotaState.Ok));
        await using var conn = new NpgsqlConnection(cloud.ControlPlaneDatabase);
        await conn.OpenAsync();
        await using var insert = new NpgsqlCommand("""
            INSERT INTO operations ("Id", "OrgId", "Kind", "Status", "ResourceId", "RequestType", "RequestPayload", "CreatedAt", "LastPublishedAt")
            VALUES (@id, @org, 'database.move', 'running', @db, @type, @payload, now(), now() + interval '1 hour')
            """, conn);
        insert.Parameters.AddWithValue("id", id);
        insert.Parameters.AddWithValue("org", org);
        insert.Parameters.AddWithValue("db", databaseId);
        insert.Parameters.AddWithValue("type", typeof(DatabaseMoveRequested).FullName!);
        insert.Parameters.AddWithValue("payload", payload);
        await insert.ExecuteNonQueryAsync();
        return id;
    }

    private async Task SetClaimAsync(string operationId, string attemptId, DateTimeOffset renewedAt)
    {
        await using var conn = new NpgsqlConnection(cloud.ControlPlaneDatabase);
        await conn.OpenAsync();
        await using var update = new NpgsqlCommand("""UPDATE operations SET "ClaimAttemptId" = @a, "ClaimedAt" = @at WHERE "Id" = @id""", conn);
        update.Parameters.AddWithValue("a", attemptId);
        update.Parameters.AddWithValue("at", renewedAt);
        update.Parameters.AddWithValue("id", operationId);
        Assert.Equal(1, await update.ExecuteNonQueryAsync());
    }

    private async Task FinishOperationAsync(string operationId)
    {
        await using var conn = new NpgsqlConnection(cloud.ControlPlaneDatabase);
        await conn.OpenAsync();
        await using var update = new NpgsqlCommand("""UPDATE operations SET "Status" = 'succeeded', "FinishedAt" = now() WHERE "Id" = @id""", conn);
        update.Parameters.AddWithValue("id", operationId);
        await update.ExecuteNonQueryAsync();
    }

    private async Task<string> ClaimHolderAsync(string operationId) => (string)(await OperationColumnAsync(operationId, "ClaimAttemptId"))!;

    private async Task<string> RequestPayloadAsync(string operationId) => (string)(await OperationColumnAsync(operationId, "RequestPayload"))!;

    private async Task<object?> OperationColumnAsync(string operationId, string column)
    {
        await using var conn = new NpgsqlConnection(cloud.ControlPlaneDatabase);
        await conn.OpenAsync();
        await using var select = new NpgsqlCommand($"SELECT \"{column}\" FROM operations WHERE \"Id\" = @id", conn);
        select.Parameters.AddWithValue("id", operationId);
        return await select.ExecuteScalarAsync();
    }

    /// <summary>Every DatabaseMoved the two processes published, once <paramref name="count"/> of them are there.</summary>
    private static async Task<List<DatabaseMoved>> WaitMovedAsync(ProvisioningHost a, ProvisioningHost b, int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (true)
        {
            var moved = a.Harness.Published.Select<DatabaseMoved>(ProvisioningHost.Now).Concat(b.Harness.Published.Select<DatabaseMoved>(ProvisioningHost.Now))
                .Select(p => p.Context.Message).ToList();
            if (moved.Count >= count)
            {
                return moved;
            }
            Assert.True(DateTime.UtcNow < deadline, $"{moved.Count} of {count} DatabaseMoved published");
            await Task.Delay(100);
        }
    }
}
