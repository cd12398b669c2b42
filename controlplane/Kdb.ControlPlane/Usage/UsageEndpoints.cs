using Kdb.ControlPlane.Api;
using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Identity;
using Kdb.ControlPlane.Internal;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Usage;

/// <summary>
/// Usage metering: nodes and proxies post batches to <c>/internal/v1/usage</c>, ingested idempotently per
/// (source, sequence) into hourly sums; orgs read them at <c>/v1/orgs/{orgId}/usage</c> with request units.
/// </summary>
public static class UsageEndpoints
{
    public const int MaxBatch = 10_000;

    public sealed record UsageRecord(
        string? Source,
        long Sequence,
        string? DatabaseId,
        DateTimeOffset HourStart,
        long RowsRead,
        long RowsWritten,
        long BytesRead,
        long BytesWritten,
        long StorageBytes,
        long CpuMs,
        long EgressBytes,
        long Connections);

    public sealed record UsagePoint(DateTimeOffset Start, long RowsRead, long RowsWritten, long BytesRead, long BytesWritten, long StorageBytes, long CpuMs, long EgressBytes, double RequestUnits);

    public sealed record UsageReport(string OrgId, DateTimeOffset From, DateTimeOffset To, string Granularity, IReadOnlyList<UsagePoint> Items);

    /// <summary>
    /// Request units: 1 RU per 100 rows read, per 10 rows written, per MiB read or written, per 100 ms of CPU.
    /// </summary>
    public static double RequestUnits(long rowsRead, long rowsWritten, long bytesRead, long bytesWritten, long cpuMs) =>
        (rowsRead / 100.0) + (rowsWritten / 10.0) + ((bytesRead + bytesWritten) / 1048576.0) + (cpuMs / 100.0);

    public static IEndpointRouteBuilder MapUsageEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/internal/v1/usage", IngestAsync).RequireAuthorization(InternalAuth.UsageReporter);
        app.MapGet("/v1/orgs/{orgId}/usage", ReportAsync).RequireAuthorization();
        return app;
    }

    private static async Task<IResult> IngestAsync(UsageRecord[]? records, ControlPlaneDbContext db, QuotaCoalescer quotas, CancellationToken ct)
    {
        if (records is null || records.Length is 0 or > MaxBatch)
        {
            return Problems.Validation(new Dictionary<string, string[]> { ["records"] = [$"send 1 to {MaxBatch} records"] });
        }

        for (var i = 0; i < records.Length; i++)
        {
            var r = records[i];
            if (string.IsNullOrEmpty(r.Source) || r.Source.Length > 64 || string.IsNullOrEmpty(r.DatabaseId) || r.DatabaseId.Length > 30
                || r.Sequence < 0 || r.RowsRead < 0 || r.RowsWritten < 0 || r.BytesRead < 0 || r.BytesWritten < 0
                || r.StorageBytes < 0 || r.CpuMs < 0 || r.EgressBytes < 0 || r.Connections < 0)
            {
                return Problems.Validation(new Dictionary<string, string[]> { [$"records[{i}]"] = ["source and databaseId are required; counters are not negative"] });
            }
        }

        await UsageIngest.IngestAsync(db, records, ct);

        // The batch may move a quota state: its orgs are re-evaluated shortly, coalesced with other batches.
        quotas.Touch(records.Select(r => r.DatabaseId!));
        return Results.Accepted();
    }

    private static async Task<IResult> ReportAsync(HttpContext http, string orgId, DateTimeOffset? from, DateTimeOffset? to, string? granularity, ControlPlaneDbContext db, TimeProvider time, CancellationToken ct)
    {
        if (await OrgAccess.MembershipAsync(db, orgId, http.User.UserId(), ct) is null)
        {
            return OrgAccess.OrgNotFound();
        }

        var g = granularity ?? "hour";
        var end = to ?? time.GetUtcNow();
        var start = from ?? end.AddDays(-1);
        if (g is not ("hour" or "day") || start >= end || end - start > TimeSpan.FromDays(400))
        {
            return Problems.Validation(new Dictionary<string, string[]> { ["query"] = ["granularity is hour or day; from < to; at most 400 days"] });
        }

        // Only this org's databases: another org's usage, or whether it exists, never shows.
        var hours = await db.UsageHours.AsNoTracking()
            .Where(u => u.HourStart >= start && u.HourStart < end)
            .Join(db.Databases.Where(d => d.OrgId == orgId), u => u.DatabaseId, d => d.Id, (u, d) => u)
            .ToListAsync(ct);
        var buckets = hours
            .GroupBy(u => g == "day" ? new DateTimeOffset(u.HourStart.UtcDateTime.Date, TimeSpan.Zero) : u.HourStart.ToUniversalTime())
            .OrderBy(b => b.Key)
            .Select(b => new UsagePoint(
                b.Key,
                b.Sum(u => u.RowsRead),
                b.Sum(u => u.RowsWritten),
                b.Sum(u => u.BytesRead),
                b.Sum(u => u.BytesWritten),
                b.GroupBy(u => u.DatabaseId).Sum(d => d.Max(u => u.StorageBytes)),
                b.Sum(u => u.CpuMs),
                b.Sum(u => u.EgressBytes),
                Math.Round(RequestUnits(b.Sum(u => u.RowsRead), b.Sum(u => u.RowsWritten), b.Sum(u => u.BytesRead), b.Sum(u => u.BytesWritten), b.Sum(u => u.CpuMs)), 3)))
            .ToList();
        return Results.Ok(new UsageReport(orgId, start, end, g, buckets));
    }
}
