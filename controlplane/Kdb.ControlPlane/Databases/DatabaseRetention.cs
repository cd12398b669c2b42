using System.Text.Json;
using Kdb.ControlPlane.Api;
using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Identity;
using Kdb.ControlPlane.Ids;
using Kdb.ControlPlane.Internal;
using Kdb.ControlPlane.Usage;
using Kdb.Contracts.V1;
using MassTransit;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Databases;

/// <summary>
/// The retention window of deleted databases (<c>Databases:RetentionWindow</c>, 7 days by default; zero drops the data
/// at deletion as before). A deletion suspends the database on its nodes and keeps its data; the record stays
/// <c>deleted</c> (hidden from every other endpoint). Before the window ends <c>POST /v1/databases/{id}/undelete</c>
/// brings it back; after it, <see cref="DatabaseRetention"/> purges it: the data is dropped, then the record, its roles
/// and schedule, and its backups (<c>Databases:BackupsOnPurge</c>: <c>expire</c> deletes them with their objects,
/// <c>keep</c> leaves them to their own expiry). When a database was deleted is the finish time of its last deletion.
/// </summary>
public static class DatabaseRetentionEndpoints
{
    public const string DeleteKind = "database.delete";
    public const string PurgeKind = "database.purge";
    public const string UndeleteKind = "database.undelete";

    /// <summary>A deleted database that can still be brought back.</summary>
    public sealed record DeletedDatabaseView(string Id, string OrgId, string Name, DateTimeOffset DeletedAt, DateTimeOffset PurgeAfter);

