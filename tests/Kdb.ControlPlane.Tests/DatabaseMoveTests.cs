using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Kdb.Contracts.V1;
using Kdb.Testing;
using Kdb.Testing.Postgres;
using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Kdb.ControlPlane.Tests;

/// <summary>
/// The operator's move endpoint and the move outcomes, against a stand-in for provisioning that moves to group 99 and
/// fails any other target.
/// </summary>
[Collection(TestCollections.Postgres)]
public sealed class DatabaseMoveTests(PostgresFixture postgres) : IAsyncLifetime
{
    private const string OperatorSecret = "oper-secret-0123456789abcdefghijklmnopqrstuvwxyz";
    private const ulong MovedTenant = (1UL << 63) | 12345;
    private const ulong SlowGroup = 55;
    private readonly ConcurrentQueue<DatabaseMoveRequested> _requests = new();
    private volatile Func<DatabaseMoveRequested, object>? _slowAnswer;
    private ControlPlaneApp _app = null!;
    private HostReceiveEndpointHandle? _provisioning;

    public async Task InitializeAsync()
    {
        _app = await ControlPlaneApp.StartAsync(postgres, new Dictionary<string, string> { ["ServiceClients:Operator:Secret"] = OperatorSecret });
        var bus = _app.Factory.Services.GetRequiredService<IBus>();
        _provisioning = bus.ConnectReceiveEndpoint("test-moves-" + Guid.NewGuid().ToString("N"), e =>
        {
            e.Handler<DatabaseRequested>(ctx => ctx.Publish(new DatabaseProvisioned(ctx.Message.OperationId, DateTimeOffset.UtcNow, ctx.Message.DatabaseId, 7)));
            e.Handler<DatabaseMoveRequested>(ctx =>
            {
                var m = ctx.Message;
                _requests.Enqueue(m);
                if (m.TargetGroupId == SlowGroup)
                {
                    // Silent until the test decides what provisioning, past its deadline, answers to the re-sent request.
                    var answer = _slowAnswer?.Invoke(m);
                    return answer is null ? Task.CompletedTask : ctx.Publish(answer, answer.GetType());
                }

                return m.TargetGroupId == 99
                    ? ctx.Publish(new DatabaseMoved(m.OperationId, DateTimeOffset.UtcNow, m.DatabaseId, 99, MovedTenant))
                    : ctx.Publish(new DatabaseMoveFailed(m.OperationId, DateTimeOffset.UtcNow, m.DatabaseId, "target group unknown"));
            });
        });
        await _provisioning.Ready;
    }

    public async Task DisposeAsync()
    {
        await (_provisioning?.StopAsync() ?? Task.CompletedTask);
        await _app.DisposeAsync();
    }

