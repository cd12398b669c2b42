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

/// <summary>
/// A provisioned database becomes <c>ready</c> in two steps (DESIGN: no race after a change): first its entry
/// is routed while it is still <c>provisioning</c>, then, once every live proxy has fetched that version (or
/// after the wait's timeout), it turns <c>ready</c>. A crash in between leaves the operation running, and the
/// reconciler's re-published request brings the outcome again.
/// </summary>
internal sealed class DatabaseProvisionedConsumer(ControlPlaneDbContext db, RouteSignal signal, IProxyTracker proxies, TimeProvider time) : IConsumer<DatabaseProvisioned>
{
    public async Task Consume(ConsumeContext<DatabaseProvisioned> context)
    {
        var m = context.Message;
        var ct = context.CancellationToken;
        var group = unchecked((long)m.GroupId);
        if (!await db.Operations.AnyAsync(o => o.Id == m.OperationId && o.ResourceId == m.DatabaseId && o.Status == "running", ct))
        {
            return;
        }

        long routed = 0;
        await using (var tx = await db.Database.BeginTransactionAsync(ct))
        {
            if (await db.Databases.Where(d => d.Id == m.DatabaseId && d.Status == "provisioning").ExecuteUpdateAsync(s => s.SetProperty(d => d.GroupId, group), ct) > 0)
            {
                routed = await RouteVersions.BumpAsync(db, m.DatabaseId, null, ct);
            }

            await tx.CommitAsync(ct);
        }

        if (routed > 0)
        {
            signal.Pulse();
            await proxies.WaitForAsync(routed, ct);
        }

        await OperationOutcomes.ApplyAsync(db, signal, m.OperationId, m.DatabaseId, d =>
        {
            d.Status = "ready";
            d.GroupId = group;
            d.StatusReason = null;
        }, true, null, time.GetUtcNow(), ct);
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
