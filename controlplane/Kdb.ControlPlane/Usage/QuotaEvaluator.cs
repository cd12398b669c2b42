using System.Collections.Concurrent;
using Kdb.ControlPlane.Api;
using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Databases;
using Kdb.ControlPlane.Ids;
using Kdb.ControlPlane.Internal;
using Kdb.Contracts.V1;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Usage;

/// <summary>
/// Quota states from metering (DESIGN, Quotas): <c>suspended</c> when the org's monthly request units pass
/// 125% of the plan; else <c>read_only</c> when the database's storage passes 100%; else <c>throttled</c> when
/// request units pass 100%; else <c>warning</c> when any of request units, storage or connections is at 80%
/// or more; else <c>ok</c>. Each transition updates the database, bumps its route version, publishes
/// <see cref="QuotaStateChanged"/> through the outbox and writes an audit entry — in one transaction.
/// </summary>
public static class QuotaEvaluator
{
    /// <summary>The audit actor of transitions: metering, not a person.</summary>
    public const string Actor = "system:metering";

    public static readonly string[] States = ["ok", "warning", "throttled", "read_only", "suspended"];

    /// <summary>The state for the given usage against the given limits.</summary>
    public static string StateFor(double orgRequestUnits, double monthlyRequestUnits, long storageBytes, long maxStorageBytes, long connections, int maxConnections)
    {
        if (orgRequestUnits > monthlyRequestUnits * 1.25)
        {
            return "suspended";
        }

        if (storageBytes > maxStorageBytes)
        {
            return "read_only";
        }

        if (orgRequestUnits > monthlyRequestUnits)
        {
            return "throttled";
        }

        return orgRequestUnits >= monthlyRequestUnits * 0.8 || storageBytes >= maxStorageBytes * 0.8 || connections >= maxConnections * 0.8
            ? "warning"
            : "ok";
    }

    public static QuotaState ToWire(string state) => state switch
    {
        "warning" => QuotaState.Warning,
        "throttled" => QuotaState.Throttled,
        "read_only" => QuotaState.ReadOnly,
        "suspended" => QuotaState.Suspended,
        _ => QuotaState.Ok,
    };

    /// <summary>
    /// Re-evaluates every live database of <paramref name="orgIds"/> (request units are counted per org, so
    /// one database's usage can move its siblings) and records the transitions; returns how many there were.
    /// </summary>
    public static async Task<int> EvaluateAsync(ControlPlaneDbContext db, IReadOnlyCollection<string> orgIds, TimeProvider time, CancellationToken ct)
    {
        if (orgIds.Count == 0)
        {
            return 0;
        }

        // Most evaluations change nothing: find that out without a transaction or row locks, and lock only the
        // orgs that have a transition to record (then evaluate those again under the locks).
        var candidates = orgIds.ToArray();
        var unlocked = await db.Databases.AsNoTracking().Where(d => candidates.Contains(d.OrgId) && d.Status != "deleted").ToListAsync(ct);
        var states = await StatesAsync(db, unlocked, candidates, time.GetUtcNow(), ct);
        var moving = new HashSet<string>(StringComparer.Ordinal);
        foreach (var d in unlocked)
        {
            if (states[d.Id] != d.QuotaState)
            {
                moving.Add(d.OrgId);
            }
        }

        if (moving.Count == 0)
        {
            return 0;
        }

        var orgs = moving.ToArray();
        await using var tx = await db.Database.BeginTransactionAsync(ct);

        // Row locks in id order: two evaluations of one org run one after the other (and cannot deadlock), so
        // a transition is published once.
        var databases = await db.Databases
            .FromSql($"SELECT * FROM databases WHERE \"OrgId\" = ANY({orgs}) AND \"Status\" <> 'deleted' ORDER BY \"Id\" FOR UPDATE")
            .ToListAsync(ct);
        if (databases.Count == 0)
        {
            return 0;
        }

        // Read the clock only once the locks are held: transitions of one database then carry increasing
        // timestamps in the order they commit (and reach the outbox).
        var now = time.GetUtcNow();
        states = await StatesAsync(db, databases, orgs, now, ct);
        var moved = new List<string>();
        foreach (var d in databases)
        {
            var state = states[d.Id];
            if (state == d.QuotaState)
            {
                continue;
            }

            var previous = d.QuotaState;
            d.QuotaState = state;
            moved.Add(d.Id);
            Outbox.Add(db, new QuotaStateChanged(KdbIds.NewTimeOrdered("op_", time), now, d.Id, ToWire(state)), now);
            AuditLog.Record(db, d.OrgId, Actor, $"quota.state_changed {previous} -> {state}", d.Id, null, StatusCodes.Status200OK, now);
        }

        await db.SaveChangesAsync(ct);
        // Taken last: the version lock is held until commit (the rows are already locked, in id order).
        await RouteVersions.BumpAsync(db, moved.ToArray(), null, ct);
        await tx.CommitAsync(ct);
        return moved.Count;
    }

