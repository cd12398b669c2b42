using System.Collections.Concurrent;
using System.Net;
using Kdb.Contracts.V1;
using Kdb.Testing;
using Kdb.Testing.Postgres;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Kdb.ControlPlane.Tests;

/// <summary>
/// The safety backup an in-place restore takes first gets a backup record (kind safety): listed, restorable through the
/// API, expiring under the plan's retention. A stand-in for provisioning answers the requests.
/// </summary>
[Collection(TestCollections.Postgres)]
public sealed class SafetyBackupTests(PostgresFixture postgres) : IAsyncLifetime
{
    private const string Verifier = "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy";
    private readonly ConcurrentQueue<RestoreRequested> _restores = new();
    private readonly ConcurrentQueue<BackupExpired> _expired = new();
    private ControlPlaneApp _app = null!;
    private HostReceiveEndpointHandle? _provisioning;

    public async Task InitializeAsync()
    {
        _app = await ControlPlaneApp.StartAsync(postgres, new Dictionary<string, string>
        {
            ["Backups:RetentionInterval"] = "00:00:00.200",
        });
        var bus = _app.Factory.Services.GetRequiredService<IBus>();
        _provisioning = bus.ConnectReceiveEndpoint("test-safety-" + Guid.NewGuid().ToString("N"), e =>
        {
            e.Handler<DatabaseRequested>(ctx => ctx.Publish(new DatabaseProvisioned(ctx.Message.OperationId, DateTimeOffset.UtcNow, ctx.Message.DatabaseId, 7)));
            e.Handler<BackupRequested>(ctx => ctx.Publish(new BackupCompleted(ctx.Message.OperationId, DateTimeOffset.UtcNow, ctx.Message.BackupId, ctx.Message.DatabaseId, Result(1))));
            e.Handler<RestoreRequested>(async ctx =>
            {
                var m = ctx.Message;
                _restores.Enqueue(m);
                if (m.InPlace)
                {
                    // Reported twice (a redelivery), next to a forged id no request named.
                    await ctx.Publish(new BackupCompleted(m.OperationId, DateTimeOffset.UtcNow, m.SafetyBackupId!, m.SourceDatabaseId, Result(2)));
                    await ctx.Publish(new BackupCompleted(m.OperationId, DateTimeOffset.UtcNow, m.SafetyBackupId!, m.SourceDatabaseId, Result(2)));
                    await ctx.Publish(new BackupCompleted(m.OperationId, DateTimeOffset.UtcNow, "bks_0000000000000000000forged", m.SourceDatabaseId, Result(3)));
                }

                await ctx.Publish(new RestoreCompleted(m.OperationId, DateTimeOffset.UtcNow, m.Target.DatabaseId, [new RoleVerifier("owner", RoleKind.Owner, Verifier)]));
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

        await _app.DisposeAsync();
    }

    [Fact]
    public async Task InPlaceRestore_RecordsItsSafetyBackup_ListedRestorableAndExpiring()
    {
        var token = await _app.SignupAndLoginAsync("safety@example.com");
        var orgId = (await _app.SendAsync(HttpMethod.Get, "/v1/me", token)).Body.GetProperty("orgs")[0].GetProperty("id").GetString()!;
        var created = await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "guarded" });
        var databaseId = created.Body.GetProperty("database").GetProperty("id").GetString()!;
        await WaitAsync(async () => (await _app.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}", token)).Body.GetProperty("status").GetString() == "ready");
        var backupId = (await _app.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/backups", token, new { })).Body.GetProperty("backup").GetProperty("id").GetString()!;
        await WaitAsync(async () => (await _app.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/backups/{backupId}", token)).Body.GetProperty("status").GetString() == "completed");

        var restore = await _app.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/restore", token, new { backupId, target = "in_place" });
        Assert.Equal(HttpStatusCode.Accepted, restore.Status);
        await WaitAsync(() => Task.FromResult(!_restores.IsEmpty));
        var safetyId = Assert.Single(_restores).SafetyBackupId;
        Assert.StartsWith("bks_", safetyId, StringComparison.Ordinal);
        await WaitAsync(async () => (await _app.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}", token)).Body.GetProperty("status").GetString() == "ready");

        // BackupCompleted and RestoreCompleted are consumed independently: the record may land just after the restore.
        var list = new List<System.Text.Json.JsonElement>();
        await WaitAsync(async () =>
        {
            list = (await _app.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/backups", token)).Body.GetProperty("items").EnumerateArray().ToList();
            return list.Count >= 2;
        });
        Assert.Equal(2, list.Count);
        var safety = Assert.Single(list, b => b.GetProperty("kind").GetString() == "safety");
        Assert.Equal("regular", Assert.Single(list, b => b.GetProperty("id").GetString() == backupId).GetProperty("kind").GetString());
        Assert.Equal(safetyId, safety.GetProperty("id").GetString());
        Assert.Equal("completed", safety.GetProperty("status").GetString());
        Assert.Equal(new string('2', 64), safety.GetProperty("sha256").GetString());
        // The free plan keeps backups a day; the safety backup too.
        var keptFor = safety.GetProperty("expiresAt").GetDateTimeOffset() - safety.GetProperty("completedAt").GetDateTimeOffset();
        Assert.InRange(keptFor, TimeSpan.FromHours(23), TimeSpan.FromHours(25));
        Assert.Equal(HttpStatusCode.NotFound, (await _app.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/backups/bks_0000000000000000000forged", token)).Status);

        // Restorable like any completed backup.
        var fromSafety = await _app.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/restore", token, new { backupId = safetyId, target = "new", name = "before" });
        Assert.Equal(HttpStatusCode.Accepted, fromSafety.Status);
        await WaitAsync(() => Task.FromResult(_restores.Any(r => r.BackupId == safetyId && !r.InPlace)));

        // Expires under the normal rules: its record goes and provisioning is told to delete the objects.
        await using (var connection = new NpgsqlConnection(_app.Database.ConnectionString))
        {
            await connection.OpenAsync();
            await using var expire = new NpgsqlCommand("""UPDATE backups SET "ExpiresAt" = now() - interval '1 minute' WHERE "Id" = @id""", connection);
            expire.Parameters.AddWithValue("id", safetyId!);
            Assert.Equal(1, await expire.ExecuteNonQueryAsync());
        }

        await WaitAsync(() => Task.FromResult(_expired.Any(e => e.BackupId == safetyId)));
        Assert.Equal(HttpStatusCode.NotFound, (await _app.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/backups/{safetyId}", token)).Status);
    }

    private static BackupResult Result(int seed) => new(4096 * seed, new string((char)('0' + seed), 64), 10UL + (ulong)seed, "key_test");

    private static async Task WaitAsync(Func<Task<bool>> probe)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await probe())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached within 30 s");
            await Task.Delay(100);
        }
    }
}
