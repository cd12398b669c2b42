using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Ids;
using Kdb.Contracts.V1;
using MassTransit;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Databases;

/// <summary>
/// The restore drill: every <c>Backups:DrillInterval</c> (default a day) the newest completed, not yet verified
/// backup of each database (up to <see cref="MaxBackupsPerDrill"/>) goes to provisioning in one
/// <see cref="RestoreDrillRequested"/>. The job's next run lives in <c>scheduled_jobs</c> and is claimed with
/// <c>FOR UPDATE SKIP LOCKED</c> and advanced in the transaction that publishes (through the outbox), so with
/// several control-plane instances a drill fires once.
/// </summary>
internal sealed partial class RestoreDrillScheduler(IServiceScopeFactory scopes, StartupState state, IConfiguration configuration, TimeProvider time, ILogger<RestoreDrillScheduler> logger) : BackgroundService
{
    public const string JobName = "restore-drill";
    public const int MaxBackupsPerDrill = 100;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var poll = configuration.GetValue("Backups:SchedulerInterval", TimeSpan.FromSeconds(15));
        while (!stoppingToken.IsCancellationRequested)
        {
            await Task.Delay(poll, time, stoppingToken);
            if (!state.IsReady)
            {
                continue;
            }

            try
            {
                await RunIfDueAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogDrillFailed(logger, ex);
            }
        }
    }

    /// <summary>Publishes a drill when one is due; returns the backups it names (empty when not due or nothing to verify).</summary>
    internal async Task<IReadOnlyList<string>> RunIfDueAsync(CancellationToken ct)
    {
        var interval = configuration.GetValue("Backups:DrillInterval", TimeSpan.FromDays(1));
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
        var now = time.GetUtcNow();
        await db.Database.ExecuteSqlAsync($"INSERT INTO scheduled_jobs (\"Name\", \"NextRunAt\") VALUES ({JobName}, {now}) ON CONFLICT DO NOTHING", ct);
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        var job = await db.ScheduledJobs
            .FromSql($"SELECT * FROM scheduled_jobs WHERE \"Name\" = {JobName} AND \"NextRunAt\" <= {now} FOR UPDATE SKIP LOCKED")
            .FirstOrDefaultAsync(ct);
        if (job is null)
        {
            return [];
        }

        job.NextRunAt = now + interval;
        job.LastRunAt = now;
        var candidates = await db.Backups.AsNoTracking()
            .Where(b => b.Status == "completed" && !b.Verified)
            .OrderByDescending(b => b.Id)
            .Select(b => new { b.Id, b.DatabaseId })
            .Take(MaxBackupsPerDrill * 10)
            .ToListAsync(ct);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var ids = new List<string>();
        foreach (var b in candidates)
        {
            if (ids.Count < MaxBackupsPerDrill && seen.Add(b.DatabaseId))
            {
                ids.Add(b.Id);
            }
        }

        if (ids.Count > 0)
        {
            Outbox.Add(db, new RestoreDrillRequested(KdbIds.NewTimeOrdered("op_", time), now, ids), now);
        }

        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        return ids;
    }

    [LoggerMessage(LogLevel.Warning, "Restore drill scheduling failed; retrying")]
    private static partial void LogDrillFailed(ILogger logger, Exception ex);
}

internal sealed class BackupVerifiedConsumer(ControlPlaneDbContext db, TimeProvider time) : IConsumer<BackupVerified>
{
    public Task Consume(ConsumeContext<BackupVerified> context) =>
        RestoreDrillOutcome.ApplyAsync(db, context.Message.BackupId, true, context.Message.Details, time.GetUtcNow(), context.CancellationToken);
}

internal sealed class RestoreDrillFailedConsumer(ControlPlaneDbContext db, TimeProvider time) : IConsumer<RestoreDrillFailed>
{
    public Task Consume(ConsumeContext<RestoreDrillFailed> context) =>
        RestoreDrillOutcome.ApplyAsync(db, context.Message.BackupId, false, context.Message.Details, time.GetUtcNow(), context.CancellationToken);
}

internal static class RestoreDrillOutcome
{
    // Idempotent: applying the same verdict twice leaves the same row.
    public static Task ApplyAsync(ControlPlaneDbContext db, string backupId, bool verified, string details, DateTimeOffset now, CancellationToken ct) =>
        db.Backups.Where(b => b.Id == backupId).ExecuteUpdateAsync(
            s => s.SetProperty(b => b.Verified, verified)
                .SetProperty(b => b.VerificationDetails, details.Length > 2000 ? details[..2000] : details)
                .SetProperty(b => b.VerifiedAt, now),
            ct);
}
