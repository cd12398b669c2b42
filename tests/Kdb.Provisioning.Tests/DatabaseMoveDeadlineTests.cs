using Kdb.Contracts.V1;
using Kdb.Provisioning.Moves;

namespace Kdb.Provisioning.Tests;

/// <summary>
/// The move consumer hosted in the test process (its own in-memory bus, default MoveTimeout 8 min) against the local
/// cloud's real control plane and nodes: the requests the control plane re-sends while a move runs and past its timeout.
/// </summary>
public sealed partial class LocalCloudTests
{
    [Fact]
    public async Task MoveRequest_PastItsDeadline_RollsBackBeforeTheAdopt_GoesForwardAfterIt_AndDuplicatesMoveOnce()
    {
        var (token, org) = await cloud.UserAsync("move-deadline");
        var (id, password) = await cloud.CreateReadyDatabaseAsync(token, org, "deadline");
        var port = await cloud.ReplicaPgPortAsync(id);
        await using (var conn = await OpenAsync(port, id, password))
        {
            await Exec(conn, "CREATE TABLE t (id int PRIMARY KEY, v text)");
            await Exec(conn, "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 300) g");
        }
        var (source, before) = await FindAsync(id);
        var target = await NewGroupAsync();
        await using var host = await ProvisioningHostAsync();

        // Requested 9 min ago and never adopted: rolled back at once, nothing copied, the source writable, placement unchanged.
        var late = new DatabaseMoveRequested("op_move_late_" + Guid.NewGuid().ToString("N")[..8], DateTimeOffset.UtcNow.AddMinutes(-9), id, source, target, QuotaState.Ok);
        await host.Harness.Bus.Publish(late);
        var failed = Assert.Single(await host.WaitPublishedAsync<DatabaseMoveFailed>(1));
        Assert.Equal((late.OperationId, id), (failed.OperationId, failed.DatabaseId));
        Assert.StartsWith("timed out", failed.Reason, StringComparison.Ordinal);
        Assert.Equal(1, await CopiesAsync(id));
        Assert.Equal(0, await CopiesAsync(DatabaseMover.NamesFor(late.OperationId).StagedId));
        var (stayed, info) = await FindAsync(id);
        Assert.Equal((source, before.TenantId, Node.Admin.Wire.DatabaseState.Active, false), (stayed, info.TenantId, info.State, info.WritesPaused));
        Assert.Equal(source.ToString(System.Globalization.CultureInfo.InvariantCulture), (await cloud.PlacementAsync(id)).GetProperty("groupId").GetString());
        await using (var conn = await OpenAsync(port, id, password))
        {
            await Exec(conn, "INSERT INTO t VALUES (301, 'after the late request')");
        }

        // The same fresh request twice at once (as the control plane re-sends it while a move runs): one move, no failure.
        var fresh = new DatabaseMoveRequested("op_move_dup_" + Guid.NewGuid().ToString("N")[..8], DateTimeOffset.UtcNow, id, source, target, QuotaState.Ok);
        await Task.WhenAll(host.Harness.Bus.Publish(fresh), host.Harness.Bus.Publish(fresh));
        await host.WaitConsumedAsync<DatabaseMoveRequested>(3);
        var moved = await host.WaitPublishedAsync<DatabaseMoved>(1);
        var names = DatabaseMover.NamesFor(fresh.OperationId);
        Assert.All(moved, m => Assert.Equal((fresh.OperationId, target, names.Tenant), (m.OperationId, m.GroupId, m.TenantId)));
        Assert.Single(await host.WaitPublishedAsync<DatabaseMoveFailed>(1));
        var (group, after) = await FindAsync(id);
        Assert.Equal((target, names.Tenant, Node.Admin.Wire.DatabaseState.Active, false), (group, after.TenantId, after.State, after.WritesPaused));
        Assert.Equal(1, await CopiesAsync(id));
        Assert.Equal(0, await CopiesAsync(names.StagedId));

        // The same request again long past its deadline: the move was adopted, so it goes forward (nothing rolled back).
        var published = moved.Count;
        await host.Harness.Bus.Publish(fresh with { Timestamp = DateTimeOffset.UtcNow.AddHours(-1) });
        Assert.True((await host.WaitPublishedAsync<DatabaseMoved>(published + 1)).Count > published);
        Assert.Single(await host.WaitPublishedAsync<DatabaseMoveFailed>(1));
        var (still, stillInfo) = await FindAsync(id);
        Assert.Equal((target, names.Tenant), (still, stillInfo.TenantId));
        var newPort = await cloud.ReplicaPgPortAsync(id);
        Assert.Equal(301L, await ScalarAsync(newPort, id, password, "SELECT count(*) FROM t"));
        await using (var conn = await OpenAsync(newPort, id, password))
        {
            await Exec(conn, "INSERT INTO t VALUES (302, 'after the move')");
        }
    }
}
