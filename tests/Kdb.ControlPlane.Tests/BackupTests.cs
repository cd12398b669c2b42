using System.Collections.Concurrent;
using System.Net;
using Kdb.ControlPlane.Databases;
using Kdb.Contracts.V1;
using Kdb.Testing;
using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Kdb.ControlPlane.Tests;

/// <summary>Backups against a stand-in for provisioning on the control plane's own bus.</summary>
[Collection(TestCollections.Postgres)]
public sealed class BackupTests(SharedControlPlane cp) : IClassFixture<SharedControlPlane>, IAsyncLifetime
{
    private const ulong BigRaftIndex = (1UL << 63) + 5;
    private readonly ConcurrentDictionary<string, Func<BackupRequested, object?>> _answers = new();
    private readonly ConcurrentQueue<BackupExpired> _expired = new();
    private readonly ConcurrentDictionary<string, Func<RestoreRequested, object?>> _restores = new();
    private readonly ConcurrentDictionary<string, bool> _drillFailures = new();
    private HostReceiveEndpointHandle? _provisioning;

    private ControlPlaneApp App => cp.App;

    public async Task InitializeAsync()
    {
        _provisioning = App.Factory.Services.GetRequiredService<IBus>().ConnectReceiveEndpoint("test-backups-" + Guid.NewGuid().ToString("N"), e =>
        {
            e.Handler<BackupRequested>(async ctx =>
            {
                if (_answers.TryGetValue(ctx.Message.DatabaseId, out var answer) && answer(ctx.Message) is { } outcome)
                {
                    await ctx.Publish(outcome, outcome.GetType());
                }
            });
            e.Handler<RestoreRequested>(async ctx =>
            {
                if (_restores.TryGetValue(ctx.Message.SourceDatabaseId, out var answer) && answer(ctx.Message) is { } outcome)
                {
                    await ctx.Publish(outcome, outcome.GetType());
                }
            });
            e.Handler<RestoreDrillRequested>(async ctx =>
            {
                // The stand-in verifies every backup but those of databases named in _drillFailures.
                foreach (var backupId in ctx.Message.BackupIds)
                {
                    object outcome = _drillFailures.ContainsKey(backupId)
                        ? new RestoreDrillFailed(ctx.Message.OperationId, DateTimeOffset.UtcNow, backupId, "row count differs")
                        : new BackupVerified(ctx.Message.OperationId, DateTimeOffset.UtcNow, backupId, "restored; 42 rows checked");
                    await ctx.Publish(outcome, outcome.GetType());
                }
            });
            e.Handler<BackupExpired>(ctx =>
            {
                _expired.Enqueue(ctx.Message);
                return Task.CompletedTask;
            });
        });
        await _provisioning.Ready;
    }

    public async Task DisposeAsync()
    {
        if (_provisioning is not null)
        {
            await _provisioning.StopAsync();
        }
    }

    [Fact]
    public async Task Create_IsPendingThenCompletedWithProvisioningsResult()
    {
        var (owner, orgId, databaseId) = await ReadyDatabaseAsync("complete");
        string? requestedOrg = null;
        _answers[databaseId] = r =>
        {
            requestedOrg = r.OrgId;
            return new BackupCompleted(r.OperationId, DateTimeOffset.UtcNow, r.BackupId, r.DatabaseId, new BackupResult(4096, new string('a', 64), BigRaftIndex, "key_1"));
        };

        var created = await App.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/backups", owner);

        Assert.Equal(HttpStatusCode.Accepted, created.Status);
        var backupId = created.Body.GetProperty("backup").GetProperty("id").GetString()!;
        Assert.Matches("^bkp_[0-9a-hjkmnp-tv-z]{26}$", backupId);
        Assert.Equal("pending", created.Body.GetProperty("backup").GetProperty("status").GetString());
        var backup = await WaitForStatusAsync(owner, databaseId, backupId, "completed");
        Assert.Equal(4096, backup.GetProperty("sizeBytes").GetInt64());
        Assert.Equal(BigRaftIndex.ToString(System.Globalization.CultureInfo.InvariantCulture), backup.GetProperty("raftIndex").GetString());
        Assert.False(backup.GetProperty("verified").GetBoolean());
        // The request names the org, so provisioning seals with its key without looking the database up.
        Assert.Equal(orgId, requestedOrg);
        var operation = await App.SendAsync(HttpMethod.Get, $"/v1/operations/{created.Body.GetProperty("operation").GetProperty("id").GetString()}", owner);
        Assert.Equal("succeeded", operation.Body.GetProperty("status").GetString());
        var list = await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/backups", owner);
        Assert.Equal(backupId, Assert.Single(list.Body.GetProperty("items").EnumerateArray()).GetProperty("id").GetString());
    }

