using System.Net;
using System.Text.Json;
using Kdb.ControlPlane.Data;
using Kdb.Contracts.V1;
using Kdb.Testing;
using Kdb.Testing.Postgres;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Kdb.ControlPlane.Tests;

/// <summary>
/// Operation claims (<c>POST /internal/v1/operations/{id}/claim</c>), claim-renewing heartbeats and a move's recorded
/// target, against the real control plane and PostgreSQL. Operations are written straight into the operations table (no
/// provisioning runs here); a claim's silence is made by moving its renewal time back.
/// </summary>
[Collection(TestCollections.Postgres)]
public sealed class OperationClaimTests(PostgresFixture postgres) : IAsyncLifetime
{
    private ControlPlaneApp _app = null!;
    private string _provisioning = null!;

    public async Task InitializeAsync()
    {
        _app = await ControlPlaneApp.StartAsync(postgres);
        _provisioning = await _app.ServiceTokenAsync("kdb-provisioning", ControlPlaneApp.ProvisioningSecret);
    }

    public async Task DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task Claim_OneAttemptAtATime_RenewedByItsHeartbeats_TakenOverOnceItWentSilent()
    {
        var op = await OperationAsync("database.backup");

        Assert.Equal(HttpStatusCode.OK, (await ClaimAsync(op, "worker-a")).Status);
        var refused = await ClaimAsync(op, "worker-b");
        Assert.Equal(HttpStatusCode.Conflict, refused.Status);
        Assert.EndsWith("/operation-claimed", refused.Body.GetProperty("type").GetString());
        Assert.Equal("application/problem+json", refused.Response.Content.Headers.ContentType?.MediaType);
        // The holder again (a retry of its delivery): still its claim.
        Assert.Equal(HttpStatusCode.OK, (await ClaimAsync(op, "worker-a")).Status);

        // The holder's heartbeat renews it; another attempt's heartbeat is told it lost; a plain heartbeat still works.
        await SilenceClaimAsync(op, TimeSpan.FromMinutes(5));
        Assert.Equal(HttpStatusCode.NoContent, (await BeatAsync(op, "worker-a")).Status);
        Assert.Equal(HttpStatusCode.Conflict, (await ClaimAsync(op, "worker-b")).Status);
        var notHolder = await BeatAsync(op, "worker-b");
        Assert.Equal(HttpStatusCode.Conflict, notHolder.Status);
        Assert.EndsWith("/claim-lost", notHolder.Body.GetProperty("type").GetString());
        Assert.Equal(HttpStatusCode.NoContent, (await BeatAsync(op, null)).Status);
        Assert.Equal("worker-a", (await RowAsync(op)).ClaimAttemptId);

        // Silent past the lease (a crashed worker): another attempt takes it over, and the old one learns it at its next beat.
        await SilenceClaimAsync(op, TimeSpan.FromMinutes(5));
        var taken = await ClaimAsync(op, "worker-b");
        Assert.Equal(HttpStatusCode.OK, taken.Status);
        Assert.Equal("worker-b", taken.Body.GetProperty("attemptId").GetString());
        Assert.Equal(HttpStatusCode.Conflict, (await BeatAsync(op, "worker-a")).Status);
        Assert.Equal(HttpStatusCode.Conflict, (await ClaimAsync(op, "worker-a")).Status);
        Assert.Equal("worker-b", (await RowAsync(op)).ClaimAttemptId);

        // A finished operation cannot be claimed or beaten (404, the worker stops).
        await FinishAsync(op);
        Assert.Equal(HttpStatusCode.NotFound, (await ClaimAsync(op, "worker-b")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await BeatAsync(op, "worker-b")).Status);
    }

    [Fact]
    public async Task Claim_BadInput_IsAnsweredWithProblemDetails()
    {
        var op = await OperationAsync("database.backup");
        var unknown = await ClaimAsync("op_00000000000000000000000000", "worker-a");
        Assert.Equal(HttpStatusCode.NotFound, unknown.Status);
        Assert.Equal("application/problem+json", unknown.Response.Content.Headers.ContentType?.MediaType);

        foreach (var bad in new object?[] { "has space", "", new string('a', 65), "semi;colon", null })
        {
            var refused = await _app.SendAsync(HttpMethod.Post, $"/internal/v1/operations/{op}/claim", _provisioning, new { attemptId = bad });
            Assert.True(refused.Status == HttpStatusCode.BadRequest, $"{bad}: {refused.Status} {refused.Body}");
            Assert.True(refused.Body.GetProperty("errors").TryGetProperty("attemptId", out _), refused.Body.ToString());
        }
        foreach (var groups in new object[] { new[] { "0" }, new[] { "x" }, new[] { "1", "2", "3", "4", "5" }, new object[] { 1.5 } })
        {
            var refused = await _app.SendAsync(HttpMethod.Post, $"/internal/v1/operations/{op}/claim", _provisioning, new { attemptId = "worker-a", groups });
            Assert.Equal(HttpStatusCode.BadRequest, refused.Status);
            Assert.True(refused.Body.GetProperty("errors").TryGetProperty("groups", out _), refused.Body.ToString());
        }
        Assert.Equal(HttpStatusCode.BadRequest, (await _app.SendAsync(HttpMethod.Post, $"/internal/v1/operations/{op}/claim", _provisioning, new { attemptId = 42 })).Status);
        var unmapped = await _app.SendAsync(HttpMethod.Post, $"/internal/v1/operations/{op}/claim", _provisioning, new { attemptId = "worker-a", lease = 5 });
        Assert.Equal(HttpStatusCode.BadRequest, unmapped.Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await BeatAsync(op, "bad attempt")).Status);

