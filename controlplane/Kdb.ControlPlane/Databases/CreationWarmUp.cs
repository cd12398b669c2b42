using System.Diagnostics;
using Kdb.ControlPlane.Api;
using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Ids;
using Kdb.ControlPlane.Internal;
using Kdb.Contracts.V1;
using Kdb.PgWire.Auth;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Databases;

/// <summary>
/// Runs the control plane's part of a database creation once, right after start-up, inside a transaction that is rolled
/// back: the request's checks (membership, plan, name), the insert of its operation and outbox rows, and the provisioned
/// outcome's queries and update. The first creation in a fresh cloud then finds the connection pool open and the query,
/// update and serialization paths compiled instead of paying for all of them (most of its time on a fresh process).
/// Nothing is committed and only absent ids are looked up; a failure is logged and changes nothing.
/// </summary>
internal sealed partial class CreationWarmUp(IServiceScopeFactory scopes, StartupState state, RouteSignal signal, TimeProvider time, ILogger<CreationWarmUp> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // After migrations and the start-up tasks: the schema must exist, and readiness must not wait for this.
        while (!state.IsReady)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(100), time, stoppingToken);
        }
        var started = Stopwatch.GetTimestamp();
        try
        {
            await RunAsync(stoppingToken);
            LogWarmed(logger, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
        catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
        {
            LogFailed(logger, e.Message);
        }
    }

    private async Task RunAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
        // The same query shapes as the create request, so they land in EF's query cache as the request's own.
        var orgId = "org_" + Convert.ToHexStringLower(Guid.NewGuid().ToByteArray(), 0, 8);
        var name = "warm-up";
        await OrgAccess.RequireAsync(db, orgId, "usr_" + orgId[4..], OrgRoles.Developer, ct);
        var plan = PlanLimits.For((await db.Orgs.AsNoTracking().FirstOrDefaultAsync(o => o.Id == orgId, ct))?.Plan ?? "free");
        await db.Databases.CountAsync(d => d.OrgId == orgId && d.Status != "deleted", ct);
        await db.Databases.AnyAsync(d => d.OrgId == orgId && d.Name == name && d.Status != "deleted", ct);

        var now = time.GetUtcNow();
        var verifier = ScramSha256Verifier.Create(Convert.ToBase64String(Guid.NewGuid().ToByteArray())).ToString();
        // Never added to the context: its organization does not exist. Only the operation and outbox rows are inserted.
        var database = new DatabaseRecord { Id = KdbIds.NewDatabaseId(), OrgId = orgId, Name = name, Status = "provisioning", QuotaState = "ok", CreatedAt = now };
        var operationId = KdbIds.NewTimeOrdered("op_", time);
        var requested = new DatabaseRequested(operationId, now, database.Id, 0, orgId, new RoleVerifier("owner", RoleKind.Owner, verifier), plan.ToDatabaseLimits());

        await using var tx = await db.Database.BeginTransactionAsync(ct);
        try
        {
            DatabaseRetentionEndpoints.Request(db, database, "database.create", requested, now);
            await db.SaveChangesAsync(ct);
            // The DatabaseProvisioned consumer's steps; the database is absent, so no route version is taken.
            await db.Operations.AsNoTracking()
                .Where(o => o.Id == operationId && o.ResourceId == database.Id && o.Status == "running")
                .Select(o => (DateTimeOffset?)o.CreatedAt)
                .FirstOrDefaultAsync(ct);
            await db.Databases.Where(d => d.Id == database.Id && d.Status == "provisioning").ExecuteUpdateAsync(s => s.SetProperty(d => d.GroupId, 1L), ct);
            await OperationOutcomes.ApplyAsync(db, signal, operationId, database.Id, d => d.Status = "ready", true, null, now, ct);
        }
        finally
        {
            await tx.RollbackAsync(CancellationToken.None);
        }
    }

    [LoggerMessage(LogLevel.Information, "Creation path warmed in {Milliseconds:0} ms")]
    private static partial void LogWarmed(ILogger logger, double milliseconds);

    [LoggerMessage(LogLevel.Warning, "Warming the creation path failed (the first creation will be slower): {Reason}")]
    private static partial void LogFailed(ILogger logger, string reason);
}
