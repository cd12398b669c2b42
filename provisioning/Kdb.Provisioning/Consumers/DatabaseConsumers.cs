using System.Net;
using Kdb.Contracts.V1;
using Kdb.Messaging;
using Kdb.Node.Admin;
using Kdb.Provisioning.Placement;
using MassTransit;
using Microsoft.Extensions.Logging;
using WireState = Kdb.Node.Admin.Wire.DatabaseState;

namespace Kdb.Provisioning.Consumers;

/// <summary>
/// DatabaseRequested → placement → create on the group → DatabaseProvisioned. A final failure (no room, refused
/// request) publishes DatabaseProvisioningFailed with its reason; transient ones throw for the retry policy, and
/// past it the control plane's reconciler re-publishes the request until the operation times out into failed.
/// </summary>
internal sealed partial class DatabaseRequestedConsumer(DatabaseOperations databases, ILogger<DatabaseRequestedConsumer> logger) : IConsumer<DatabaseRequested>
{
    public async Task Consume(ConsumeContext<DatabaseRequested> context)
    {
        var m = context.Message;
        // The first attempt's wait is the bus's delivery; a later attempt's includes the failed ones and their backoff.
        CreationStages.RecordSince(context.GetRetryAttempt() == 0 && context.GetRedeliveryCount() == 0 ? CreationStages.Queue : CreationStages.Retried,
            context.SentTime, DateTimeOffset.UtcNow);
        try
        {
            var location = await databases.EnsureCreatedAsync(m.DatabaseId, m.TenantId, m.Owner, context.CancellationToken);
            if (location is null)
            {
                LogGone(logger, m.DatabaseId);
                return;
            }
            await context.Publish(new DatabaseProvisioned(m.OperationId, DateTimeOffset.UtcNow, m.DatabaseId, location.GroupId));
        }
        catch (Exception e) when (DatabaseOperations.IsFinal(e))
        {
            LogFailed(logger, m.DatabaseId, e.Message);
            await context.Publish(new DatabaseProvisioningFailed(m.OperationId, DateTimeOffset.UtcNow, m.DatabaseId, e.Message));
        }
    }

    [LoggerMessage(LogLevel.Information, "Database {DatabaseId} is gone from the control plane; nothing to provision")]
    private static partial void LogGone(ILogger logger, string databaseId);

    [LoggerMessage(LogLevel.Warning, "Provisioning database {DatabaseId} failed: {Reason}")]
    private static partial void LogFailed(ILogger logger, string databaseId, string reason);
}

/// <summary>
/// DatabaseDeletionRequested → drop on the group (one range delete), or with Retain (a retention window) suspend it and
/// keep the data → DatabaseDeleted; a later request without Retain is the purge. Repeats are harmless.
/// </summary>
internal sealed class DatabaseDeletionRequestedConsumer(DatabaseOperations databases) : IConsumer<DatabaseDeletionRequested>
{
    public async Task Consume(ConsumeContext<DatabaseDeletionRequested> context)
    {
        var m = context.Message;
        var ct = context.CancellationToken;
        // Never placed (or already purged): there is no data to drop.
        if (await databases.LocateAsync(m.DatabaseId, ct, includeDeleted: true) is { } location)
        {
            if (m.Retain)
            {
                await databases.SetStateIfHostedAsync(location, m.DatabaseId, WireState.Suspended, ct);
            }
            else
            {
                await databases.DropAsync(location, m.DatabaseId, ct);
            }
        }
        await context.Publish(new DatabaseDeleted(m.OperationId, DateTimeOffset.UtcNow, m.DatabaseId));
    }
}

/// <summary>
/// DatabaseUndeleteRequested → the retained database gets its quota's state back on its nodes → DatabaseUndeleted. Data
/// that is gone (never placed, or dropped) is a final failure: DatabaseProvisioningFailed with the reason.
/// </summary>
internal sealed class DatabaseUndeleteRequestedConsumer(DatabaseOperations databases) : IConsumer<DatabaseUndeleteRequested>
{
    public async Task Consume(ConsumeContext<DatabaseUndeleteRequested> context)
    {
        var m = context.Message;
        var ct = context.CancellationToken;
        var location = await databases.LocateAsync(m.DatabaseId, ct, includeDeleted: true);
        if (location is null || !await databases.SetStateIfHostedAsync(location, m.DatabaseId, QuotaStateChangedConsumer.ToWire(m.State), ct))
        {
            await context.Publish(new DatabaseProvisioningFailed(m.OperationId, DateTimeOffset.UtcNow, m.DatabaseId, "the database's data is no longer on its shard group"));
            return;
        }
        await context.Publish(new DatabaseUndeleted(m.OperationId, DateTimeOffset.UtcNow, m.DatabaseId));
    }
}

/// <summary>RoleChanged → SetRole or DeleteRole on the database's group.</summary>
internal sealed class RoleChangedConsumer(DatabaseOperations databases) : IConsumer<RoleChanged>
{
    public async Task Consume(ConsumeContext<RoleChanged> context)
    {
        var m = context.Message;
        var ct = context.CancellationToken;
        var location = await databases.LocateAsync(m.DatabaseId, ct)
            // Not placed yet: the retry comes back once DatabaseRequested has placed it.
            ?? throw new InvalidOperationException($"database {m.DatabaseId} has no placement yet");
        try
        {
            if (m.Deleted || m.ScramVerifier is null)
            {
                await databases.OnGroupAsync(location, (admin, t) => admin.DeleteRoleAsync(m.DatabaseId, m.Role, t), ct);
            }
            else
            {
                await databases.OnGroupAsync(location, (admin, t) => admin.SetRoleAsync(m.DatabaseId, DatabaseOperations.ToWire(new RoleVerifier(m.Role, m.Kind, m.ScramVerifier)), t), ct);
            }
        }
        catch (NodeAdminException e) when (e.Status == HttpStatusCode.NotFound && m.Deleted)
        {
            // Deleting a role that is already gone is done.
        }
    }
}

/// <summary>QuotaStateChanged → the node-enforced state (DESIGN, quotas): read_only, suspended, else active.</summary>
internal sealed class QuotaStateChangedConsumer(DatabaseOperations databases) : IConsumer<QuotaStateChanged>
{
    public async Task Consume(ConsumeContext<QuotaStateChanged> context)
    {
        var m = context.Message;
        var ct = context.CancellationToken;
        var location = await databases.LocateAsync(m.DatabaseId, ct)
            ?? throw new InvalidOperationException($"database {m.DatabaseId} has no placement yet");
        await databases.OnGroupAsync(location, (admin, t) => admin.SetStateOnGroupAsync(m.DatabaseId, location.GroupId, ToWire(m.State), t), ct);
        // A move may have flipped the placement meanwhile: the moved copy gets the state too (the mover carries over only
        // what reached the source before its flip).
        if (await databases.LocateAsync(m.DatabaseId, ct) is { } now && now.GroupId != location.GroupId)
        {
            await databases.OnGroupAsync(now, (admin, t) => admin.SetStateOnGroupAsync(m.DatabaseId, now.GroupId, ToWire(m.State), t), ct);
        }
    }

    public static WireState ToWire(QuotaState state) => state switch
    {
        QuotaState.ReadOnly => WireState.ReadOnly,
        QuotaState.Suspended => WireState.Suspended,
        _ => WireState.Active,
    };
}
