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

    public sealed record QuotaView(string OrgId, string Plan, Limits Limits, int Databases, double MonthlyRequestUnits, DateTimeOffset MonthStart, IReadOnlyList<DatabaseUsage> PerDatabase);

    /// <summary>Monthly request units each plan includes.</summary>
    public static double MonthlyRequestUnitsFor(string plan) => plan switch
    {
        "enterprise" => 1_000_000_000,
        "pro" => 50_000_000,
        _ => 1_000_000,
    };

    public static IEndpointRouteBuilder MapQuotaEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/orgs/{orgId}/quota", GetAsync).RequireAuthorization();
        return app;
    }

    private static async Task<IResult> GetAsync(HttpContext http, string orgId, ControlPlaneDbContext db, TimeProvider time, CancellationToken ct)
    {
        if (await OrgAccess.MembershipAsync(db, orgId, http.User.UserId(), ct) is null)
        {
            return OrgAccess.OrgNotFound();
        }

        var org = await db.Orgs.AsNoTracking().FirstAsync(o => o.Id == orgId, ct);
        var plan = PlanLimits.For(org.Plan);
        var now = time.GetUtcNow();
        var monthStart = new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero);
        var databases = await db.Databases.AsNoTracking().Where(d => d.OrgId == orgId && d.Status != "deleted").OrderBy(d => d.Id).ToListAsync(ct);
        var ids = databases.Select(d => d.Id).ToList();
        var hours = await db.UsageHours.AsNoTracking().Where(u => ids.Contains(u.DatabaseId) && u.HourStart >= monthStart).ToListAsync(ct);
        var units = hours.Sum(u => UsageEndpoints.RequestUnits(u.RowsRead, u.RowsWritten, u.BytesRead, u.BytesWritten, u.CpuMs));
        var latestStorage = hours.GroupBy(u => u.DatabaseId).ToDictionary(g => g.Key, g => g.MaxBy(u => u.HourStart)!.StorageBytes);
        return Results.Ok(new QuotaView(
            orgId,
            org.Plan,
            new Limits(plan.DatabasesPerOrg, plan.MaxConnections, plan.StatementsPerSecond, plan.MaxStorageBytes, MonthlyRequestUnitsFor(org.Plan)),
            databases.Count,
            Math.Round(units, 3),
            monthStart,
            databases.Select(d => new DatabaseUsage(d.Id, d.Name, latestStorage.GetValueOrDefault(d.Id, d.SizeBytes), d.QuotaState)).ToList()));
    }
}
