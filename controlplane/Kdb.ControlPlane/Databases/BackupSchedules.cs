using System.Text.Json.Serialization;
using Kdb.ControlPlane.Api;
using Kdb.ControlPlane.Data;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Databases;

/// <summary>
/// <c>GET|PUT /v1/databases/{databaseId}/backup-schedule</c>: a cron expression (five fields, UTC) and a
/// retention of 1 to the plan's maximum days. <see cref="BackupScheduler"/> takes the backups.
/// </summary>
public static class BackupScheduleEndpoints
{
    [JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
    public sealed record PutScheduleRequest(string? Cron, int? RetentionDays, bool? Enabled);

    /// <summary>The schedule; with no schedule set, <c>enabled</c> is false and <c>cron</c> null.</summary>
    public sealed record ScheduleView(string DatabaseId, string? Cron, int RetentionDays, bool Enabled, DateTimeOffset? NextRunAt, DateTimeOffset? LastRunAt);

    public static IEndpointRouteBuilder MapBackupScheduleEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/databases/{databaseId}/backup-schedule").RequireAuthorization();
        group.MapGet("/", GetAsync);
        group.MapPut("/", PutAsync);
        return app;
    }

    private static async Task<IResult> GetAsync(HttpContext http, string databaseId, ControlPlaneDbContext db, CancellationToken ct)
    {
        var (database, denied) = await BackupEndpoints.RequireAsync(http, databaseId, OrgRoles.Viewer, db, ct);
        if (database is null)
        {
            return denied!;
        }

        var schedule = await db.BackupSchedules.AsNoTracking().FirstOrDefaultAsync(s => s.DatabaseId == databaseId, ct);
        if (schedule is null)
        {
            var plan = await db.Orgs.AsNoTracking().Where(o => o.Id == database.OrgId).Select(o => o.Plan).FirstAsync(ct);
            return Results.Ok(new ScheduleView(databaseId, null, (int)BackupEndpoints.RetentionFor(plan).TotalDays, false, null, null));
        }

        return Results.Ok(View(schedule));
    }

    private static async Task<IResult> PutAsync(HttpContext http, string databaseId, PutScheduleRequest? request, ControlPlaneDbContext db, TimeProvider time, CancellationToken ct)
    {
        var (database, denied) = await BackupEndpoints.RequireAsync(http, databaseId, OrgRoles.Admin, db, ct);
        if (database is null)
        {
            return denied!;
        }

        var plan = await db.Orgs.AsNoTracking().Where(o => o.Id == database.OrgId).Select(o => o.Plan).FirstAsync(ct);
        var maxDays = (int)BackupEndpoints.RetentionFor(plan).TotalDays;
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        CronSchedule? cron = null;
        try
        {
            cron = CronSchedule.Parse(request?.Cron);
        }
        catch (FormatException ex)
        {
            errors["cron"] = [ex.Message];
        }

        var now = time.GetUtcNow();
        var next = cron?.Next(now);
        if (cron is not null && next is null)
        {
            errors["cron"] = ["the expression never fires"];
        }

        var retention = request?.RetentionDays ?? maxDays;
        if (retention < 1 || retention > maxDays)
        {
            errors["retentionDays"] = [$"1 to {maxDays} days on the {plan} plan"];
        }

        if (errors.Count > 0)
        {
            return Problems.Validation(errors);
        }

        var schedule = await db.BackupSchedules.FirstOrDefaultAsync(s => s.DatabaseId == databaseId, ct);
        if (schedule is null)
        {
            schedule = new BackupScheduleRecord { DatabaseId = databaseId, OrgId = database.OrgId };
            db.BackupSchedules.Add(schedule);
        }

        schedule.Cron = cron!.Text;
        schedule.RetentionDays = retention;
        schedule.Enabled = request?.Enabled ?? true;
        schedule.NextRunAt = next!.Value;
        schedule.UpdatedAt = now;
        await db.SaveChangesAsync(ct);
        return Results.Ok(View(schedule));
    }

    private static ScheduleView View(BackupScheduleRecord s) => new(s.DatabaseId, s.Cron, s.RetentionDays, s.Enabled, s.Enabled ? s.NextRunAt : null, s.LastRunAt);
}

/// <summary>
/// Takes scheduled backups. A PostgreSQL-native scheduler rather than Quartz (whose hosting and JSON-serializer
/// packages are absent here): due schedules are claimed with <c>FOR UPDATE SKIP LOCKED</c> and their next run
/// advanced in the same transaction that requests the backup, so with several control-plane instances each
/// run fires exactly once, and a crash before commit leaves it due for the next sweep.
/// </summary>
internal sealed partial class BackupScheduler(IServiceScopeFactory scopes, StartupState state, IConfiguration configuration, TimeProvider time, ILogger<BackupScheduler> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = configuration.GetValue("Backups:SchedulerInterval", TimeSpan.FromSeconds(15));
        while (!stoppingToken.IsCancellationRequested)
        {
            await Task.Delay(interval, time, stoppingToken);
            if (!state.IsReady)
            {
                continue;
            }

            try
            {
                await RunDueAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogSchedulerFailed(logger, ex);
            }
        }
    }

    /// <summary>Requests a backup for every due schedule; returns how many were requested.</summary>
    internal async Task<int> RunDueAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
        var now = time.GetUtcNow();
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        var due = await db.BackupSchedules
            .FromSql($"SELECT * FROM backup_schedules WHERE \"Enabled\" AND \"NextRunAt\" <= {now} ORDER BY \"NextRunAt\" LIMIT 50 FOR UPDATE SKIP LOCKED")
            .ToListAsync(ct);
        var requested = 0;
        foreach (var schedule in due)
        {
            // A run missed while no instance was up is taken once, not once per missed slot.
            schedule.NextRunAt = CronSchedule.Parse(schedule.Cron).Next(now) ?? now.AddYears(5);
            schedule.LastRunAt = now;
            var database = await db.Databases.AsNoTracking().FirstOrDefaultAsync(d => d.Id == schedule.DatabaseId, ct);
            if (database is null || database.Status == "deleted")
            {
                db.BackupSchedules.Remove(schedule);
                continue;
            }

            if (database.Status != "ready")
            {
                LogSkipped(logger, database.Id, database.Status);
                continue;
            }

            BackupEndpoints.Request(db, database, TimeSpan.FromDays(schedule.RetentionDays), time);
            requested++;
        }

        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        return requested;
    }

    [LoggerMessage(LogLevel.Warning, "Backup scheduler failed; retrying at the next interval")]
    private static partial void LogSchedulerFailed(ILogger logger, Exception ex);

    [LoggerMessage(LogLevel.Information, "Scheduled backup of {DatabaseId} skipped: the database is {Status}")]
    private static partial void LogSkipped(ILogger logger, string databaseId, string status);
}
