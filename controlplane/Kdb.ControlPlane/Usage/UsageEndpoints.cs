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

    /// <summary>One bucket of one database: sums, its largest storage and connection count, and request units.</summary>
    public sealed record DatabaseUsagePoint(DateTimeOffset Start, long RowsRead, long RowsWritten, long BytesRead, long BytesWritten, long StorageBytes, long CpuMs, long EgressBytes, long Connections, double RequestUnits);

    public sealed record DatabaseUsageReport(string DatabaseId, DateTimeOffset From, DateTimeOffset To, string Granularity, IReadOnlyList<DatabaseUsagePoint> Items);

    /// <summary>
    /// Request units: 1 RU per 100 rows read, per 10 rows written, per MiB read or written, per 100 ms of CPU.
    /// </summary>
    public static double RequestUnits(long rowsRead, long rowsWritten, long bytesRead, long bytesWritten, long cpuMs) =>
        (rowsRead / 100.0) + (rowsWritten / 10.0) + ((bytesRead + bytesWritten) / 1048576.0) + (cpuMs / 100.0);

    public static IEndpointRouteBuilder MapUsageEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/internal/v1/usage", IngestAsync).RequireAuthorization(InternalAuth.UsageReporter)
            .Accepts<UsageRecord[]>("application/json").Produces(StatusCodes.Status202Accepted).ProducesValidationProblem();
        app.MapGet("/v1/orgs/{orgId}/usage", ReportAsync).RequireAuthorization();
        app.MapGet("/v1/databases/{databaseId}/usage", DatabaseReportAsync).RequireAuthorization();
        return app;
    }

    private static async Task<IResult> IngestAsync(HttpContext http, ControlPlaneDbContext db, QuotaCoalescer quotas, CancellationToken ct)
    {
        if (!http.Request.HasJsonContentType())
        {
            return Results.Problem("Send the batch as application/json.", statusCode: StatusCodes.Status415UnsupportedMediaType, type: Problems.TypeBase + "unsupported-media-type");
        }

        var (records, error) = await UsageBatchReader.ReadAsync(http.Request.BodyReader, MaxBatch, ct);
        if (records is null || records.Length == 0)
        {
            return Problems.Validation(new Dictionary<string, string[]> { ["records"] = [error ?? $"send 1 to {MaxBatch} records"] });
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

        if (Range(from, to, granularity, time) is not { } range)
        {
            return BadRange();
        }

        var (start, end, g) = range;

        // Only this org's databases: another org's usage, or whether it exists, never shows.
        var hours = await db.UsageHours.AsNoTracking()
            .Where(u => u.HourStart >= start && u.HourStart < end)
            .Join(db.Databases.Where(d => d.OrgId == orgId), u => u.DatabaseId, d => d.Id, (u, d) => u)
            .ToListAsync(ct);
        var buckets = hours
            .GroupBy(u => Bucket(u.HourStart, g))
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

    /// <summary>
    /// <c>GET /v1/databases/{databaseId}/usage</c>: one database's usage over time (any member of its org; another
    /// org's database, or a deleted one, is 404 as if it did not exist).
    /// </summary>
    private static async Task<IResult> DatabaseReportAsync(HttpContext http, string databaseId, DateTimeOffset? from, DateTimeOffset? to, string? granularity, ControlPlaneDbContext db, TimeProvider time, CancellationToken ct)
    {
        var (database, denied) = await Databases.BackupEndpoints.RequireAsync(http, databaseId, OrgRoles.Viewer, db, ct);
        if (database is null)
        {
            return denied!;
        }

        if (Range(from, to, granularity, time) is not { } range)
        {
            return BadRange();
        }

        var (start, end, g) = range;
        var hours = await db.UsageHours.AsNoTracking()
            .Where(u => u.DatabaseId == databaseId && u.HourStart >= start && u.HourStart < end)
            .OrderBy(u => u.HourStart)
            .ToListAsync(ct);
        var points = new List<DatabaseUsagePoint>();
        foreach (var b in hours.GroupBy(u => Bucket(u.HourStart, g)))
        {
            long rowsRead = 0, rowsWritten = 0, bytesRead = 0, bytesWritten = 0, storage = 0, cpu = 0, egress = 0, connections = 0;
            foreach (var u in b)
            {
                rowsRead += u.RowsRead;
                rowsWritten += u.RowsWritten;
                bytesRead += u.BytesRead;
                bytesWritten += u.BytesWritten;
                storage = Math.Max(storage, u.StorageBytes);
                cpu += u.CpuMs;
                egress += u.EgressBytes;
                connections = Math.Max(connections, u.Connections);
            }

            points.Add(new DatabaseUsagePoint(b.Key, rowsRead, rowsWritten, bytesRead, bytesWritten, storage, cpu, egress, connections, Math.Round(RequestUnits(rowsRead, rowsWritten, bytesRead, bytesWritten, cpu), 3)));
        }

        return Results.Ok(new DatabaseUsageReport(databaseId, start, end, g, points));
    }

    /// <summary>The report's window and granularity (default: the last 24 hours by hour), or null when invalid.</summary>
    private static (DateTimeOffset Start, DateTimeOffset End, string Granularity)? Range(DateTimeOffset? from, DateTimeOffset? to, string? granularity, TimeProvider time)
    {
        var g = granularity ?? "hour";
        var end = to ?? time.GetUtcNow();
        var start = from ?? end.AddDays(-1);
        return g is not ("hour" or "day") || start >= end || end - start > TimeSpan.FromDays(400) ? null : (start, end, g);
    }

    private static IResult BadRange() =>
        Problems.Validation(new Dictionary<string, string[]> { ["query"] = ["granularity is hour or day; from < to; at most 400 days"] });

    private static DateTimeOffset Bucket(DateTimeOffset hourStart, string granularity) =>
        granularity == "day" ? new DateTimeOffset(hourStart.UtcDateTime.Date, TimeSpan.Zero) : hourStart.ToUniversalTime();
}
