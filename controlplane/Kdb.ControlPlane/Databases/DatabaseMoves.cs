using System.Text.Json;
using System.Text.Json.Serialization;
using Kdb.ControlPlane.Api;
using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Ids;
using Kdb.ControlPlane.Internal;
using Kdb.ControlPlane.Usage;
using Kdb.Contracts.V1;
using MassTransit;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Databases;

/// <summary>
/// <c>POST /internal/v1/orgs/{orgId}/databases/{databaseId}/move</c> <c>{targetGroupId?}</c> (operator scope): 202 with a
/// <c>database.move</c> operation; the database is <c>moving</c> (still routed to its source group) until provisioning
/// answers <see cref="DatabaseMoved"/> (ready on the new group, with the tenant the copy lives under) or
/// <see cref="DatabaseMoveFailed"/> (ready on its source group). The org in the path scopes the lookup: another org's
/// database is 404, like an unknown one.
/// </summary>
public static class DatabaseMoves
{
    public const string OperationKind = "database.move";

    [JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
    public sealed record MoveRequest(JsonElement? TargetGroupId);

    public static IEndpointRouteBuilder MapDatabaseMoveEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/internal/v1/orgs/{orgId}/databases/{databaseId}/move", MoveAsync).RequireAuthorization(InternalAuth.Operator);
        return app;
    }

    private static async Task<IResult> MoveAsync(string orgId, string databaseId, MoveRequest? request, ControlPlaneDbContext db, RouteSignal signal, TimeProvider time, CancellationToken ct)
    {
        var database = await db.Databases.FirstOrDefaultAsync(d => d.Id == databaseId && d.OrgId == orgId && d.Status != "deleted", ct);
        if (database is null)
        {
            return Problems.NotFound("No such database.");
        }

        // Without a target (absent or null) provisioning's placement picks one when it takes the request: it knows the
        // groups' fill and forms a new group when none has room. The event then carries 0, "any other group".
        ulong target = 0;
        if (request?.TargetGroupId is { ValueKind: not JsonValueKind.Null } named && (Placements.ParseGroupId(named) is not { } chosen || (target = chosen) == 0))
        {
            return Problems.Validation(new Dictionary<string, string[]> { ["targetGroupId"] = ["the shard group id, a non-zero unsigned 64-bit integer as a decimal string; leave it out to let placement choose"] });
        }

        if (database.Status != "ready" || database.GroupId is not { } source)
        {
            return Problems.Conflict("database-busy", $"The database is {database.Status}{(database.GroupId is null ? " and not placed" : "")}; a move needs it ready.");
        }

        if (unchecked((ulong)source) == target)
        {
            return Problems.Conflict("same-group", "The database is already on that shard group.");
        }

        var now = time.GetUtcNow();
        var requested = new DatabaseMoveRequested(KdbIds.NewTimeOrdered("op_", time), now, database.Id, unchecked((ulong)source), target, QuotaEvaluator.ToWire(database.QuotaState));
        var operation = DatabaseRetentionEndpoints.Request(db, database, OperationKind, requested, now);
        database.Status = "moving";
        database.StatusReason = null;
        await using (var tx = await db.Database.BeginTransactionAsync(ct))
        {
            await db.SaveChangesAsync(ct);
            await RouteVersions.BumpAsync(db, database.Id, null, ct);
            await tx.CommitAsync(ct);
        }

        signal.Pulse();
        return Results.Json(new { operation = DatabaseEndpoints.View(operation), database = DatabaseEndpoints.View(database) }, statusCode: StatusCodes.Status202Accepted);
    }
}

/// <summary>The database lives on its new group now (provisioning already pointed its placement there): ready again, under its new tenant.</summary>
internal sealed class DatabaseMovedConsumer(ControlPlaneDbContext db, RouteSignal signal, TimeProvider time) : IConsumer<DatabaseMoved>
{
    public Task Consume(ConsumeContext<DatabaseMoved> context) =>
        OperationOutcomes.ApplyAsync(db, signal, context.Message.OperationId, context.Message.DatabaseId, d => Moved(d, context.Message), true, null, time.GetUtcNow(), context.CancellationToken);

    private static void Moved(DatabaseRecord database, DatabaseMoved m)
    {
        database.Status = "ready";
        database.StatusReason = null;
        database.TenantId = unchecked((long)m.TenantId);
        database.GroupId = unchecked((long)m.GroupId);
    }
}

/// <summary>The move did not happen: the database is ready on its source group, with the reason noted.</summary>
internal sealed class DatabaseMoveFailedConsumer(ControlPlaneDbContext db, RouteSignal signal, TimeProvider time) : IConsumer<DatabaseMoveFailed>
{
    public Task Consume(ConsumeContext<DatabaseMoveFailed> context) =>
        OperationOutcomes.ApplyAsync(db, signal, context.Message.OperationId, context.Message.DatabaseId, d => (d.Status, d.StatusReason) = ("ready", "move failed: " + context.Message.Reason),
            false, context.Message.Reason, time.GetUtcNow(), context.CancellationToken);
}
