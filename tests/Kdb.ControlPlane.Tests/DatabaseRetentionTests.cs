using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Kdb.Contracts.V1;
using Kdb.Testing;
using Kdb.Testing.Postgres;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Kdb.ControlPlane.Tests;

/// <summary>
/// The retention window of deleted databases against a stand-in for provisioning: deletion keeps the data, undelete
/// brings the database back before the window ends, and past it the purge drops the data, the record and its backups.
/// </summary>
[Collection(TestCollections.Postgres)]
public sealed class DatabaseRetentionTests(PostgresFixture postgres) : IAsyncLifetime
{
    private readonly ConcurrentQueue<DatabaseDeletionRequested> _deletions = new();
    private readonly ConcurrentQueue<DatabaseUndeleteRequested> _undeletes = new();
    private readonly ConcurrentQueue<BackupExpired> _expired = new();
    private ControlPlaneApp _app = null!;
    private HostReceiveEndpointHandle? _provisioning;

    public async Task InitializeAsync()
    {
        _app = await ControlPlaneApp.StartAsync(postgres, new Dictionary<string, string>
        {
            ["Databases:PurgeInterval"] = "00:00:00.200",
        });
        var bus = _app.Factory.Services.GetRequiredService<IBus>();
        _provisioning = bus.ConnectReceiveEndpoint("test-retention-" + Guid.NewGuid().ToString("N"), e =>
        {
            e.Handler<DatabaseRequested>(ctx => ctx.Publish(new DatabaseProvisioned(ctx.Message.OperationId, DateTimeOffset.UtcNow, ctx.Message.DatabaseId, 7)));
            e.Handler<DatabaseDeletionRequested>(ctx =>
            {
                _deletions.Enqueue(ctx.Message);
                return ctx.Publish(new DatabaseDeleted(ctx.Message.OperationId, DateTimeOffset.UtcNow, ctx.Message.DatabaseId));
            });
            e.Handler<DatabaseUndeleteRequested>(ctx =>
            {
                _undeletes.Enqueue(ctx.Message);
                return ctx.Publish(new DatabaseUndeleted(ctx.Message.OperationId, DateTimeOffset.UtcNow, ctx.Message.DatabaseId));
            });
            e.Handler<BackupRequested>(ctx => ctx.Publish(new BackupCompleted(ctx.Message.OperationId, DateTimeOffset.UtcNow, ctx.Message.BackupId, ctx.Message.DatabaseId, new BackupResult(4096, new string('a', 64), 12, "key_test"))));
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
    public async Task Undelete_WithinTheWindow_BringsTheDatabaseBack_AndRefusesEverythingElseClearly()
    {
        var (token, orgId) = await OwnerAsync("undelete@example.com");
        var (stranger, _) = await OwnerAsync("undelete-stranger@example.com");
        var databaseId = await CreateReadyAsync(token, orgId, "keep");
        var live = await CreateReadyAsync(token, orgId, "live");

        await DeleteAsync(token, databaseId);
        Assert.True(Assert.Single(_deletions, d => d.DatabaseId == databaseId).Retain, "a deletion inside a retention window keeps the data");
        var listed = await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/deleted-databases", token);
        var item = Assert.Single(listed.Body.GetProperty("items").EnumerateArray());
        Assert.Equal(databaseId, item.GetProperty("id").GetString());
        Assert.Equal(TimeSpan.FromDays(7), item.GetProperty("purgeAfter").GetDateTimeOffset() - item.GetProperty("deletedAt").GetDateTimeOffset());
        Assert.Equal(HttpStatusCode.NotFound, (await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/deleted-databases", stranger)).Status);

        // Another org's database, a live one, unknown and malformed ids: all the same RFC 7807 404.
        foreach (var (caller, id) in new[] { (stranger, databaseId), (token, live), (token, "db_0000000000000000"), (token, "not%20an%20id"), (token, new string('x', 300)) })
        {
            var refused = await _app.SendAsync(HttpMethod.Post, $"/v1/databases/{id}/undelete", caller);
            Assert.Equal(HttpStatusCode.NotFound, refused.Status);
            Assert.Equal("application/problem+json", refused.Response.Content.Headers.ContentType?.MediaType);
            Assert.Equal(404, refused.Body.GetProperty("status").GetInt32());
        }

        // Its name was taken meanwhile: a clear conflict until the other database goes.
        var twin = await CreateReadyAsync(token, orgId, "keep");
        var taken = await _app.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/undelete", token);
        Assert.Equal(HttpStatusCode.Conflict, taken.Status);
        Assert.EndsWith("/database-name-taken", taken.Body.GetProperty("type").GetString(), StringComparison.Ordinal);
        await DeleteAsync(token, twin);

        var undelete = await _app.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/undelete", token);
        Assert.Equal(HttpStatusCode.Accepted, undelete.Status);
        Assert.Equal("restoring", undelete.Body.GetProperty("database").GetProperty("status").GetString());
        var ready = await WaitAsync(async () =>
        {
            var d = await _app.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}", token);
            return d.Status == HttpStatusCode.OK && d.Body.GetProperty("status").GetString() == "ready" ? d.Body : null;
        });
        Assert.Equal("keep", ready.GetProperty("name").GetString());
        Assert.Equal(QuotaState.Ok, Assert.Single(_undeletes).State);
        var operation = await _app.SendAsync(HttpMethod.Get, $"/v1/operations/{undelete.Body.GetProperty("operation").GetProperty("id").GetString()}", token);
        Assert.Equal("succeeded", operation.Body.GetProperty("status").GetString());
        // Back among the live databases, no longer among the deleted, and a second undelete finds nothing.
        var remaining = await _app.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/deleted-databases", token);
        Assert.DoesNotContain(remaining.Body.GetProperty("items").EnumerateArray(), d => d.GetProperty("id").GetString() == databaseId);
        Assert.Equal(HttpStatusCode.NotFound, (await _app.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/undelete", token)).Status);
    }

    [Fact]
    public async Task PastTheWindow_ThePurgeDropsTheData_ThenTheRecordItsRolesAndItsBackupsGo()
    {
        var (token, orgId) = await OwnerAsync("purge@example.com");
        var databaseId = await CreateReadyAsync(token, orgId, "doomed");
        var backup = await _app.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/backups", token, new { });
        Assert.Equal(HttpStatusCode.Accepted, backup.Status);
        var backupId = backup.Body.GetProperty("backup").GetProperty("id").GetString()!;
        await WaitAsync(async () =>
        {
            var b = await _app.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/backups/{backupId}", token);
            return b.Body.GetProperty("status").GetString() == "completed" ? b.Body : null;
        });
        await DeleteAsync(token, databaseId);
        // Still inside the window: nothing is purged.
        await Task.Delay(600);
        Assert.Equal(1L, await CountAsync("""SELECT count(*) FROM databases WHERE "Id" = @id""", databaseId));

        Assert.Equal(1L, await CountAsync("""WITH moved AS (UPDATE operations SET "FinishedAt" = "FinishedAt" - interval '8 days' WHERE "ResourceId" = @id AND "Kind" = 'database.delete' RETURNING 1) SELECT count(*) FROM moved""", databaseId));
        await WaitAsync(async () => await CountAsync("""SELECT count(*) FROM databases WHERE "Id" = @id""", databaseId) == 0 ? default(JsonElement) : null);

        var purge = _deletions.Where(d => d.DatabaseId == databaseId).ToList();
        Assert.Equal(new[] { true, false }, purge.Select(d => d.Retain));
        Assert.Equal(0L, await CountAsync("""SELECT count(*) FROM database_roles WHERE "DatabaseId" = @id""", databaseId));
        Assert.Equal(0L, await CountAsync("""SELECT count(*) FROM backups WHERE "DatabaseId" = @id""", databaseId));
        await WaitAsync(() => Task.FromResult(_expired.Any(e => e.BackupId == backupId) ? default(JsonElement) : (JsonElement?)null));
        Assert.Equal(1L, await CountAsync("""SELECT count(*) FROM operations WHERE "ResourceId" = @id AND "Kind" = 'database.purge' AND "Status" = 'succeeded'""", databaseId));
        Assert.Equal(HttpStatusCode.NotFound, (await _app.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/undelete", token)).Status);
        // The name is free, and nothing else is purged twice.
        await Task.Delay(600);
        Assert.Single(_deletions, d => d.DatabaseId == databaseId && !d.Retain);
        await CreateReadyAsync(token, orgId, "doomed");
    }

    [Fact]
    public async Task OpenApi_DescribesUndeleteAndTheDeletedList()
    {
        using var response = await _app.Client.GetAsync(new Uri("/openapi/v1.json", UriKind.Relative));
        var paths = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("paths");
        Assert.True(paths.TryGetProperty("/v1/databases/{databaseId}/undelete", out var undelete) && undelete.TryGetProperty("post", out _));
        Assert.True(paths.TryGetProperty("/v1/orgs/{orgId}/deleted-databases", out var list) && list.TryGetProperty("get", out _));
    }

    private async Task<long> CountAsync(string sql, string databaseId)
    {
        await using var connection = new NpgsqlConnection(_app.Database.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.AddWithValue("id", databaseId);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private async Task<string> CreateReadyAsync(string token, string orgId, string name)
    {
        var created = await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name });
        Assert.Equal(HttpStatusCode.Accepted, created.Status);
        var databaseId = created.Body.GetProperty("database").GetProperty("id").GetString()!;
        await WaitAsync(async () =>
        {
            var d = await _app.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}", token);
            return d.Body.GetProperty("status").GetString() == "ready" ? d.Body : null;
        });
        return databaseId;
    }

    private async Task DeleteAsync(string token, string databaseId)
    {
        Assert.Equal(HttpStatusCode.Accepted, (await _app.SendAsync(HttpMethod.Delete, $"/v1/databases/{databaseId}", token)).Status);
        await WaitAsync(async () =>
        {
            var d = await _app.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}", token);
            return d.Status == HttpStatusCode.NotFound ? d.Body : null;
        });
    }

    private async Task<(string Token, string OrgId)> OwnerAsync(string email)
    {
        var token = await _app.SignupAndLoginAsync(email);
        var me = await _app.SendAsync(HttpMethod.Get, "/v1/me", token);
        return (token, me.Body.GetProperty("orgs")[0].GetProperty("id").GetString()!);
    }

    private static async Task<JsonElement> WaitAsync(Func<Task<JsonElement?>> probe)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            if (await probe() is { } done)
            {
                return done;
            }

            Assert.True(DateTime.UtcNow < deadline, "condition not reached within 30 s");
            await Task.Delay(100);
        }
    }
}
