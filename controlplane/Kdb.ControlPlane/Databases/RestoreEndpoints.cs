using System.Text.Json;
using System.Text.Json.Serialization;
using Kdb.ControlPlane.Api;
using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Ids;
using Kdb.ControlPlane.Internal;
using Kdb.Contracts.V1;
using MassTransit;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Databases;

/// <summary>
/// <c>POST /v1/databases/{databaseId}/restore</c> <c>{backupId, target: "new"|"in_place", name?}</c>: 202 with the
/// operation and the target database (a new one in <c>restoring</c>, or the source itself in <c>restoring</c>).
/// Provisioning answers <see cref="RestoreCompleted"/> (the target becomes ready with the roles the backup
/// brought back) or <see cref="RestoreFailed"/>.
/// </summary>
public static class RestoreEndpoints
{
    public const string OperationKind = "database.restore";

    [JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
    public sealed record RestoreRequest(string? BackupId, string? Target, string? Name);

    public static IEndpointRouteBuilder MapRestoreEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/databases/{databaseId}/restore", RestoreAsync).RequireAuthorization();
        return app;
    }

    private static async Task<IResult> RestoreAsync(HttpContext http, string databaseId, RestoreRequest? request, ControlPlaneDbContext db, RouteSignal signal, TimeProvider time, CancellationToken ct)
    {
        var target = request?.Target;
        if (target is not ("new" or "in_place") || string.IsNullOrEmpty(request?.BackupId))
        {
            return Problems.Validation(new Dictionary<string, string[]> { ["body"] = ["backupId and target (new or in_place) are required"] });
        }

        // Overwriting a database takes an admin; restoring into a new one is like creating one: a developer.
        var inPlace = target == "in_place";
        var (source, denied) = await BackupEndpoints.RequireAsync(http, databaseId, inPlace ? OrgRoles.Admin : OrgRoles.Developer, db, ct);
        if (source is null)
        {
            return denied!;
        }

        var backup = await db.Backups.AsNoTracking().FirstOrDefaultAsync(b => b.Id == request.BackupId && b.DatabaseId == databaseId, ct);
        if (backup is null)
        {
            return Problems.NotFound("No such backup.");
        }

        if (backup.Status != "completed")
        {
            return Problems.Conflict("backup-not-completed", $"The backup is {backup.Status}; only a completed backup restores.");
        }

        var org = await db.Orgs.AsNoTracking().FirstAsync(o => o.Id == source.OrgId, ct);
        var limits = PlanLimits.For(org.Plan);
        var now = time.GetUtcNow();
        DatabaseRecord database;
        if (inPlace)
        {
            if (source.Status != "ready")
            {
                return Problems.Conflict("database-busy", $"The database is {source.Status}; an in-place restore needs it ready.");
            }

            database = await db.Databases.FirstAsync(d => d.Id == databaseId, ct);
            database.Status = "restoring";
            database.StatusReason = null;
        }
        else
        {
            var name = request.Name ?? string.Empty;
            if (!DatabaseEndpoints.NamePattern().IsMatch(name))
            {
                return Problems.Validation(new Dictionary<string, string[]> { ["name"] = ["a new database's name: 1 to 63 characters, a lowercase letter, then lowercase letters, digits, '_' or '-'"] });
            }

            if (await db.Databases.CountAsync(d => d.OrgId == org.Id && d.Status != "deleted", ct) >= limits.DatabasesPerOrg)
            {
                return Problems.Conflict("quota-exceeded", $"The {org.Plan} plan allows {limits.DatabasesPerOrg} databases per organization.");
            }

            if (await db.Databases.AnyAsync(d => d.OrgId == org.Id && d.Name == name && d.Status != "deleted", ct))
            {
                return Problems.Conflict("database-name-taken", $"A database named '{name}' already exists in this organization.");
            }

            database = new DatabaseRecord
            {
                Id = KdbIds.NewDatabaseId(),
                OrgId = org.Id,
                Name = name,
                Status = "restoring",
                QuotaState = "ok",
                TenantId = DatabaseEndpoints.NewTenantId(),
                CreatedAt = now,
            };
            db.Databases.Add(database);
        }

        var operationId = KdbIds.NewTimeOrdered("op_", time);
        // In place, the data as it was is kept in a safety backup first, recorded (kind safety) once provisioning reports it.
        var safetyId = inPlace ? KdbIds.NewTimeOrdered(BackupEndpoints.SafetyPrefix, time) : null;
        var requested = new RestoreRequested(operationId, now, backup.Id, databaseId, new RestoreTarget(database.Id, unchecked((ulong)database.TenantId), org.Id, limits.ToDatabaseLimits()), inPlace, safetyId);
        var operation = DatabaseRetentionEndpoints.Request(db, database, OperationKind, requested, now);
        await using (var tx = await db.Database.BeginTransactionAsync(ct))
        {
            try
            {
                await db.SaveChangesAsync(ct);
            }
            catch (DbUpdateException)
            {
                return Problems.Conflict("database-name-taken", $"A database named '{request.Name}' already exists in this organization.");
            }

            // In place the entry turns restoring; a new target (inserted at version 0) becomes a route.
            await RouteVersions.BumpAsync(db, database.Id, null, ct);

            await tx.CommitAsync(ct);
        }

        signal.Pulse();
        http.Response.Headers.Location = $"/v1/operations/{operation.Id}";
        return Results.Json(new { operation = DatabaseEndpoints.View(operation), database = DatabaseEndpoints.View(database) }, statusCode: StatusCodes.Status202Accepted);
    }
}

