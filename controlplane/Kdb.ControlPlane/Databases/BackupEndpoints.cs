using System.Globalization;
using System.Text.Json;
using Kdb.ControlPlane.Api;
using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Identity;
using Kdb.ControlPlane.Ids;
using Kdb.Contracts.V1;
using MassTransit;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Databases;

/// <summary>
/// Backups on request: <c>POST /v1/databases/{databaseId}/backups</c> publishes <see cref="BackupRequested"/>
/// (through the outbox, as an operation the reconciler re-publishes until provisioning answers or it times
/// out); <see cref="BackupCompleted"/> and <see cref="BackupFailed"/> finish it. List, read, delete
/// (which publishes <see cref="BackupExpired"/> so provisioning removes the objects).
/// </summary>
public static class BackupEndpoints
{
    public const string OperationKind = "backup.create";

    /// <summary>Ids of the safety backups in-place restores take first (kind <c>safety</c>; others are <c>regular</c>), as long as
    /// other backup ids (30 characters).</summary>
    public const string SafetyPrefix = "bks_";

    /// <summary>Backup view (DESIGN: Backup); <c>raftIndex</c> is a u64 as a decimal string.</summary>
    public sealed record BackupView(string Id, string DatabaseId, string Status, bool Verified, long SizeBytes, string? Sha256, string RaftIndex, string? Error, DateTimeOffset CreatedAt, DateTimeOffset? CompletedAt, DateTimeOffset ExpiresAt, DateTimeOffset? VerifiedAt, string? VerificationDetails, string Kind);

    /// <summary>How long each plan keeps a backup.</summary>
    public static TimeSpan RetentionFor(string plan) => plan switch
    {
        "enterprise" => TimeSpan.FromDays(30),
        "pro" => TimeSpan.FromDays(7),
        _ => TimeSpan.FromDays(1),
    };

