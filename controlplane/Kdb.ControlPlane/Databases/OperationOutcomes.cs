using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Internal;
using Kdb.Contracts.V1;
using Kdb.Messaging;
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
        var consumed = time.GetUtcNow();
        var group = unchecked((long)m.GroupId);
        var requestedAt = await db.Operations.AsNoTracking()
            .Where(o => o.Id == m.OperationId && o.ResourceId == m.DatabaseId && o.Status == "running")
            .Select(o => (DateTimeOffset?)o.CreatedAt)
            .FirstOrDefaultAsync(ct);
        if (requestedAt is null)
        {
            return;
        }

        CreationStages.RecordSince(CreationStages.OutcomeQueue, context.SentTime, consumed);

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

        var routedAt = time.GetUtcNow();
        await OperationOutcomes.ApplyAsync(db, signal, m.OperationId, m.DatabaseId, d =>
        {
            d.Status = "ready";
            d.GroupId = group;
            d.StatusReason = null;
        }, true, null, routedAt, ct);
        var readyAt = time.GetUtcNow();
        CreationStages.Record(CreationStages.Route, routedAt - consumed);
        CreationStages.Record(CreationStages.Ready, readyAt - routedAt);
        CreationStages.Record(CreationStages.Total, readyAt - requestedAt.Value);
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

internal sealed class DatabaseDeletedConsumer(ControlPlaneDbContext db, RouteSignal signal, IConfiguration configuration, TimeProvider time) : IConsumer<DatabaseDeleted>
{
    public async Task Consume(ConsumeContext<DatabaseDeleted> context)
    {
        var m = context.Message;
        var ct = context.CancellationToken;
        // The end of a retention window: the data is gone, and so goes the record.
        if (await db.Operations.FirstOrDefaultAsync(o => o.Id == m.OperationId && o.ResourceId == m.DatabaseId && o.Kind == DatabaseRetentionEndpoints.PurgeKind, ct) is { } purge)
        {
            await DatabaseRetentionEndpoints.CompletePurgeAsync(db, purge, configuration, time, ct);
            return;
        }

        await OperationOutcomes.ApplyAsync(db, signal, m.OperationId, m.DatabaseId, d => d.Status = "deleted", true, null, time.GetUtcNow(), ct);
    }
}
