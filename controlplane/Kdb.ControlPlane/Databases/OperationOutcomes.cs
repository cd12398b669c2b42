using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Internal;
using Kdb.Contracts.V1;
using MassTransit;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Databases;

internal static class OperationOutcomes
{
    public static void Finish(OperationRecord operation, bool succeeded, string? error, DateTimeOffset now)
    {
        operation.Status = succeeded ? "succeeded" : "failed";
        operation.Error = error;
        operation.FinishedAt = now;
    }

    /// <summary>
    /// Applies an outcome once: an operation no longer running (a duplicate delivery, or one that already
    /// timed out) is left as it is.
    /// </summary>
    public static async Task ApplyAsync(ControlPlaneDbContext db, RouteSignal signal, string operationId, string databaseId, Action<DatabaseRecord> change, bool succeeded, string? error, DateTimeOffset now, CancellationToken ct)
    {
        var operation = await db.Operations.FirstOrDefaultAsync(o => o.Id == operationId && o.ResourceId == databaseId, ct);
        if (operation is null || operation.Status != "running")
        {
            return;
        }

        var database = await db.Databases.FirstOrDefaultAsync(d => d.Id == databaseId, ct);
        if (database is not null)
        {
            change(database);
        }

        Finish(operation, succeeded, error, now);
        await db.SaveChangesAsync(ct);
        await RouteVersions.BumpAsync(db, databaseId, signal, ct);
    }
}

internal sealed class DatabaseProvisionedConsumer(ControlPlaneDbContext db, RouteSignal signal, TimeProvider time) : IConsumer<DatabaseProvisioned>
{
    public Task Consume(ConsumeContext<DatabaseProvisioned> context)
    {
        var m = context.Message;
        return OperationOutcomes.ApplyAsync(db, signal, m.OperationId, m.DatabaseId, d =>
        {
            d.Status = "ready";
            d.GroupId = unchecked((long)m.GroupId);
            d.StatusReason = null;
        }, true, null, time.GetUtcNow(), context.CancellationToken);
    }
}

internal sealed class DatabaseProvisioningFailedConsumer(ControlPlaneDbContext db, RouteSignal signal, TimeProvider time) : IConsumer<DatabaseProvisioningFailed>
{
    public Task Consume(ConsumeContext<DatabaseProvisioningFailed> context)
    {
        var m = context.Message;
        return OperationOutcomes.ApplyAsync(db, signal, m.OperationId, m.DatabaseId, d =>
        {
            d.Status = "failed";
            d.StatusReason = m.Reason;
        }, false, m.Reason, time.GetUtcNow(), context.CancellationToken);
    }
}

internal sealed class DatabaseDeletedConsumer(ControlPlaneDbContext db, RouteSignal signal, TimeProvider time) : IConsumer<DatabaseDeleted>
{
    public Task Consume(ConsumeContext<DatabaseDeleted> context)
    {
        var m = context.Message;
        return OperationOutcomes.ApplyAsync(db, signal, m.OperationId, m.DatabaseId, d => d.Status = "deleted", true, null, time.GetUtcNow(), context.CancellationToken);
    }
}