    public static IEndpointRouteBuilder MapBackupEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/databases/{databaseId}/backups").RequireAuthorization();
        group.MapPost("/", CreateAsync);
        group.MapGet("/", ListAsync);
        group.MapGet("/{backupId}", GetAsync);
        group.MapDelete("/{backupId}", DeleteAsync);
        return app;
    }

    private static async Task<IResult> CreateAsync(HttpContext http, string databaseId, ControlPlaneDbContext db, TimeProvider time, CancellationToken ct)
    {
        var (database, denied) = await RequireAsync(http, databaseId, OrgRoles.Developer, db, ct);
        if (database is null)
        {
            return denied!;
        }

        if (database.Status != "ready")
        {
            return Problems.Conflict("database-not-ready", $"The database is {database.Status}; a backup needs it ready.");
        }

        var plan = await db.Orgs.AsNoTracking().Where(o => o.Id == database.OrgId).Select(o => o.Plan).FirstAsync(ct);
        var (backup, operation) = Request(db, database, RetentionFor(plan), time);
        await db.SaveChangesAsync(ct);
        http.Response.Headers.Location = $"/v1/databases/{databaseId}/backups/{backup.Id}";
        return Results.Json(
            new { backup = View(backup), operation = new DatabaseEndpoints.OperationView(operation.Id, operation.Kind, operation.Status, operation.ResourceId, null, operation.CreatedAt, null) },
            statusCode: StatusCodes.Status202Accepted);
    }

    private static async Task<IResult> ListAsync(HttpContext http, string databaseId, string? cursor, int? limit, ControlPlaneDbContext db, CancellationToken ct)
    {
        var (database, denied) = await RequireAsync(http, databaseId, OrgRoles.Viewer, db, ct);
        if (database is null)
        {
            return denied!;
        }

        var take = Math.Clamp(limit ?? 50, 1, 200);
        var query = db.Backups.AsNoTracking().Where(b => b.DatabaseId == databaseId);
        if (!string.IsNullOrEmpty(cursor))
        {
            query = query.Where(b => string.Compare(b.Id, cursor) < 0);
        }

        // Newest first: ids are time-ordered.
        var rows = await query.OrderByDescending(b => b.Id).Take(take + 1).ToListAsync(ct);
        var items = rows.Take(take).Select(View).ToList();
        return Results.Ok(new OrgEndpoints.Page<BackupView>(items, rows.Count > take ? items[^1].Id : null));
    }

    private static async Task<IResult> GetAsync(HttpContext http, string databaseId, string backupId, ControlPlaneDbContext db, CancellationToken ct)
    {
        var (database, denied) = await RequireAsync(http, databaseId, OrgRoles.Viewer, db, ct);
        if (database is null)
        {
            return denied!;
        }

        var backup = await db.Backups.AsNoTracking().FirstOrDefaultAsync(b => b.Id == backupId && b.DatabaseId == databaseId, ct);
        return backup is null ? Problems.NotFound("No such backup.") : Results.Ok(View(backup));
    }

    private static async Task<IResult> DeleteAsync(HttpContext http, string databaseId, string backupId, ControlPlaneDbContext db, TimeProvider time, CancellationToken ct)
    {
        var (database, denied) = await RequireAsync(http, databaseId, OrgRoles.Admin, db, ct);
        if (database is null)
        {
            return denied!;
        }

        var backup = await db.Backups.FirstOrDefaultAsync(b => b.Id == backupId && b.DatabaseId == databaseId, ct);
        if (backup is null)
        {
            return Problems.NotFound("No such backup.");
        }

        if (backup.Status is "pending" or "running")
        {
            return Problems.Conflict("backup-busy", "The backup is still being taken; delete it once it has completed or failed.");
        }

        var now = time.GetUtcNow();
        BackupRetention.Expire(db, backup, now, time);
        await db.SaveChangesAsync(ct);
        return Results.NoContent();
    }

    /// <summary>Adds a pending backup, its operation and its <see cref="BackupRequested"/> to the context (saved by the caller).</summary>
    internal static (BackupRecord Backup, OperationRecord Operation) Request(ControlPlaneDbContext db, DatabaseRecord database, TimeSpan retention, TimeProvider time)
    {
        var now = time.GetUtcNow();
        var backup = new BackupRecord
        {
            Id = KdbIds.NewTimeOrdered("bkp_", time),
            DatabaseId = database.Id,
            OrgId = database.OrgId,
            Status = "pending",
            OperationId = KdbIds.NewTimeOrdered("op_", time),
            CreatedAt = now,
            ExpiresAt = now + retention,
        };
        var requested = new BackupRequested(backup.OperationId, now, backup.Id, database.Id, database.OrgId);
        var operation = new OperationRecord
        {
            Id = backup.OperationId,
            OrgId = database.OrgId,
            Kind = OperationKind,
            ResourceId = backup.Id,
            RequestType = typeof(BackupRequested).FullName!,
            RequestPayload = JsonSerializer.Serialize(requested),
            CreatedAt = now,
            LastPublishedAt = now,
        };
        db.Backups.Add(backup);
        db.Operations.Add(operation);
        Outbox.Add(db, requested, now);
        return (backup, operation);
    }

    internal static BackupView View(BackupRecord b) =>
        new(b.Id, b.DatabaseId, b.Status, b.Verified, b.SizeBytes, b.Sha256, unchecked((ulong)b.RaftIndex).ToString(CultureInfo.InvariantCulture), b.Error, b.CreatedAt, b.CompletedAt, b.ExpiresAt, b.VerifiedAt, b.VerificationDetails,
            b.Id.StartsWith(SafetyPrefix, StringComparison.Ordinal) ? "safety" : "regular");

    internal static async Task<(DatabaseRecord? Database, IResult? Denied)> RequireAsync(HttpContext http, string databaseId, string required, ControlPlaneDbContext db, CancellationToken ct)
    {
        var database = await db.Databases.AsNoTracking().FirstOrDefaultAsync(d => d.Id == databaseId && d.Status != "deleted", ct);
        var caller = database is null ? null : await OrgAccess.MembershipAsync(db, database.OrgId, http.User.UserId(), ct);
        if (database is null || caller is null)
        {
            return (null, Problems.NotFound("No such database."));
        }

        return OrgRoles.AtLeast(caller.Role, required) ? (database, null) : (null, OrgAccess.Forbidden(required));
    }
}

/// <summary>Backup outcomes from provisioning, applied once (a duplicate or late delivery changes nothing).</summary>
internal static class BackupOutcomes
{
    public static async Task ApplyAsync(ControlPlaneDbContext db, string operationId, string backupId, Action<BackupRecord> change, bool succeeded, string? error, DateTimeOffset now, CancellationToken ct)
    {
        var operation = await db.Operations.FirstOrDefaultAsync(o => o.Id == operationId && o.ResourceId == backupId, ct);
        var backup = await db.Backups.FirstOrDefaultAsync(b => b.Id == backupId, ct);
        if (operation is null || operation.Status != "running" || backup is null)
        {
            return;
        }

        change(backup);
        backup.CompletedAt = now;
        OperationOutcomes.Finish(operation, succeeded, error, now);
        await db.SaveChangesAsync(ct);
    }
}

internal sealed class BackupCompletedConsumer(ControlPlaneDbContext db, TimeProvider time) : IConsumer<BackupCompleted>
{
    public async Task Consume(ConsumeContext<BackupCompleted> context)
    {
        var m = context.Message;
        if (m.BackupId.StartsWith(BackupEndpoints.SafetyPrefix, StringComparison.Ordinal))
        {
            await RecordSafetyAsync(m, context.CancellationToken);
            return;
        }

        await BackupOutcomes.ApplyAsync(db, m.OperationId, m.BackupId, b =>
        {
            b.Status = "completed";
            b.SizeBytes = m.Result.SizeBytes;
            b.Sha256 = m.Result.Sha256;
            b.RaftIndex = unchecked((long)m.Result.RaftIndex);
            b.KeyId = m.Result.KeyId;
            b.Error = null;
        }, true, null, time.GetUtcNow(), context.CancellationToken);
    }

