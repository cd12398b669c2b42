using System.ComponentModel;
using Kdb.ControlPlane.Api;
using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Databases;
using Kdb.ControlPlane.Identity;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Usage;

/// <summary><c>GET /v1/orgs/{orgId}/quota</c>: the plan's limits beside current usage.</summary>
public static class QuotaEndpoints
{
    public sealed record Limits(int DatabasesPerOrg, int MaxConnections, int StatementsPerSecond, long MaxStorageBytesPerDatabase, double MonthlyRequestUnits);

    public sealed record DatabaseUsage(string DatabaseId, string Name, long StorageBytes, string QuotaState);

    /// <summary>
    /// <c>PerDatabase</c> is one page of the org's <c>Databases</c>: those needing attention first (the worst quota state
    /// first), then the largest. <c>NextCursor</c> asks for the next page.
    /// </summary>
    public sealed record QuotaView(string OrgId, string Plan, Limits Limits, int Databases, double MonthlyRequestUnits, DateTimeOffset MonthStart, IReadOnlyList<DatabaseUsage> PerDatabase, string? NextCursor);

    /// <summary>One database with its month's sums and its latest storage (its recorded size before any usage arrived).</summary>
    public sealed record QuotaRow(string DatabaseId, string Name, string QuotaState, long StorageBytes, long RowsRead, long RowsWritten, long BytesRead, long BytesWritten, long CpuMs);

    public const int DefaultRows = 50;

    public const int MaxRows = 500;

    /// <summary>Monthly request units each plan includes.</summary>
    public static double MonthlyRequestUnitsFor(string plan) => plan switch
    {
        "enterprise" => 1_000_000_000,
        "pro" => 50_000_000,
        _ => 1_000_000,
    };

    public static IEndpointRouteBuilder MapQuotaEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/orgs/{orgId}/quota", GetAsync).RequireAuthorization()
            .WithSummary("The plan's limits beside this month's use")
            .WithDescription("`perDatabase` is a page of the org's databases: those needing attention first (suspended, read_only, throttled, " +
                "warning), then by storage, largest first, then by name. `limit` rows (1 to 500, default 50) from `cursor`, the `nextCursor` of the " +
                "previous page (null on the last); `databases` counts them all. A bad `cursor` or `limit` is a 400 validation problem.")
            .Produces<QuotaView>()
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    private static async Task<IResult> GetAsync(
        HttpContext http,
        string orgId,
        [Description(OffsetPaging.CursorDescription)] string? cursor,
        [Description("Databases per page, 1 to 500 (default 50).")] string? limit,
        ControlPlaneDbContext db,
        TimeProvider time,
        CancellationToken ct)
    {
        if (await OrgAccess.MembershipAsync(db, orgId, http.User.UserId(), ct) is null)
        {
            return OrgAccess.OrgNotFound();
        }

        if (!OffsetPaging.TryRead(cursor, limit, DefaultRows, MaxRows, out var offset, out var take, out var badPage))
        {
            return badPage!;
        }

        var org = await db.Orgs.AsNoTracking().FirstAsync(o => o.Id == orgId, ct);
        var plan = PlanLimits.For(org.Plan);
        var now = time.GetUtcNow();
        var monthStart = new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero);

        // Summed in the database: an org's month can hold hundreds of thousands of hourly rows.
        var rows = await db.Database.SqlQuery<QuotaRow>($"""
            SELECT d."Id" AS "DatabaseId", d."Name" AS "Name", d."QuotaState" AS "QuotaState",
                   coalesce(u.storage, d."SizeBytes") AS "StorageBytes",
                   coalesce(u.rows_read, 0) AS "RowsRead", coalesce(u.rows_written, 0) AS "RowsWritten",
                   coalesce(u.bytes_read, 0) AS "BytesRead", coalesce(u.bytes_written, 0) AS "BytesWritten", coalesce(u.cpu_ms, 0) AS "CpuMs"
            FROM databases d
            LEFT JOIN LATERAL (
                SELECT (array_agg(h."StorageBytes" ORDER BY h."HourStart" DESC))[1] AS storage,
                       sum(h."RowsRead")::bigint AS rows_read, sum(h."RowsWritten")::bigint AS rows_written,
                       sum(h."BytesRead")::bigint AS bytes_read, sum(h."BytesWritten")::bigint AS bytes_written, sum(h."CpuMs")::bigint AS cpu_ms
                FROM usage_hourly h
                WHERE h."DatabaseId" = d."Id" AND h."HourStart" >= {monthStart}
            ) u ON true
            WHERE d."OrgId" = {orgId} AND d."Status" <> 'deleted'
            """).ToListAsync(ct);

        var units = 0.0;
        foreach (var r in rows)
        {
            units += UsageEndpoints.RequestUnits(r.RowsRead, r.RowsWritten, r.BytesRead, r.BytesWritten, r.CpuMs);
        }

        rows.Sort(ByAttention);
        var page = new List<DatabaseUsage>(Math.Max(0, Math.Min(take, rows.Count - offset)));
        for (var i = offset; i < rows.Count && i < offset + take; i++)
        {
            page.Add(new DatabaseUsage(rows[i].DatabaseId, rows[i].Name, rows[i].StorageBytes, rows[i].QuotaState));
        }

        return Results.Ok(new QuotaView(
            orgId,
            org.Plan,
            new Limits(plan.DatabasesPerOrg, plan.MaxConnections, plan.StatementsPerSecond, plan.MaxStorageBytes, MonthlyRequestUnitsFor(org.Plan)),
            rows.Count,
            Math.Round(units, 3),
            monthStart,
            page,
            OffsetPaging.NextCursor(offset, take, rows.Count)));
    }

    private static int ByAttention(QuotaRow a, QuotaRow b)
    {
        var bySeverity = Severity(b.QuotaState).CompareTo(Severity(a.QuotaState));
        if (bySeverity != 0)
        {
            return bySeverity;
        }

        var byStorage = b.StorageBytes.CompareTo(a.StorageBytes);
        if (byStorage != 0)
        {
            return byStorage;
        }

        var byName = string.CompareOrdinal(a.Name, b.Name);
        return byName != 0 ? byName : string.CompareOrdinal(a.DatabaseId, b.DatabaseId);
    }

    private static int Severity(string quotaState) => quotaState switch
    {
        "suspended" => 4,
        "read_only" => 3,
        "throttled" => 2,
        "warning" => 1,
        _ => 0,
    };
}