    [Fact]
    public async Task Create_FailedByProvisioning_IsFailedWithTheReason()
    {
        var (owner, _, databaseId) = await ReadyDatabaseAsync("fail");
        _answers[databaseId] = r => new BackupFailed(r.OperationId, DateTimeOffset.UtcNow, r.BackupId, r.DatabaseId, "object store unreachable");

        var created = await App.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/backups", owner);

        var backup = await WaitForStatusAsync(owner, databaseId, created.Body.GetProperty("backup").GetProperty("id").GetString()!, "failed");
        Assert.Equal("object store unreachable", backup.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Create_NoAnswer_TimesOutIntoFailed_NeverStuck()
    {
        var (owner, _, databaseId) = await ReadyDatabaseAsync("silent");
        var created = await App.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/backups", owner);
        var backupId = created.Body.GetProperty("backup").GetProperty("id").GetString()!;
        var operationId = created.Body.GetProperty("operation").GetProperty("id").GetString()!;
        var past = DateTimeOffset.UtcNow.AddHours(-1);
        await cp.WithDbAsync(db => db.Operations.Where(o => o.Id == operationId).ExecuteUpdateAsync(s => s.SetProperty(o => o.CreatedAt, past).SetProperty(o => o.LastPublishedAt, past)));

        await App.Factory.Services.GetServices<IHostedService>().OfType<OperationReconciler>().Single().ReconcileAsync(CancellationToken.None);

        var backup = await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/backups/{backupId}", owner);
        Assert.Equal("failed", backup.Body.GetProperty("status").GetString());
        Assert.Contains("timed out", backup.Body.GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Create_OnADatabaseNotReady_Is409()
    {
        var (owner, _, orgId) = await cp.UserAsync(SharedControlPlane.Email("notready"));
        var databaseId = (await App.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", owner, new { name = "young" })).Body.GetProperty("database").GetProperty("id").GetString()!;

        var created = await App.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/backups", owner);

        Assert.Equal(HttpStatusCode.Conflict, created.Status);
        Assert.EndsWith("database-not-ready", created.Body.GetProperty("type").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Backups_EachRole_GetsExactlyItsRights_AndDeletePublishesBackupExpired()
    {
        var (owner, orgId, databaseId) = await ReadyDatabaseAsync("roles");
        _answers[databaseId] = r => new BackupCompleted(r.OperationId, DateTimeOffset.UtcNow, r.BackupId, r.DatabaseId, new BackupResult(1, new string('b', 64), 7, "key_1"));
        var (admin, _) = await cp.JoinAsync(orgId, owner, "admin");
        var (developer, _) = await cp.JoinAsync(orgId, owner, "developer");
        var (viewer, _) = await cp.JoinAsync(orgId, owner, "viewer");

        Assert.Equal(HttpStatusCode.Forbidden, (await App.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/backups", viewer)).Status);
        var created = await App.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/backups", developer);
        Assert.Equal(HttpStatusCode.Accepted, created.Status);
        var backupId = created.Body.GetProperty("backup").GetProperty("id").GetString()!;
        await WaitForStatusAsync(viewer, databaseId, backupId, "completed");
        Assert.Equal(HttpStatusCode.OK, (await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/backups", viewer)).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await App.SendAsync(HttpMethod.Delete, $"/v1/databases/{databaseId}/backups/{backupId}", viewer)).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await App.SendAsync(HttpMethod.Delete, $"/v1/databases/{databaseId}/backups/{backupId}", developer)).Status);

        Assert.Equal(HttpStatusCode.NoContent, (await App.SendAsync(HttpMethod.Delete, $"/v1/databases/{databaseId}/backups/{backupId}", admin)).Status);

        Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/backups/{backupId}", admin)).Status);
        await WaitForExpiredAsync(backupId);
    }

    [Fact]
    public async Task Delete_WhileBeingTaken_Is409()
    {
        var (owner, _, databaseId) = await ReadyDatabaseAsync("busy");
        var created = await App.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/backups", owner);

        var deleted = await App.SendAsync(HttpMethod.Delete, $"/v1/databases/{databaseId}/backups/{created.Body.GetProperty("backup").GetProperty("id").GetString()}", owner);

        Assert.Equal(HttpStatusCode.Conflict, deleted.Status);
    }

    [Fact]
    public async Task Backups_OfAnotherOrgsDatabase_AreNotFound()
    {
        var (owner, _, databaseId) = await ReadyDatabaseAsync("victim");
        _answers[databaseId] = r => new BackupCompleted(r.OperationId, DateTimeOffset.UtcNow, r.BackupId, r.DatabaseId, new BackupResult(1, new string('c', 64), 7, "key_1"));
        var backupId = (await App.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/backups", owner)).Body.GetProperty("backup").GetProperty("id").GetString()!;
        await WaitForStatusAsync(owner, databaseId, backupId, "completed");
        var (mallory, _, malloryOrg) = await cp.UserAsync(SharedControlPlane.Email("mallory"));

        foreach (var (method, path) in new[]
        {
            (HttpMethod.Post, $"/v1/databases/{databaseId}/backups"),
            (HttpMethod.Get, $"/v1/databases/{databaseId}/backups"),
            (HttpMethod.Get, $"/v1/databases/{databaseId}/backups/{backupId}"),
            (HttpMethod.Delete, $"/v1/databases/{databaseId}/backups/{backupId}"),
        })
        {
            var result = await App.SendAsync(method, path, mallory);
            Assert.True(result.Status == HttpStatusCode.NotFound, $"{method} {path}: {result.Status}");
        }

        // Mallory's own database, Alice's backup id: still not found.
        var (_, _, malloryDb) = await ReadyDatabaseAsync("mallory-db", mallory, malloryOrg);
        Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Get, $"/v1/databases/{malloryDb}/backups/{backupId}", mallory)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Delete, $"/v1/databases/{malloryDb}/backups/{backupId}", mallory)).Status);
        Assert.Equal(HttpStatusCode.OK, (await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/backups/{backupId}", owner)).Status);
    }

    [Fact]
    public async Task Retention_ExpiresDueBackupsOnce_EvenWithTwoSweepsAtOnce()
    {
        var (owner, _, databaseId) = await ReadyDatabaseAsync("retention");
        _answers[databaseId] = r => new BackupCompleted(r.OperationId, DateTimeOffset.UtcNow, r.BackupId, r.DatabaseId, new BackupResult(1, new string('d', 64), 7, "key_1"));
        var backupId = (await App.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/backups", owner)).Body.GetProperty("backup").GetProperty("id").GetString()!;
        await WaitForStatusAsync(owner, databaseId, backupId, "completed");
        await cp.WithDbAsync(db => db.Backups.Where(b => b.Id == backupId).ExecuteUpdateAsync(s => s.SetProperty(b => b.ExpiresAt, DateTimeOffset.UtcNow.AddMinutes(-1))));
        var retention = App.Factory.Services.GetServices<IHostedService>().OfType<BackupRetention>().Single();

        var swept = await Task.WhenAll(retention.ExpireDueAsync(CancellationToken.None), retention.ExpireDueAsync(CancellationToken.None));

        Assert.Equal(1, swept.Sum());
        Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/backups/{backupId}", owner)).Status);
        await WaitForExpiredAsync(backupId);
        await Task.Delay(300);
        Assert.Single(_expired, e => e.BackupId == backupId);
    }

    [Fact]
    public async Task Schedule_PutAndGet_ByRole_AndValidated()
    {
        var (owner, orgId, databaseId) = await ReadyDatabaseAsync("schedule");
        var (developer, _) = await cp.JoinAsync(orgId, owner, "developer");
        var (viewer, _) = await cp.JoinAsync(orgId, owner, "viewer");

        var empty = await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/backup-schedule", viewer);
        Assert.False(empty.Body.GetProperty("enabled").GetBoolean());
        Assert.Equal(1, empty.Body.GetProperty("retentionDays").GetInt32()); // the free plan keeps backups a day
        Assert.Equal(HttpStatusCode.Forbidden, (await App.SendAsync(HttpMethod.Put, $"/v1/databases/{databaseId}/backup-schedule", developer, new { cron = "0 3 * * *" })).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await App.SendAsync(HttpMethod.Put, $"/v1/databases/{databaseId}/backup-schedule", owner, new { cron = "0 3 * *" })).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await App.SendAsync(HttpMethod.Put, $"/v1/databases/{databaseId}/backup-schedule", owner, new { cron = "0 0 30 2 *" })).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await App.SendAsync(HttpMethod.Put, $"/v1/databases/{databaseId}/backup-schedule", owner, new { cron = "0 3 * * *", retentionDays = 2 })).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await App.SendAsync(HttpMethod.Put, $"/v1/databases/{databaseId}/backup-schedule", owner, new { cron = "0 3 * * *", nextRunAt = "2020-01-01T00:00:00Z" })).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await App.SendAsync(HttpMethod.Put, $"/v1/databases/{databaseId}/backup-schedule", owner, "{\"cron\":")).Status);

        var put = await App.SendAsync(HttpMethod.Put, $"/v1/databases/{databaseId}/backup-schedule", owner, new { cron = "0  3 * * *" });

        Assert.Equal(HttpStatusCode.OK, put.Status);
        var next = put.Body.GetProperty("nextRunAt").GetDateTimeOffset();
        Assert.Equal((3, 0), (next.UtcDateTime.Hour, next.UtcDateTime.Minute));
        Assert.True(next > DateTimeOffset.UtcNow && next <= DateTimeOffset.UtcNow.AddDays(1));
        var got = await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/backup-schedule", viewer);
        Assert.Equal("0 3 * * *", got.Body.GetProperty("cron").GetString());
        Assert.True(got.Body.GetProperty("enabled").GetBoolean());
        var (mallory, _, _) = await cp.UserAsync(SharedControlPlane.Email("mallory"));
        Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/backup-schedule", mallory)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Put, $"/v1/databases/{databaseId}/backup-schedule", mallory, new { cron = "* * * * *" })).Status);
    }

    [Fact]
    public async Task Scheduler_TwoInstancesAtOnce_TakeADueBackupOnce_AndAdvanceTheSchedule()
    {
        var (owner, _, databaseId) = await ReadyDatabaseAsync("scheduled");
        Assert.Equal(HttpStatusCode.OK, (await App.SendAsync(HttpMethod.Put, $"/v1/databases/{databaseId}/backup-schedule", owner, new { cron = "*/5 * * * *", retentionDays = 1 })).Status);
        await cp.WithDbAsync(db => db.BackupSchedules.Where(s => s.DatabaseId == databaseId).ExecuteUpdateAsync(s => s.SetProperty(x => x.NextRunAt, DateTimeOffset.UtcNow.AddMinutes(-1))));
        var scheduler = App.Factory.Services.GetServices<IHostedService>().OfType<BackupScheduler>().Single();

        // Two schedulers (as two control-plane instances would) race for the same due run.
        var requested = await Task.WhenAll(scheduler.RunDueAsync(CancellationToken.None), scheduler.RunDueAsync(CancellationToken.None));

        Assert.Equal(1, requested.Sum());
        var backups = await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/backups", owner);
        var backup = Assert.Single(backups.Body.GetProperty("items").EnumerateArray());
        Assert.Equal(TimeSpan.FromDays(1), backup.GetProperty("expiresAt").GetDateTimeOffset() - backup.GetProperty("createdAt").GetDateTimeOffset());
        var schedule = await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/backup-schedule", owner);
        Assert.True(schedule.Body.GetProperty("nextRunAt").GetDateTimeOffset() > DateTimeOffset.UtcNow);
        Assert.NotEqual(System.Text.Json.JsonValueKind.Null, schedule.Body.GetProperty("lastRunAt").ValueKind);
    }

    [Fact]
    public async Task Restore_IntoANewDatabase_BecomesReadyWithTheRestoredRoles()
    {
        var (owner, orgId, databaseId) = await ReadyDatabaseAsync("restore-new");
        var backupId = await CompletedBackupAsync(owner, databaseId);
        var verifier = Kdb.PgWire.Auth.ScramSha256Verifier.Create("restored password").ToString();
        _restores[databaseId] = r => new RestoreCompleted(r.OperationId, DateTimeOffset.UtcNow, r.Target.DatabaseId, [new RoleVerifier("owner", RoleKind.Owner, verifier), new RoleVerifier("reporter", RoleKind.ReadOnly, verifier)]);

        var restored = await App.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/restore", owner, new { backupId, target = "new", name = "copy" });

        Assert.Equal(HttpStatusCode.Accepted, restored.Status);
        var targetId = restored.Body.GetProperty("database").GetProperty("id").GetString()!;
        Assert.NotEqual(databaseId, targetId);
        Assert.Equal("restoring", restored.Body.GetProperty("database").GetProperty("status").GetString());
        Assert.Equal("database.restore", restored.Body.GetProperty("operation").GetProperty("kind").GetString());
        await WaitForDatabaseAsync(owner, targetId, "ready");
        var roles = await App.SendAsync(HttpMethod.Get, $"/v1/databases/{targetId}/roles", owner);
        Assert.Equal(["owner", "reporter"], roles.Body.GetProperty("items").EnumerateArray().Select(r => r.GetProperty("name").GetString()).Order(StringComparer.Ordinal));
        Assert.Equal("copy", (await App.SendAsync(HttpMethod.Get, $"/v1/databases/{targetId}", owner)).Body.GetProperty("name").GetString());
        Assert.Equal(HttpStatusCode.Conflict, (await App.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/restore", owner, new { backupId, target = "new", name = "copy" })).Status);
    }

    [Fact]
    public async Task Restore_InPlace_GoesThroughRestoring_AndAFailureLeavesItReadyWithTheReason()
    {
        var (owner, orgId, databaseId) = await ReadyDatabaseAsync("restore-inplace");
        var backupId = await CompletedBackupAsync(owner, databaseId);
        var (developer, _) = await cp.JoinAsync(orgId, owner, "developer");
        _restores[databaseId] = r => new RestoreFailed(r.OperationId, DateTimeOffset.UtcNow, r.Target.DatabaseId, "checksum mismatch");

        Assert.Equal(HttpStatusCode.Forbidden, (await App.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/restore", developer, new { backupId, target = "in_place" })).Status);
        var restored = await App.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/restore", owner, new { backupId, target = "in_place" });

        Assert.Equal(HttpStatusCode.Accepted, restored.Status);
        Assert.Equal(databaseId, restored.Body.GetProperty("database").GetProperty("id").GetString());
        var operationId = restored.Body.GetProperty("operation").GetProperty("id").GetString()!;
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while ((await App.SendAsync(HttpMethod.Get, $"/v1/operations/{operationId}", owner)).Body.GetProperty("status").GetString() == "running" && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        var operation = await App.SendAsync(HttpMethod.Get, $"/v1/operations/{operationId}", owner);
        Assert.Equal("failed", operation.Body.GetProperty("status").GetString());
        Assert.Equal("checksum mismatch", operation.Body.GetProperty("error").GetString());
        var database = await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}", owner);
        Assert.Equal("ready", database.Body.GetProperty("status").GetString());
        Assert.Contains("checksum mismatch", database.Body.GetProperty("statusReason").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"target\":\"new\",\"name\":\"x\"}")]
    [InlineData("{\"backupId\":\"BACKUP\",\"target\":\"sideways\"}")]
    [InlineData("{\"backupId\":\"BACKUP\",\"target\":\"new\"}")]
    [InlineData("{\"backupId\":\"BACKUP\",\"target\":\"new\",\"name\":\"Bad Name\"}")]
    [InlineData("{\"backupId\":\"BACKUP\",\"target\":\"new\",\"name\":\"ok\",\"tenantId\":\"1\"}")]
    [InlineData("{\"backupId\":")]
    public async Task Restore_BadInput_Is400AndCreatesNothing(string body)
    {
        var (owner, orgId, databaseId) = await ReadyDatabaseAsync("restore-bad");
        var backupId = await CompletedBackupAsync(owner, databaseId);

        var result = await App.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/restore", owner, body.Replace("BACKUP", backupId, StringComparison.Ordinal));

        Assert.Equal(HttpStatusCode.BadRequest, result.Status);
        Assert.Equal(1, await cp.WithDbAsync(db => db.Databases.CountAsync(d => d.OrgId == orgId)));
    }

    [Fact]
    public async Task Restore_UnknownOrUnfinishedBackup_OrAnotherOrgsDatabase_IsRefused()
    {
        var (owner, _, databaseId) = await ReadyDatabaseAsync("restore-refused");
        var pending = (await App.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/backups", owner)).Body.GetProperty("backup").GetProperty("id").GetString()!;
        var (mallory, _, malloryOrg) = await cp.UserAsync(SharedControlPlane.Email("mallory"));
        var (_, _, malloryDb) = await ReadyDatabaseAsync("mallory-restore", mallory, malloryOrg);

        Assert.Equal(HttpStatusCode.Conflict, (await App.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/restore", owner, new { backupId = pending, target = "in_place" })).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/restore", owner, new { backupId = "bkp_00000000000000000000000000", target = "in_place" })).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/restore", mallory, new { backupId = pending, target = "new", name = "stolen" })).Status);
        // Mallory's own database with Alice's backup id: not found either.
        Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Post, $"/v1/databases/{malloryDb}/restore", mallory, new { backupId = pending, target = "new", name = "stolen" })).Status);
    }

    [Fact]
    public async Task RestoreDrill_FiresOnceAcrossInstances_WithEachDatabasesNewestBackup_AndRecordsTheVerdicts()
    {
        var (owner, _, first) = await ReadyDatabaseAsync("drill-a");
        var (other, _, second) = await ReadyDatabaseAsync("drill-b");
        var older = await CompletedBackupAsync(owner, first);
        var newer = await CompletedBackupAsync(owner, first);
        var failing = await CompletedBackupAsync(other, second);
        _drillFailures[failing] = true;
        var drill = App.Factory.Services.GetServices<IHostedService>().OfType<RestoreDrillScheduler>().Single();

        var runs = await Task.WhenAll(drill.RunIfDueAsync(CancellationToken.None), drill.RunIfDueAsync(CancellationToken.None));
        var again = await drill.RunIfDueAsync(CancellationToken.None);

        var fired = Assert.Single(runs, r => r.Count > 0);
        Assert.Contains(newer, fired);
        Assert.Contains(failing, fired);
        Assert.DoesNotContain(older, fired);
        Assert.Empty(again); // not due again for a day
        var deadline = DateTime.UtcNow.AddSeconds(60);
        System.Text.Json.JsonElement verified, refused;
        do
        {
            await Task.Delay(100);
            verified = (await App.SendAsync(HttpMethod.Get, $"/v1/databases/{first}/backups/{newer}", owner)).Body;
            refused = (await App.SendAsync(HttpMethod.Get, $"/v1/databases/{second}/backups/{failing}", other)).Body;
        }
        while ((verified.GetProperty("verifiedAt").ValueKind == System.Text.Json.JsonValueKind.Null || refused.GetProperty("verifiedAt").ValueKind == System.Text.Json.JsonValueKind.Null) && DateTime.UtcNow < deadline);

        Assert.True(verified.GetProperty("verified").GetBoolean());
        Assert.Equal("restored; 42 rows checked", verified.GetProperty("verificationDetails").GetString());
        Assert.False(refused.GetProperty("verified").GetBoolean());
        Assert.Equal("row count differs", refused.GetProperty("verificationDetails").GetString());
    }

    [Fact]
    public async Task BackupKeys_ProvisioningOnly_StoredEncrypted_AndFoundOnlyUnderTheirOrg()
    {
        var (owner, orgId, _) = await ReadyDatabaseAsync("keys");
        var (_, otherOrg, _) = await ReadyDatabaseAsync("keys-other");
        var provisioning = await App.ServiceTokenAsync("kdb-provisioning", ControlPlaneApp.ProvisioningSecret);
        var proxy = await App.ServiceTokenAsync("kdb-proxy", ControlPlaneApp.ProxySecret);

        var created = await App.SendAsync(HttpMethod.Post, $"/internal/v1/orgs/{orgId}/backup-keys", provisioning);

        Assert.Equal(HttpStatusCode.Created, created.Status);
        var keyId = created.Body.GetProperty("keyId").GetString()!;
        var key = created.Body.GetProperty("key").GetString()!;
        Assert.Equal(32, Convert.FromBase64String(key).Length);
        var fetched = await App.SendAsync(HttpMethod.Get, $"/internal/v1/orgs/{orgId}/backup-keys/{keyId}", provisioning);
        Assert.Equal(key, fetched.Body.GetProperty("key").GetString());
        var stored = await cp.WithDbAsync(db => db.BackupKeys.Where(k => k.KeyId == keyId).Select(k => k.ProtectedKey).SingleAsync());
        Assert.DoesNotContain(key, stored, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Get, $"/internal/v1/orgs/{otherOrg}/backup-keys/{keyId}", provisioning)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Post, "/internal/v1/orgs/org_00000000000000000000000000/backup-keys", provisioning)).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await App.SendAsync(HttpMethod.Get, $"/internal/v1/orgs/{orgId}/backup-keys/{keyId}", proxy)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await App.SendAsync(HttpMethod.Get, $"/internal/v1/orgs/{orgId}/backup-keys/{keyId}", owner)).Status);
    }

    private async Task<string> CompletedBackupAsync(string token, string databaseId)
    {
        _answers[databaseId] = r => new BackupCompleted(r.OperationId, DateTimeOffset.UtcNow, r.BackupId, r.DatabaseId, new BackupResult(1, new string('e', 64), 9, "key_1"));
        var backupId = (await App.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/backups", token)).Body.GetProperty("backup").GetProperty("id").GetString()!;
        await WaitForStatusAsync(token, databaseId, backupId, "completed");
        _answers.TryRemove(databaseId, out _);
        return backupId;
    }

    private async Task WaitForDatabaseAsync(string token, string databaseId, string status)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var database = await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}", token);
            if (database.Body.GetProperty("status").GetString() == status || DateTime.UtcNow > deadline)
            {
                Assert.Equal(status, database.Body.GetProperty("status").GetString());
                return;
            }

            await Task.Delay(100);
        }
    }

    private async Task<(string Token, string OrgId, string DatabaseId)> ReadyDatabaseAsync(string name, string? token = null, string? orgId = null)
    {
        if (token is null || orgId is null)
        {
            (token, _, orgId) = await cp.UserAsync(SharedControlPlane.Email(name));
        }

        var created = await App.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "backed-up" });
        var databaseId = created.Body.GetProperty("database").GetProperty("id").GetString()!;
        await cp.WithDbAsync(db => db.Databases.Where(d => d.Id == databaseId).ExecuteUpdateAsync(s => s.SetProperty(d => d.Status, "ready")));
        return (token, orgId, databaseId);
    }

    private async Task<System.Text.Json.JsonElement> WaitForStatusAsync(string token, string databaseId, string backupId, string status)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var backup = await App.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/backups/{backupId}", token);
            if (backup.Body.GetProperty("status").GetString() == status || DateTime.UtcNow > deadline)
            {
                Assert.Equal(status, backup.Body.GetProperty("status").GetString());
                return backup.Body;
            }

            await Task.Delay(100);
        }
    }

    private async Task WaitForExpiredAsync(string backupId)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!_expired.Any(e => e.BackupId == backupId))
        {
            Assert.True(DateTime.UtcNow < deadline, $"no BackupExpired for {backupId}");
            await Task.Delay(100);
        }
    }
}