    /// <summary>
    /// The safety backup of an in-place restore: recorded once, completed, when the restore's request named it (so no other
    /// sender can add backups), and kept as long as the org's plan keeps backups.
    /// </summary>
    private async Task RecordSafetyAsync(BackupCompleted m, CancellationToken ct)
    {
        var payload = await db.Operations.AsNoTracking()
            .Where(o => o.Id == m.OperationId && o.Kind == RestoreEndpoints.OperationKind)
            .Select(o => o.RequestPayload).FirstOrDefaultAsync(ct);
        var request = payload is null ? null : JsonSerializer.Deserialize<RestoreRequested>(payload);
        if (request is not { InPlace: true } || request.SafetyBackupId != m.BackupId || request.SourceDatabaseId != m.DatabaseId
            || await db.Backups.AnyAsync(b => b.Id == m.BackupId, ct))
        {
            return;
        }

        var now = time.GetUtcNow();
        var plan = await db.Orgs.AsNoTracking().Where(o => o.Id == request.Target.OrgId).Select(o => o.Plan).FirstAsync(ct);
        db.Backups.Add(new BackupRecord
        {
            Id = m.BackupId,
            DatabaseId = m.DatabaseId,
            OrgId = request.Target.OrgId,
            Status = "completed",
            SizeBytes = m.Result.SizeBytes,
            Sha256 = m.Result.Sha256,
            RaftIndex = unchecked((long)m.Result.RaftIndex),
            KeyId = m.Result.KeyId,
            OperationId = m.OperationId,
            CreatedAt = m.Timestamp,
            CompletedAt = now,
            ExpiresAt = now + BackupEndpoints.RetentionFor(plan),
        });
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException)
        {
            // A duplicate delivery recorded it first (the primary key refused this one); anything else is retried.
            if (!await db.Backups.AsNoTracking().AnyAsync(b => b.Id == m.BackupId, ct))
            {
                throw;
            }
        }
    }
}

internal sealed class BackupFailedConsumer(ControlPlaneDbContext db, TimeProvider time) : IConsumer<BackupFailed>
{
    public Task Consume(ConsumeContext<BackupFailed> context)
    {
        var m = context.Message;
        return BackupOutcomes.ApplyAsync(db, m.OperationId, m.BackupId, b =>
        {
            b.Status = "failed";
            b.Error = m.Reason;
        }, false, m.Reason, time.GetUtcNow(), context.CancellationToken);
    }
}

/// <summary>
/// Retention: every <c>Backups:RetentionInterval</c> (default 1 min) backups past their expiry are removed and
/// <see cref="BackupExpired"/> published for the completed ones. Rows are claimed with <c>FOR UPDATE SKIP
/// LOCKED</c>, so with several control-plane instances each backup expires once.
/// </summary>
internal sealed partial class BackupRetention(IServiceScopeFactory scopes, StartupState state, IConfiguration configuration, TimeProvider time, ILogger<BackupRetention> logger) : BackgroundService
{
    public static void Expire(ControlPlaneDbContext db, BackupRecord backup, DateTimeOffset now, TimeProvider time)
    {
        if (backup.Status == "completed")
        {
            Outbox.Add(db, new BackupExpired(KdbIds.NewTimeOrdered("op_", time), now, backup.Id), now);
        }

        db.Backups.Remove(backup);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = configuration.GetValue("Backups:RetentionInterval", TimeSpan.FromMinutes(1));
        while (!stoppingToken.IsCancellationRequested)
        {
            await Task.Delay(interval, time, stoppingToken);
            if (!state.IsReady)
            {
                continue;
            }

            try
            {
                await ExpireDueAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogRetentionFailed(logger, ex);
            }
        }
    }

    internal async Task<int> ExpireDueAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
        var now = time.GetUtcNow();
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        var due = await db.Backups
            .FromSql($"SELECT * FROM backups WHERE \"ExpiresAt\" <= {now} AND \"Status\" IN ('completed', 'failed') ORDER BY \"Id\" LIMIT 100 FOR UPDATE SKIP LOCKED")
            .ToListAsync(ct);
        foreach (var backup in due)
        {
            Expire(db, backup, now, time);
        }

        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        return due.Count;
    }

    [LoggerMessage(LogLevel.Warning, "Backup retention failed; retrying at the next interval")]
    private static partial void LogRetentionFailed(ILogger logger, Exception ex);
}