    /// <summary>The state each of <paramref name="databases"/> (every live database of <paramref name="orgs"/>) should be in now.</summary>
    private static async Task<Dictionary<string, string>> StatesAsync(ControlPlaneDbContext db, List<DatabaseRecord> databases, string[] orgs, DateTimeOffset now, CancellationToken ct)
    {
        var monthStart = new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero);
        var ids = databases.Select(d => d.Id).ToArray();
        var figures = await db.Database.SqlQuery<Figures>($"""
            SELECT d.id AS "DatabaseId",
                   COALESCE(m.rows_read, 0) AS "RowsRead", COALESCE(m.rows_written, 0) AS "RowsWritten",
                   COALESCE(m.bytes_read, 0) AS "BytesRead", COALESCE(m.bytes_written, 0) AS "BytesWritten", COALESCE(m.cpu_ms, 0) AS "CpuMs",
                   COALESCE(l."StorageBytes", 0) AS "StorageBytes", COALESCE(l."Connections", 0) AS "Connections"
            FROM unnest({ids}) AS d(id)
            LEFT JOIN LATERAL (
                SELECT sum(u."RowsRead")::bigint AS rows_read, sum(u."RowsWritten")::bigint AS rows_written, sum(u."BytesRead")::bigint AS bytes_read,
                       sum(u."BytesWritten")::bigint AS bytes_written, sum(u."CpuMs")::bigint AS cpu_ms
                FROM usage_hourly u WHERE u."DatabaseId" = d.id AND u."HourStart" >= {monthStart}) m ON true
            LEFT JOIN LATERAL (
                SELECT u."StorageBytes", u."Connections" FROM usage_hourly u WHERE u."DatabaseId" = d.id ORDER BY u."HourStart" DESC LIMIT 1) l ON true
            """).ToListAsync(ct);
        var byId = figures.ToDictionary(f => f.DatabaseId, StringComparer.Ordinal);
        var plans = await db.Orgs.AsNoTracking().Where(o => orgs.Contains(o.Id)).ToDictionaryAsync(o => o.Id, o => o.Plan, ct);
        var orgUnits = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var d in databases)
        {
            var f = byId[d.Id];
            orgUnits[d.OrgId] = orgUnits.GetValueOrDefault(d.OrgId) + UsageEndpoints.RequestUnits(f.RowsRead, f.RowsWritten, f.BytesRead, f.BytesWritten, f.CpuMs);
        }

        var states = new Dictionary<string, string>(databases.Count, StringComparer.Ordinal);
        foreach (var d in databases)
        {
            var plan = plans.GetValueOrDefault(d.OrgId, "free");
            var limits = PlanLimits.For(plan);
            var f = byId[d.Id];
            states[d.Id] = StateFor(orgUnits[d.OrgId], QuotaEndpoints.MonthlyRequestUnitsFor(plan), f.StorageBytes, limits.MaxStorageBytes, f.Connections, limits.MaxConnections);
        }

        return states;
    }

    /// <summary>One database's month-to-date counters and latest gauges.</summary>
    public sealed record Figures(string DatabaseId, long RowsRead, long RowsWritten, long BytesRead, long BytesWritten, long CpuMs, long StorageBytes, long Connections);
}

