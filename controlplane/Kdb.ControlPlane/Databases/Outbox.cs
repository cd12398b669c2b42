using System.Text.Json;
using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Internal;
using Kdb.Contracts.V1;
using Kdb.Messaging;
using MassTransit;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Databases;

/// <summary>
/// The transactional outbox: an event is a row written in the same EF transaction as the change it
/// announces, so the two never diverge (MassTransit's EF outbox package is not obtainable here).
/// </summary>
public static class Outbox
{
    public static void Add(ControlPlaneDbContext db, IKdbEvent message, DateTimeOffset now) =>
        db.Outbox.Add(new OutboxMessage { MessageType = message.GetType().FullName!, Payload = JsonSerializer.Serialize(message, message.GetType()), CreatedAt = now });

    /// <summary>Resolves an outbox row back into its event; unknown types are a clear error, never a guess.</summary>
    public static object Deserialize(string messageType, string payload)
    {
        var type = typeof(IKdbEvent).Assembly.GetType(messageType, throwOnError: false)
            ?? throw new InvalidOperationException($"outbox holds an unknown message type '{messageType}'");
        return JsonSerializer.Deserialize(payload, type) ?? throw new InvalidOperationException($"outbox payload of {messageType} is null");
    }
}

/// <summary>
/// Wakes this instance's outbox dispatcher once a request's rows are committed, so a new event leaves at once instead of
/// at the next poll (the poll alone cost a database creation 100 ms on average and 200 ms at worst).
/// </summary>
public sealed class OutboxSignal
{
    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes at the next <see cref="Pulse"/>; take it before looking for rows, so a pulse in between is kept.</summary>
    public Task Next => Volatile.Read(ref _next).Task;

    /// <summary>Call after the transaction that added outbox rows has committed.</summary>
    public void Pulse() => Interlocked.Exchange(ref _next, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
}

/// <summary>
/// Publishes outbox rows in order, several instances sharing the work through <c>FOR UPDATE SKIP LOCKED</c>. Rows
/// committed on this instance are published as soon as its <see cref="OutboxSignal"/> pulses; the poll finds those of
/// other instances and of requests whose pulse came while a batch was running.
/// </summary>
internal sealed partial class OutboxDispatcher(IServiceScopeFactory scopes, IBus bus, OutboxSignal signal, StartupState state, TimeProvider time, ILogger<OutboxDispatcher> logger) : BackgroundService
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(100);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            var published = 0;
            var wake = signal.Next;
            if (state.IsReady)
            {
                try
                {
                    published = await DispatchBatchAsync(stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogDispatchFailed(logger, ex);
                }
            }

            if (published == 0)
            {
                await Task.WhenAny(wake, Task.Delay(PollInterval, time, stoppingToken));
            }
        }
    }

    internal async Task<int> DispatchBatchAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        var batch = await db.Outbox
            .FromSqlRaw("SELECT * FROM outbox WHERE \"DispatchedAt\" IS NULL ORDER BY \"Id\" LIMIT 100 FOR UPDATE SKIP LOCKED")
            .ToListAsync(ct);
        foreach (var row in batch)
        {
            var message = Outbox.Deserialize(row.MessageType, row.Payload);
            if (message is DatabaseRequested)
            {
                CreationStages.Record(CreationStages.Outbox, time.GetUtcNow() - row.CreatedAt);
            }

            await bus.Publish(message, message.GetType(), ct);
            row.DispatchedAt = time.GetUtcNow();
        }

        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        return batch.Count;
    }

    [LoggerMessage(LogLevel.Warning, "Outbox dispatch failed; retrying")]
    private static partial void LogDispatchFailed(ILogger logger, Exception ex);
}

/// <summary>
/// Nothing stays stuck (DESIGN): an operation still running 30 s after its request was last published is
/// published again (consumers are idempotent), and one running longer than the timeout fails with a reason.
/// A move is the exception: only provisioning knows whether it passed the adopt (from then on it only goes forward,
/// and the route may already point at the new copy), so past the timeout the control plane does not guess. It keeps
/// re-sending the request, which provisioning, past its own shorter deadline, answers with a rollback
/// (<see cref="DatabaseMoveFailed"/>) or by finishing (<see cref="DatabaseMoved"/>); the database says so meanwhile.
/// </summary>
internal sealed partial class OperationReconciler(IServiceScopeFactory scopes, StartupState state, IConfiguration configuration, TimeProvider time, ILogger<OperationReconciler> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = configuration.GetValue("Operations:ReconcileInterval", TimeSpan.FromSeconds(5));
        while (!stoppingToken.IsCancellationRequested)
        {
            await Task.Delay(interval, time, stoppingToken);
            if (!state.IsReady)
            {
                continue;
            }

            try
            {
                await ReconcileAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogReconcileFailed(logger, ex);
            }
        }
    }

    internal async Task ReconcileAsync(CancellationToken ct)
    {
        var republishAfter = configuration.GetValue("Operations:RepublishAfter", TimeSpan.FromSeconds(30));
        var timeout = configuration.GetValue("Operations:Timeout", TimeSpan.FromMinutes(10));
        var now = time.GetUtcNow();
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
        var stale = await db.Operations.Where(o => o.Status == "running" && o.LastPublishedAt < now - republishAfter).ToListAsync(ct);
        var failed = new List<string>();
        foreach (var operation in stale)
        {
            if (operation.CreatedAt < now - timeout && operation.Kind == DatabaseMoves.OperationKind)
            {
                var overdue = $"move not finished {timeout.TotalSeconds:0} s after its request: provisioning is asked to finish it or roll it back (re-sent {now:u})";
                if (await db.Databases.Where(d => d.Id == operation.ResourceId && d.Status == "moving")
                    .ExecuteUpdateAsync(s => s.SetProperty(d => d.StatusReason, overdue), ct) == 0)
                {
                    // Not moving any more (its outcome came through another path, or it is gone): nothing left to ask for.
                    OperationOutcomes.Finish(operation, false, $"timed out after {timeout.TotalSeconds:0} s; the database is no longer moving", now);
                    continue;
                }
            }
            else if (operation.CreatedAt < now - timeout)
            {
                var reason = $"timed out after {timeout.TotalSeconds:0} s without an answer from provisioning";
                OperationOutcomes.Finish(operation, false, reason, now);
                if (operation.Kind == BackupEndpoints.OperationKind)
                {
                    var backup = await db.Backups.FirstOrDefaultAsync(b => b.Id == operation.ResourceId, ct);
                    if (backup is not null && backup.Status is "pending" or "running")
                    {
                        backup.Status = "failed";
                        backup.Error = reason;
                        backup.CompletedAt = now;
                    }

                    continue;
                }

                var database = await db.Databases.FirstOrDefaultAsync(d => d.Id == operation.ResourceId, ct);
                if (database is not null && database.Status is "provisioning" or "deleting" or "restoring")
                {
                    database.Status = "failed";
                    database.StatusReason = reason;
                    failed.Add(database.Id);
                }

                continue;
            }

            db.Outbox.Add(new OutboxMessage { MessageType = operation.RequestType, Payload = operation.RequestPayload, CreatedAt = now });
            operation.LastPublishedAt = now;
        }

        // The failed databases' new route versions are taken after their rows change, in the same transaction.
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        await db.SaveChangesAsync(ct);
        await RouteVersions.BumpAsync(db, failed.ToArray(), null, ct);
        await tx.CommitAsync(ct);
    }

    [LoggerMessage(LogLevel.Warning, "Operation reconciliation failed; retrying")]
    private static partial void LogReconcileFailed(ILogger logger, Exception ex);
}