/// <summary>
/// A finished restore: the target is ready with exactly the roles the backup brought back. Two steps, like a
/// creation (DESIGN: no race after a change): the restored roles and tenant are routed first while the target is
/// still <c>restoring</c>, and it turns <c>ready</c> only once every live proxy has fetched them, so a client that
/// connects the moment it reads <c>ready</c> is checked against the restored verifiers, never the ones the target
/// had before. A crash between the steps leaves the operation running; a redelivery repeats both.
/// </summary>
internal sealed class RestoreCompletedConsumer(ControlPlaneDbContext db, RouteSignal signal, IProxyTracker proxies, TimeProvider time) : IConsumer<RestoreCompleted>
{
    public async Task Consume(ConsumeContext<RestoreCompleted> context)
    {
        var m = context.Message;
        var ct = context.CancellationToken;
        long routed;
        await using (var tx = await db.Database.BeginTransactionAsync(ct))
        {
            var running = await db.Operations.AnyAsync(o => o.Id == m.OperationId && o.ResourceId == m.TargetDatabaseId && o.Status == "running", ct);
            var database = await db.Databases.FirstOrDefaultAsync(d => d.Id == m.TargetDatabaseId, ct);
            if (!running || database is null)
            {
                return;
            }

            var now = time.GetUtcNow();
            await db.DatabaseRoles.Where(r => r.DatabaseId == database.Id).ExecuteDeleteAsync(ct);
            foreach (var role in m.RolesRestored)
            {
                var kind = role.Kind switch { RoleKind.Owner => "owner", RoleKind.ReadWrite => "readwrite", _ => "readonly" };
                db.DatabaseRoles.Add(new DatabaseRoleRecord { DatabaseId = database.Id, Name = role.Name, Kind = kind, ScramVerifier = role.ScramVerifier, CreatedAt = now });
            }

            if (m.TenantId is { } tenant)
            {
                database.TenantId = unchecked((long)tenant);
            }

            await db.SaveChangesAsync(ct);
            routed = await RouteVersions.BumpAsync(db, database.Id, null, ct);
            await tx.CommitAsync(ct);
        }

        signal.Pulse();
        await proxies.WaitForAsync(routed, ct);
        await OperationOutcomes.ApplyAsync(db, signal, m.OperationId, m.TargetDatabaseId, d =>
        {
            d.Status = "ready";
            d.StatusReason = null;
        }, true, null, time.GetUtcNow(), ct);
    }
}

/// <summary>
/// A failed restore: a new target fails with the reason; an in-place target returns to ready (provisioning
/// restores in place atomically, so the data it had is intact) with the reason noted.
/// </summary>
internal sealed class RestoreFailedConsumer(ControlPlaneDbContext db, RouteSignal signal, TimeProvider time) : IConsumer<RestoreFailed>
{
    public async Task Consume(ConsumeContext<RestoreFailed> context)
    {
        var m = context.Message;
        var inPlace = await db.Operations.AsNoTracking()
            .Where(o => o.Id == m.OperationId)
            .Select(o => o.RequestPayload)
            .FirstOrDefaultAsync(context.CancellationToken) is { } payload && JsonSerializer.Deserialize<RestoreRequested>(payload)?.InPlace == true;
        await OperationOutcomes.ApplyAsync(db, signal, m.OperationId, m.TargetDatabaseId, d =>
        {
            d.Status = inPlace ? "ready" : "failed";
            d.StatusReason = "restore failed: " + m.Reason;
        }, false, m.Reason, time.GetUtcNow(), context.CancellationToken);
    }
}
