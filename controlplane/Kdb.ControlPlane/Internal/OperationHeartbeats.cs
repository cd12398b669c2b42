using Kdb.ControlPlane.Api;
using Kdb.ControlPlane.Data;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Internal;

/// <summary>
/// Provisioning says it is still working on a running operation. The reconciler re-sends the request of an operation not
/// heard of for <c>Operations:RepublishAfter</c>, which recovers a request lost with a crashed worker; without heartbeats
/// it also re-sent every long restore, backup or move every 30 s while it ran, and a second worker (or the same one)
/// then did the same work again alongside, slowing the first exactly when it was already slow.
/// </summary>
public static class OperationHeartbeats
{
    public static IEndpointRouteBuilder MapOperationHeartbeatEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/internal/v1/operations/{operationId}/heartbeat", HeartbeatAsync).RequireAuthorization(InternalAuth.Provisioning);
        return app;
    }

    private static async Task<IResult> HeartbeatAsync(string operationId, ControlPlaneDbContext db, TimeProvider time, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var touched = await db.Operations.Where(o => o.Id == operationId && o.Status == "running")
            .ExecuteUpdateAsync(s => s.SetProperty(o => o.LastPublishedAt, now), ct);
        return touched == 1 ? Results.NoContent() : Problems.NotFound("No such running operation.");
    }
}