        // Only provisioning claims.
        var user = await _app.SendAsync(HttpMethod.Post, $"/internal/v1/operations/{op}/claim", await _app.SignupAndLoginAsync("claimer@example.com"), new { attemptId = "worker-a" });
        Assert.True(user.Status is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden, user.Status.ToString());
        var proxy = await _app.SendAsync(HttpMethod.Post, $"/internal/v1/operations/{op}/claim", await _app.ServiceTokenAsync("kdb-proxy", ControlPlaneApp.ProxySecret), new { attemptId = "worker-a" });
        Assert.Equal(HttpStatusCode.Forbidden, proxy.Status);
        Assert.Null((await RowAsync(op)).ClaimAttemptId);
    }

    [Fact]
    public async Task GroupClaims_OneMovePerGroup_UntilTheHolderEndsOrGoesSilent_AndWaitingCountsAsAHeartbeat()
    {
        var first = await OperationAsync(Databases.DatabaseMoves.OperationKind);
        var second = await OperationAsync(Databases.DatabaseMoves.OperationKind);
        Assert.Equal(HttpStatusCode.OK, (await ClaimAsync(first, "mover-a", "10", "20")).Status);
        Assert.Equal(HttpStatusCode.OK, (await ClaimAsync(second, "mover-b")).Status);

        // Group 20 is in the first move: the second waits, and its waiting keeps it from being re-sent.
        await SilenceAsync(second, TimeSpan.FromMinutes(5));
        var busy = await ClaimAsync(second, "mover-b", "20", "30");
        Assert.Equal(HttpStatusCode.Conflict, busy.Status);
        Assert.EndsWith("/groups-busy", busy.Body.GetProperty("type").GetString());
        Assert.Contains(first, busy.Body.GetProperty("detail").GetString());
        Assert.True((await RowAsync(second)).LastPublishedAt > DateTimeOffset.UtcNow.AddMinutes(-1));
        Assert.Null((await RowAsync(second)).ClaimGroups);

        // Other groups are free; a claim without groups (a retry) keeps the groups held.
        Assert.Equal(HttpStatusCode.OK, (await ClaimAsync(second, "mover-b", "30", "40")).Status);
        Assert.Equal(HttpStatusCode.OK, (await ClaimAsync(second, "mover-b")).Status);
        Assert.Equal(new long[] { 30, 40 }, (await RowAsync(second)).ClaimGroups);
        var third = await OperationAsync(Databases.DatabaseMoves.OperationKind);
        Assert.Equal(HttpStatusCode.OK, (await ClaimAsync(third, "mover-c")).Status);
        Assert.Equal(HttpStatusCode.Conflict, (await ClaimAsync(third, "mover-c", "40")).Status);

        // The first move went silent (its worker crashed): its groups are free again.
        await SilenceClaimAsync(first, TimeSpan.FromMinutes(5));
        Assert.Equal(HttpStatusCode.OK, (await ClaimAsync(third, "mover-c", "20")).Status);
        // The second ends: group 40 is free.
        await FinishAsync(second);
        Assert.Equal(HttpStatusCode.OK, (await ClaimAsync(third, "mover-c", "20", "40")).Status);
        // Another attempt taking the first move over starts without groups; its group 20 is now the third's.
        var takeover = await ClaimAsync(first, "mover-d");
        Assert.Equal(HttpStatusCode.OK, takeover.Status);
        Assert.Equal(0, takeover.Body.GetProperty("groups").GetArrayLength());
        Assert.Equal(HttpStatusCode.Conflict, (await ClaimAsync(first, "mover-d", "10", "20")).Status);
    }

    [Fact]
    public async Task MoveTarget_RecordedOnceByTheHolder_InTheRequestThatIsReSent()
    {
        var move = await OperationAsync(Databases.DatabaseMoves.OperationKind, target: 0);
        var path = $"/internal/v1/operations/{move}/move-target";
        Assert.Equal(HttpStatusCode.Conflict, (await _app.SendAsync(HttpMethod.Put, path, _provisioning, new { attemptId = "mover-a", targetGroupId = "77" })).Status);
        Assert.Equal(HttpStatusCode.OK, (await ClaimAsync(move, "mover-a")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await _app.SendAsync(HttpMethod.Put, path, _provisioning, new { attemptId = "mover-a", targetGroupId = "0" })).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await _app.SendAsync(HttpMethod.Put, path, _provisioning, new { attemptId = "mover a", targetGroupId = "77" })).Status);
        var sameGroup = await _app.SendAsync(HttpMethod.Put, path, _provisioning, new { attemptId = "mover-a", targetGroupId = "7" });
        Assert.Equal(HttpStatusCode.Conflict, sameGroup.Status);
        Assert.EndsWith("/same-group", sameGroup.Body.GetProperty("type").GetString());

        var recorded = await _app.SendAsync(HttpMethod.Put, path, _provisioning, new { attemptId = "mover-a", targetGroupId = "77" });
        Assert.Equal(HttpStatusCode.OK, recorded.Status);
        Assert.Equal("77", recorded.Body.GetProperty("targetGroupId").GetString());
        Assert.Equal(77UL, JsonSerializer.Deserialize<DatabaseMoveRequested>((await RowAsync(move)).RequestPayload)!.TargetGroupId);

        // A later attempt (after a takeover) gets the first choice back, whatever it proposes.
        await SilenceClaimAsync(move, TimeSpan.FromMinutes(5));
        Assert.Equal(HttpStatusCode.OK, (await ClaimAsync(move, "mover-b")).Status);
        var again = await _app.SendAsync(HttpMethod.Put, path, _provisioning, new { attemptId = "mover-b", targetGroupId = "88" });
        Assert.Equal("77", again.Body.GetProperty("targetGroupId").GetString());

        // Not a move, or not running: 404.
        var backup = await OperationAsync("database.backup");
        Assert.Equal(HttpStatusCode.OK, (await ClaimAsync(backup, "mover-a")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await _app.SendAsync(HttpMethod.Put, $"/internal/v1/operations/{backup}/move-target", _provisioning, new { attemptId = "mover-a", targetGroupId = "77" })).Status);
        await FinishAsync(move);
        Assert.Equal(HttpStatusCode.NotFound, (await _app.SendAsync(HttpMethod.Put, path, _provisioning, new { attemptId = "mover-b", targetGroupId = "77" })).Status);
    }

    private Task<(HttpStatusCode Status, JsonElement Body, HttpResponseMessage Response)> ClaimAsync(string operationId, string attemptId, params string[] groups) =>
        _app.SendAsync(HttpMethod.Post, $"/internal/v1/operations/{operationId}/claim", _provisioning, groups.Length == 0 ? new { attemptId } : (object)new { attemptId, groups });

    private Task<(HttpStatusCode Status, JsonElement Body, HttpResponseMessage Response)> BeatAsync(string operationId, string? attemptId) =>
        _app.SendAsync(HttpMethod.Post, $"/internal/v1/operations/{operationId}/heartbeat" + (attemptId is null ? "" : "?attemptId=" + Uri.EscapeDataString(attemptId)), _provisioning);

    /// <summary>A running operation (a move from group 7 to <paramref name="target"/> when it is one), just published.</summary>
    private async Task<string> OperationAsync(string kind, ulong target = 99)
    {
        var id = "op_" + Guid.NewGuid().ToString("N")[..26];
        var now = DateTimeOffset.UtcNow;
        var request = new DatabaseMoveRequested(id, now, "db_claims", 7, target, QuotaState.Ok);
        await using var scope = _app.Factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
        db.Operations.Add(new OperationRecord
        {
            Id = id,
            OrgId = "org_claims",
            Kind = kind,
            Status = "running",
            ResourceId = "db_claims",
            RequestType = typeof(DatabaseMoveRequested).FullName!,
            RequestPayload = JsonSerializer.Serialize(request),
            CreatedAt = now,
            LastPublishedAt = now,
        });
        await db.SaveChangesAsync();
        return id;
    }

    private async Task<OperationRecord> RowAsync(string operationId)
    {
        await using var scope = _app.Factory.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>().Operations.AsNoTracking().SingleAsync(o => o.Id == operationId);
    }

    /// <summary>The claim's holder last renewed it <paramref name="by"/> ago (a silent or crashed attempt).</summary>
    private async Task SilenceClaimAsync(string operationId, TimeSpan by)
    {
        await using var scope = _app.Factory.Services.CreateAsyncScope();
        var past = DateTimeOffset.UtcNow - by;
        await scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>().Operations.Where(o => o.Id == operationId)
            .ExecuteUpdateAsync(s => s.SetProperty(o => o.ClaimedAt, past));
    }

    private async Task SilenceAsync(string operationId, TimeSpan by)
    {
        await using var scope = _app.Factory.Services.CreateAsyncScope();
        var past = DateTimeOffset.UtcNow - by;
        await scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>().Operations.Where(o => o.Id == operationId)
            .ExecuteUpdateAsync(s => s.SetProperty(o => o.LastPublishedAt, past));
    }

    private async Task FinishAsync(string operationId)
    {
        await using var scope = _app.Factory.Services.CreateAsyncScope();
        await scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>().Operations.Where(o => o.Id == operationId)
            .ExecuteUpdateAsync(s => s.SetProperty(o => o.Status, "succeeded"));
    }
}