    [Fact]
    public async Task Move_ByTheOperator_RecordsTheNewGroupAndTenant_OrReturnsToReadyOnFailure()
    {
        var (token, orgId) = await SignupAsync("mover@example.com");
        var (_, strangerOrg) = await SignupAsync("mover-stranger@example.com");
        var databaseId = (await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "hot" })).Body.GetProperty("database").GetProperty("id").GetString()!;
        await UntilAsync(token, databaseId, d => d.GetProperty("status").GetString() == "ready");
        var operatorToken = await _app.ServiceTokenAsync("kdb-operator", OperatorSecret);
        var provisioningToken = await _app.ServiceTokenAsync("kdb-provisioning", ControlPlaneApp.ProvisioningSecret);

        Assert.Equal(HttpStatusCode.NotFound, (await MoveAsync(operatorToken, strangerOrg, databaseId, "99")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await MoveAsync(operatorToken, orgId, "db_0000000000000000", "99")).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await MoveAsync(provisioningToken, orgId, databaseId, "99")).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await MoveAsync(token, orgId, databaseId, "99")).Status);
        foreach (var bad in new object?[] { "0", "-1", "x", 1.5, true })
        {
            var refused = await MoveAsync(operatorToken, orgId, databaseId, bad);
            Assert.Equal(HttpStatusCode.BadRequest, refused.Status);
            Assert.True(refused.Body.GetProperty("errors").TryGetProperty("targetGroupId", out _), refused.Body.ToString());
        }
        var same = await MoveAsync(operatorToken, orgId, databaseId, "7");
        Assert.Equal(HttpStatusCode.Conflict, same.Status);
        Assert.EndsWith("same-group", same.Body.GetProperty("type").GetString());
        Assert.Empty(_requests);

        // A failed move: the database is ready again on its group, with the reason; the operation failed.
        var failing = await MoveAsync(operatorToken, orgId, databaseId, "42");
        Assert.Equal(HttpStatusCode.Accepted, failing.Status);
        Assert.Equal("moving", failing.Body.GetProperty("database").GetProperty("status").GetString());
        var failedView = await UntilAsync(token, databaseId, d => d.GetProperty("status").GetString() == "ready");
        Assert.Contains("target group unknown", failedView.GetProperty("statusReason").GetString());
        var failedOperation = failing.Body.GetProperty("operation").GetProperty("id").GetString()!;
        Assert.Equal("failed", (await _app.SendAsync(HttpMethod.Get, $"/v1/operations/{failedOperation}", token)).Body.GetProperty("status").GetString());
        var request = Assert.Single(_requests);
        Assert.Equal((7UL, 42UL, QuotaState.Ok), (request.SourceGroupId, request.TargetGroupId, request.State));

        // A successful one: the record follows (group and tenant), and so does the proxies' route entry.
        var moving = await MoveAsync(operatorToken, orgId, databaseId, 99);
        Assert.Equal(HttpStatusCode.Accepted, moving.Status);
        // Busy while moving, on that group once moved: 409 either way, and never a second request.
        Assert.Equal(HttpStatusCode.Conflict, (await MoveAsync(operatorToken, orgId, databaseId, "99")).Status);
        var moved = await UntilAsync(token, databaseId, d => d.GetProperty("status").GetString() == "ready" && d.GetProperty("groupId").GetString() == "99");
        Assert.True(!moved.TryGetProperty("statusReason", out var reason) || reason.ValueKind == JsonValueKind.Null, moved.ToString());
        var route = await _app.SendAsync(HttpMethod.Get, $"/internal/v1/routes/{databaseId}", await _app.ServiceTokenAsync("kdb-proxy", ControlPlaneApp.ProxySecret));
        Assert.Equal(MovedTenant.ToString(CultureInfo.InvariantCulture), route.Body.GetProperty("tenantId").GetString());
        Assert.Equal("99", route.Body.GetProperty("groupId").GetString());
        Assert.Equal(2, _requests.Count);

        // Without a target (null or left out): accepted, and the request carries 0 for provisioning's placement to choose
        // (the stand-in fails any target but 99, so the database is ready again on group 99).
        var anywhere = await MoveAsync(operatorToken, orgId, databaseId, null);
        Assert.Equal(HttpStatusCode.Accepted, anywhere.Status);
        await UntilRequestsAsync(anywhere.Body.GetProperty("operation").GetProperty("id").GetString()!, 1);
        Assert.Equal((99UL, 0UL), (_requests.Last().SourceGroupId, _requests.Last().TargetGroupId));
        await UntilAsync(token, databaseId, d => d.GetProperty("status").GetString() == "ready");
        var leftOut = await _app.SendAsync(HttpMethod.Post, $"/internal/v1/orgs/{orgId}/databases/{databaseId}/move", operatorToken, new { });
        Assert.Equal(HttpStatusCode.Accepted, leftOut.Status);
    }

    [Fact]
    public async Task Move_PastTheTimeout_IsReSentUntilProvisioningAnswers_AndRoleChangesWaitForIt()
    {
        var (token, orgId) = await SignupAsync("slow-mover@example.com");
        var databaseId = (await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "slow" })).Body.GetProperty("database").GetProperty("id").GetString()!;
        await UntilAsync(token, databaseId, d => d.GetProperty("status").GetString() == "ready");
        var reader = await _app.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/roles", token, new { name = "reader", kind = "readonly" });
        Assert.Equal(HttpStatusCode.Created, reader.Status);
        var operatorToken = await _app.ServiceTokenAsync("kdb-operator", OperatorSecret);
        var moving = await MoveAsync(operatorToken, orgId, databaseId, SlowGroup.ToString(CultureInfo.InvariantCulture));
        Assert.Equal(HttpStatusCode.Accepted, moving.Status);
        var operationId = moving.Body.GetProperty("operation").GetProperty("id").GetString()!;
        await UntilRequestsAsync(operationId, 1);

        // While it moves, role changes are refused (a change applied to the source after the mover read its roles would be
        // missing from the moved copy); reading roles still works.
        var create = await _app.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/roles", token, new { name = "writer", kind = "readwrite" });
        Assert.Equal(HttpStatusCode.Conflict, create.Status);
        Assert.EndsWith("database-moving", create.Body.GetProperty("type").GetString(), StringComparison.Ordinal);
        Assert.Contains("being moved", create.Body.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Conflict, (await _app.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/roles/owner/reset-password", token)).Status);
        Assert.Equal(HttpStatusCode.Conflict, (await _app.SendAsync(HttpMethod.Delete, $"/v1/databases/{databaseId}/roles/reader", token)).Status);
        var roles = await _app.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/roles", token);
        Assert.Equal(["owner", "reader"], roles.Body.GetProperty("items").EnumerateArray().Select(r => r.GetProperty("name").GetString()));
        var (stranger, _) = await SignupAsync("slow-mover-stranger@example.com");
        Assert.Equal(HttpStatusCode.NotFound, (await _app.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/roles", stranger, new { name = "x", kind = "readonly" })).Status);

        // Past the timeout with no answer: the control plane cannot know whether provisioning passed the adopt, so it does not
        // fail the move itself; it re-sends the request and says so on the database, which stays moving on its source group.
        await BackdateAsync(operationId, TimeSpan.FromHours(1));
        await ReconcileAsync();
        await UntilRequestsAsync(operationId, 2);
        var overdue = (await _app.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}", token)).Body;
        Assert.Equal("moving", overdue.GetProperty("status").GetString());
        Assert.Equal("7", overdue.GetProperty("groupId").GetString());
        Assert.Contains("asked to finish it or roll it back", overdue.GetProperty("statusReason").GetString(), StringComparison.Ordinal);
        Assert.Equal("running", (await _app.SendAsync(HttpMethod.Get, $"/v1/operations/{operationId}", token)).Body.GetProperty("status").GetString());

        // Provisioning's answer to the re-sent request (past its own deadline, before the adopt: rolled back) ends it.
        _slowAnswer = m => new DatabaseMoveFailed(m.OperationId, DateTimeOffset.UtcNow, m.DatabaseId, "timed out: not copied within 480 s of the request (MoveTimeout); rolled back");
        await BackdateAsync(operationId, TimeSpan.FromHours(1));
        await ReconcileAsync();
        var back = await UntilAsync(token, databaseId, d => d.GetProperty("status").GetString() == "ready");
        Assert.Equal("7", back.GetProperty("groupId").GetString());
        Assert.Contains("move failed: timed out", back.GetProperty("statusReason").GetString(), StringComparison.Ordinal);
        var failed = (await _app.SendAsync(HttpMethod.Get, $"/v1/operations/{operationId}", token)).Body;
        Assert.Equal("failed", failed.GetProperty("status").GetString());
        Assert.Contains("rolled back", failed.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Created, (await _app.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/roles", token, new { name = "writer", kind = "readwrite" })).Status);

        // A move past its timeout that provisioning had already adopted finishes instead: the new group and tenant are recorded.
        _slowAnswer = m => new DatabaseMoved(m.OperationId, DateTimeOffset.UtcNow, m.DatabaseId, SlowGroup, MovedTenant - 1);
        var second = await MoveAsync(operatorToken, orgId, databaseId, SlowGroup.ToString(CultureInfo.InvariantCulture));
        var secondId = second.Body.GetProperty("operation").GetProperty("id").GetString()!;
        var moved = await UntilAsync(token, databaseId, d => d.GetProperty("status").GetString() == "ready" && d.GetProperty("groupId").GetString() == "55");
        Assert.True(!moved.TryGetProperty("statusReason", out var reason) || reason.ValueKind == JsonValueKind.Null, moved.ToString());
        Assert.Equal("succeeded", (await _app.SendAsync(HttpMethod.Get, $"/v1/operations/{secondId}", token)).Body.GetProperty("status").GetString());

        // A finished move is never re-sent, however old.
        var sent = _requests.Count;
        await BackdateAsync(operationId, TimeSpan.FromHours(2));
        await BackdateAsync(secondId, TimeSpan.FromHours(2));
        await ReconcileAsync();
        await Task.Delay(300);
        Assert.Equal(sent, _requests.Count);
    }

    [Fact]
    public async Task Heartbeat_OfARunningOperation_DefersItsReSend_AndEndsWithIt()
    {
        var (token, orgId) = await SignupAsync("heartbeat@example.com");
        var databaseId = (await _app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "beating" })).Body.GetProperty("database").GetProperty("id").GetString()!;
        await UntilAsync(token, databaseId, d => d.GetProperty("status").GetString() == "ready");
        var operatorToken = await _app.ServiceTokenAsync("kdb-operator", OperatorSecret);
        var moving = await MoveAsync(operatorToken, orgId, databaseId, SlowGroup.ToString(CultureInfo.InvariantCulture));
        var operationId = moving.Body.GetProperty("operation").GetProperty("id").GetString()!;
        await UntilRequestsAsync(operationId, 1);
        var provisioning = await _app.ServiceTokenAsync("kdb-provisioning", ControlPlaneApp.ProvisioningSecret);
        var heartbeat = $"/internal/v1/operations/{operationId}/heartbeat";

        // Not heard of for a while, then a heartbeat: the reconciler leaves it alone (a worker is on it).
        await SilenceAsync(operationId, TimeSpan.FromMinutes(5));
        Assert.Equal(HttpStatusCode.NoContent, (await _app.SendAsync(HttpMethod.Post, heartbeat, provisioning)).Status);
        await ReconcileAsync();
        await Task.Delay(300);
        Assert.Equal(1, _requests.Count(r => r.OperationId == operationId));

        // No heartbeat (a worker that crashed with the request): re-sent as before.
        await SilenceAsync(operationId, TimeSpan.FromMinutes(5));
        await ReconcileAsync();
        await UntilRequestsAsync(operationId, 2);

        // Only provisioning may beat; an unknown operation is 404; a finished one is 404 too (the worker stops beating).
        var user = await _app.SendAsync(HttpMethod.Post, heartbeat, token);
        Assert.True(user.Status is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden, user.Status.ToString());
        Assert.Equal(HttpStatusCode.NotFound, (await _app.SendAsync(HttpMethod.Post, "/internal/v1/operations/op_00000000000000000000000000/heartbeat", provisioning)).Status);
        _slowAnswer = m => new DatabaseMoveFailed(m.OperationId, DateTimeOffset.UtcNow, m.DatabaseId, "stopped by the test");
        await SilenceAsync(operationId, TimeSpan.FromMinutes(5));
        await ReconcileAsync();
        await UntilAsync(token, databaseId, d => d.GetProperty("status").GetString() == "ready");
        var ended = await _app.SendAsync(HttpMethod.Post, heartbeat, provisioning);
        Assert.Equal(HttpStatusCode.NotFound, ended.Status);
        Assert.Equal("application/problem+json", ended.Response.Content.Headers.ContentType?.MediaType);
    }

    /// <summary>The operation was last published (or heartbeated) <paramref name="by"/> ago; its age stays as it is.</summary>
    private async Task SilenceAsync(string operationId, TimeSpan by)
    {
        await using var scope = _app.Factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<Data.ControlPlaneDbContext>();
        var past = DateTimeOffset.UtcNow - by;
        await db.Operations.Where(o => o.Id == operationId).ExecuteUpdateAsync(s => s.SetProperty(o => o.LastPublishedAt, past));
    }

    private async Task BackdateAsync(string operationId, TimeSpan by)
    {
        await using var scope = _app.Factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<Data.ControlPlaneDbContext>();
        var past = DateTimeOffset.UtcNow - by;
        await db.Operations.Where(o => o.Id == operationId).ExecuteUpdateAsync(s => s.SetProperty(o => o.CreatedAt, past).SetProperty(o => o.LastPublishedAt, past));
    }

    private Task ReconcileAsync() =>
        _app.Factory.Services.GetServices<IHostedService>().OfType<Databases.OperationReconciler>().Single().ReconcileAsync(CancellationToken.None);

    private async Task UntilRequestsAsync(string operationId, int count)
    {
        for (var deadline = DateTime.UtcNow.AddSeconds(30); _requests.Count(r => r.OperationId == operationId) < count; await Task.Delay(50))
        {
            Assert.True(DateTime.UtcNow < deadline, $"provisioning did not get request #{count} of {operationId} within 30 s");
        }
    }

    private async Task<(string Token, string OrgId)> SignupAsync(string email)
    {
        var token = await _app.SignupAndLoginAsync(email);
        return (token, (await _app.SendAsync(HttpMethod.Get, "/v1/me", token)).Body.GetProperty("orgs")[0].GetProperty("id").GetString()!);
    }

    private Task<(HttpStatusCode Status, JsonElement Body, HttpResponseMessage Response)> MoveAsync(string token, string orgId, string databaseId, object? targetGroupId) =>
        _app.SendAsync(HttpMethod.Post, $"/internal/v1/orgs/{orgId}/databases/{databaseId}/move", token, new { targetGroupId });

    private async Task<JsonElement> UntilAsync(string token, string databaseId, Func<JsonElement, bool> done)
    {
        for (var deadline = DateTime.UtcNow.AddSeconds(30); ; await Task.Delay(100))
        {
            var view = (await _app.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}", token)).Body;
            if (done(view))
            {
                return view;
            }

            Assert.True(DateTime.UtcNow < deadline, "not reached within 30 s: " + view);
        }
    }
}