/// <summary>
/// Re-evaluates, every <c>Quotas:SweepInterval</c> (default 5 min), the orgs that have a database out of the
/// <c>ok</c> state: a new month or a plan change lifts states that no usage batch would revisit.
/// </summary>
internal sealed partial class QuotaSweep(IServiceScopeFactory scopes, StartupState state, Internal.RouteSignal signal, IConfiguration configuration, TimeProvider time, ILogger<QuotaSweep> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = configuration.GetValue("Quotas:SweepInterval", TimeSpan.FromMinutes(5));
        while (!stoppingToken.IsCancellationRequested)
        {
            await Task.Delay(interval, time, stoppingToken);
            if (!state.IsReady)
            {
                continue;
            }

            try
            {
                await using var scope = scopes.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
                var orgs = await db.Databases.AsNoTracking().Where(d => d.QuotaState != "ok" && d.Status != "deleted").Select(d => d.OrgId).Distinct().ToListAsync(stoppingToken);
                if (await QuotaEvaluator.EvaluateAsync(db, orgs, time, stoppingToken) > 0)
                {
                    signal.Pulse();
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogSweepFailed(logger, ex);
            }
        }
    }

    [LoggerMessage(LogLevel.Warning, "Quota sweep failed; retrying at the next interval")]
    private static partial void LogSweepFailed(ILogger logger, Exception ex);
}

/// <summary>
/// Evaluates the quotas of the orgs whose databases reported usage, coalesced: every org at most once per
/// <c>Quotas:EvaluationInterval</c> (default 1 s) however many batches arrive, off the ingestion path. Each
/// evaluation locks every live database of the org, so doing it per batch made concurrent senders queue.
/// </summary>
internal sealed partial class QuotaCoalescer(IServiceScopeFactory scopes, StartupState state, Internal.RouteSignal signal, IConfiguration configuration, TimeProvider time, ILogger<QuotaCoalescer> logger) : BackgroundService
{
    private readonly ConcurrentDictionary<string, byte> _pending = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _wake = new(0, 1);

    /// <summary>Notes databases that reported usage; their orgs are evaluated within the interval.</summary>
    public void Touch(IEnumerable<string> databaseIds)
    {
        foreach (var id in databaseIds)
        {
            _pending.TryAdd(id, 0);
        }

        try
        {
            _wake.Release();
        }
        catch (SemaphoreFullException)
        {
            // Already due to wake: the pending set is read then.
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = configuration.GetValue("Quotas:EvaluationInterval", TimeSpan.FromSeconds(1));
        while (!stoppingToken.IsCancellationRequested)
        {
            await _wake.WaitAsync(stoppingToken);
            if (!state.IsReady || _pending.IsEmpty)
            {
                continue;
            }

            var databaseIds = new List<string>(_pending.Count);
            foreach (var id in _pending.Keys)
            {
                if (_pending.TryRemove(id, out _))
                {
                    databaseIds.Add(id);
                }
            }

            try
            {
                await using var scope = scopes.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
                var orgIds = await db.Databases.AsNoTracking().Where(d => databaseIds.Contains(d.Id)).Select(d => d.OrgId).Distinct().ToListAsync(stoppingToken);
                if (await QuotaEvaluator.EvaluateAsync(db, orgIds, time, stoppingToken) > 0)
                {
                    signal.Pulse();
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Put them back: usage already stored must still be evaluated.
                foreach (var id in databaseIds)
                {
                    _pending.TryAdd(id, 0);
                }

                LogEvaluationFailed(logger, ex);
            }

            // The pause is what coalesces: batches arriving meanwhile are evaluated together afterwards.
            await Task.Delay(interval, time, stoppingToken);
            if (!_pending.IsEmpty)
            {
                Touch([]);
            }
        }
    }

    [LoggerMessage(LogLevel.Warning, "Quota evaluation of reported usage failed; retrying")]
    private static partial void LogEvaluationFailed(ILogger logger, Exception ex);
}