    public static IEndpointRouteBuilder MapDatabaseRetentionEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1").RequireAuthorization();
        group.MapGet("/orgs/{orgId}/deleted-databases", ListAsync)
            .Produces<OrgEndpoints.Page<DeletedDatabaseView>>().ProducesProblem(StatusCodes.Status404NotFound);
        group.MapPost("/databases/{databaseId}/undelete", UndeleteAsync)
            .Produces(StatusCodes.Status202Accepted).ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        return app;
    }

    public static TimeSpan Window(IConfiguration configuration) =>
        configuration.GetValue("Databases:RetentionWindow", TimeSpan.FromDays(7));

    private static async Task<IResult> ListAsync(HttpContext http, string orgId, ControlPlaneDbContext db, IConfiguration configuration, TimeProvider time, CancellationToken ct)
    {
        if (await OrgAccess.MembershipAsync(db, orgId, http.User.UserId(), ct) is null)
        {
            return OrgAccess.OrgNotFound();
        }

        var window = Window(configuration);
        var cutoff = time.GetUtcNow() - window;
        var rows = await (
            from d in db.Databases.AsNoTracking()
            where d.OrgId == orgId && d.Status == "deleted"
            let deletedAt = db.Operations.Where(o => o.ResourceId == d.Id && o.Kind == DeleteKind && o.Status == "succeeded").Max(o => o.FinishedAt)
            where deletedAt > cutoff
            orderby d.Id
            select new { d.Id, d.Name, DeletedAt = deletedAt!.Value }).Take(200).ToListAsync(ct);
        var items = new List<DeletedDatabaseView>(rows.Count);
        foreach (var row in rows)
        {
            if (await RecoverableAsync(db, row.Id, window, time.GetUtcNow(), ct) is not null)
            {
                items.Add(new DeletedDatabaseView(row.Id, orgId, row.Name, row.DeletedAt, row.DeletedAt + window));
            }
        }

        return Results.Ok(new OrgEndpoints.Page<DeletedDatabaseView>(items, null));
    }

    private static async Task<IResult> UndeleteAsync(HttpContext http, string databaseId, ControlPlaneDbContext db, IConfiguration configuration, TimeProvider time, CancellationToken ct)
    {
        var database = await db.Databases.FirstOrDefaultAsync(d => d.Id == databaseId && d.Status == "deleted", ct);
        // Another org's database, a live one, and one past its window are all "no such deleted database".
        var caller = database is null ? null : await OrgAccess.MembershipAsync(db, database.OrgId, http.User.UserId(), ct);
        if (database is null || caller is null)
        {
            return Problems.NotFound("No such deleted database.");
        }

        if (!OrgRoles.AtLeast(caller.Role, OrgRoles.Admin))
        {
            return OrgAccess.Forbidden(OrgRoles.Admin);
        }

        var now = time.GetUtcNow();
        if (await RecoverableAsync(db, database.Id, Window(configuration), now, ct) is null)
        {
            return Problems.NotFound("No such deleted database: its retention window has ended.");
        }

        var org = await db.Orgs.AsNoTracking().FirstAsync(o => o.Id == database.OrgId, ct);
        var plan = PlanLimits.For(org.Plan);
        if (await db.Databases.CountAsync(d => d.OrgId == database.OrgId && d.Status != "deleted", ct) >= plan.DatabasesPerOrg)
        {
            return Problems.Conflict("quota-exceeded", $"The {org.Plan} plan allows {plan.DatabasesPerOrg} databases per organization.");
        }

        if (await db.Databases.AnyAsync(d => d.OrgId == database.OrgId && d.Name == database.Name && d.Status != "deleted", ct))
        {
            return Problems.Conflict("database-name-taken", $"A database named '{database.Name}' exists again in this organization; delete or rename it first.");
        }

        var requested = new DatabaseUndeleteRequested(KdbIds.NewTimeOrdered("op_", time), now, database.Id, QuotaEvaluator.ToWire(database.QuotaState));
        var operation = Request(db, database, UndeleteKind, requested, now);
        // Routed again only once provisioning has made it usable (DatabaseUndeleted bumps the route).
        database.Status = "restoring";
        database.StatusReason = null;
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException)
        {
            return Problems.Conflict("database-name-taken", $"A database named '{database.Name}' exists again in this organization; delete or rename it first.");
        }

        return Results.Json(new { database = DatabaseEndpoints.View(database), operation = DatabaseEndpoints.View(operation) }, statusCode: StatusCodes.Status202Accepted);
    }

    /// <summary>Adds a running operation on the database for <paramref name="requested"/> and the event to the outbox (saved by the caller).</summary>
    internal static OperationRecord Request<T>(ControlPlaneDbContext db, DatabaseRecord database, string kind, T requested, DateTimeOffset now) where T : class, IKdbEvent
    {
        var operation = new OperationRecord
        {
            Id = requested.OperationId,
            OrgId = database.OrgId,
            Kind = kind,
            Status = "running",
            ResourceId = database.Id,
            RequestType = typeof(T).FullName!,
            RequestPayload = JsonSerializer.Serialize(requested),
            CreatedAt = now,
            LastPublishedAt = now,
        };
        db.Operations.Add(operation);
        Outbox.Add(db, requested, now);
        return operation;
    }

    /// <summary>
    /// When a deleted database was deleted, if it can still be brought back: its last deletion kept the data, the window
    /// has not ended, and no purge has started.
    /// </summary>
    internal static async Task<DateTimeOffset?> RecoverableAsync(ControlPlaneDbContext db, string databaseId, TimeSpan window, DateTimeOffset now, CancellationToken ct)
    {
        var deletion = await db.Operations.AsNoTracking()
            .Where(o => o.ResourceId == databaseId && o.Kind == DeleteKind && o.Status == "succeeded")
            .OrderByDescending(o => o.FinishedAt).FirstOrDefaultAsync(ct);
        if (deletion?.FinishedAt is not { } deletedAt || deletedAt + window <= now || !Retained(deletion))
        {
            return null;
        }

        return await db.Operations.AnyAsync(o => o.ResourceId == databaseId && o.Kind == PurgeKind, ct) ? null : deletedAt;
    }

    private static bool Retained(OperationRecord deletion)
    {
        try
        {
            return JsonSerializer.Deserialize<DatabaseDeletionRequested>(deletion.RequestPayload)?.Retain == true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>Finishes a purge: the record goes with its roles and schedule; its backups per <c>Databases:BackupsOnPurge</c>.</summary>
    internal static async Task CompletePurgeAsync(ControlPlaneDbContext db, OperationRecord operation, IConfiguration configuration, TimeProvider time, CancellationToken ct)
    {
        if (operation.Status != "running")
        {
            return;
        }

        var now = time.GetUtcNow();
        var databaseId = operation.ResourceId;
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        if (!string.Equals(configuration["Databases:BackupsOnPurge"], "keep", StringComparison.OrdinalIgnoreCase))
        {
            foreach (var backup in await db.Backups.Where(b => b.DatabaseId == databaseId).ToListAsync(ct))
            {
                BackupRetention.Expire(db, backup, now, time);
            }
        }

        await db.DatabaseRoles.Where(r => r.DatabaseId == databaseId).ExecuteDeleteAsync(ct);
        await db.BackupSchedules.Where(s => s.DatabaseId == databaseId).ExecuteDeleteAsync(ct);
        await db.Databases.Where(d => d.Id == databaseId && d.Status == "deleted").ExecuteDeleteAsync(ct);
        OperationOutcomes.Finish(operation, true, null, now);
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
    }
}

/// <summary>
/// Purges deleted databases whose retention window has ended: one <c>database.purge</c> operation each, whose
/// <see cref="DatabaseDeletionRequested"/> (without Retain) makes provisioning drop the data; the record goes when
/// <see cref="DatabaseDeleted"/> comes back. A failed or timed-out purge is requested again at the next sweep.
/// </summary>
internal sealed partial class DatabaseRetention(IServiceScopeFactory scopes, StartupState state, IConfiguration configuration, TimeProvider time, ILogger<DatabaseRetention> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = configuration.GetValue("Databases:PurgeInterval", TimeSpan.FromMinutes(1));
        while (!stoppingToken.IsCancellationRequested)
        {
            await Task.Delay(interval, time, stoppingToken);
            if (!state.IsReady || DatabaseRetentionEndpoints.Window(configuration) <= TimeSpan.Zero)
            {
                continue;
            }

            try
            {
                await PurgeDueAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogPurgeFailed(logger, ex);
            }
        }
    }

    /// <summary>Requests the purge of every deleted database past its window; returns how many were requested.</summary>
    internal async Task<int> PurgeDueAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
        var now = time.GetUtcNow();
        var cutoff = now - DatabaseRetentionEndpoints.Window(configuration);
        var due = await db.Databases.AsNoTracking()
            .Where(d => d.Status == "deleted"
                && !db.Operations.Any(o => o.ResourceId == d.Id && o.Kind == DatabaseRetentionEndpoints.PurgeKind && o.Status == "running")
                && db.Operations.Where(o => o.ResourceId == d.Id && o.Kind == DatabaseRetentionEndpoints.DeleteKind && o.Status == "succeeded").Max(o => o.FinishedAt) <= cutoff)
            .OrderBy(d => d.Id).Select(d => d.Id).Take(100).ToListAsync(ct);
        var requested = 0;
        foreach (var database in due)
        {
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            // Several control-plane instances: the row lock makes one of them request each purge.
            var locked = await db.Databases.FromSql($"SELECT * FROM databases WHERE \"Id\" = {database} AND \"Status\" = 'deleted' FOR UPDATE SKIP LOCKED").AsNoTracking().ToListAsync(ct);
            if (locked.Count == 0 || await db.Operations.AnyAsync(o => o.ResourceId == database && o.Kind == DatabaseRetentionEndpoints.PurgeKind && o.Status == "running", ct))
            {
                continue;
            }

            var purge = new DatabaseDeletionRequested(KdbIds.NewTimeOrdered("op_", time), now, database);
            DatabaseRetentionEndpoints.Request(db, locked[0], DatabaseRetentionEndpoints.PurgeKind, purge, now);
            await db.SaveChangesAsync(ct);
            await tx.CommitAsync(ct);
            requested++;
        }

        return requested;
    }

    [LoggerMessage(LogLevel.Warning, "Purging deleted databases failed; retrying at the next interval")]
    private static partial void LogPurgeFailed(ILogger logger, Exception ex);
}

/// <summary>Provisioning made an undeleted database usable again: it turns <c>ready</c> and is routed again.</summary>
internal sealed class DatabaseUndeletedConsumer(ControlPlaneDbContext db, RouteSignal signal, TimeProvider time) : IConsumer<DatabaseUndeleted>
{
    public Task Consume(ConsumeContext<DatabaseUndeleted> context)
    {
        var m = context.Message;
        return OperationOutcomes.ApplyAsync(db, signal, m.OperationId, m.DatabaseId, d =>
        {
            d.Status = "ready";
            d.StatusReason = null;
        }, true, null, time.GetUtcNow(), context.CancellationToken);
    }
}
