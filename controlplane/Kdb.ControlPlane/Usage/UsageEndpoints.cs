using Kdb.ControlPlane.Api;
using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Identity;
using Kdb.ControlPlane.Internal;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using NpgsqlTypes;

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

        // One statement: receipts decide what is new (a repeated (source, sequence) adds nothing), and only
        // new records are added to the hourly sums, so a retried batch is harmless. The batch travels as one
        // binary array per field: nothing is re-serialized here or parsed as text by PostgreSQL.
        const string Sql = """
            WITH input AS (
                SELECT DISTINCT ON (x.source, x.sequence) x.*
                FROM unnest(@source, @sequence, @database, @hour, @rows_read, @rows_written, @bytes_read, @bytes_written, @storage, @cpu, @egress, @connections)
                    AS x(source, sequence, database_id, hour_start, rows_read, rows_written, bytes_read, bytes_written, storage, cpu, egress, connections)
            ), fresh AS (
                INSERT INTO usage_receipts ("Source", "Sequence") SELECT source, sequence FROM input
                ON CONFLICT DO NOTHING RETURNING "Source", "Sequence"
            )
            INSERT INTO usage_hourly AS u ("DatabaseId", "HourStart", "RowsRead", "RowsWritten", "BytesRead", "BytesWritten", "StorageBytes", "CpuMs", "EgressBytes", "Connections")
            SELECT i.database_id, date_trunc('hour', i.hour_start, 'UTC'), sum(i.rows_read), sum(i.rows_written), sum(i.bytes_read), sum(i.bytes_written),
                   max(i.storage), sum(i.cpu), sum(i.egress), max(i.connections)
            FROM input i JOIN fresh f ON f."Source" = i.source AND f."Sequence" = i.sequence
            GROUP BY 1, 2
            ON CONFLICT ("DatabaseId", "HourStart") DO UPDATE SET
                "RowsRead" = u."RowsRead" + EXCLUDED."RowsRead", "RowsWritten" = u."RowsWritten" + EXCLUDED."RowsWritten",
                "BytesRead" = u."BytesRead" + EXCLUDED."BytesRead", "BytesWritten" = u."BytesWritten" + EXCLUDED."BytesWritten",
                "StorageBytes" = GREATEST(u."StorageBytes", EXCLUDED."StorageBytes"), "CpuMs" = u."CpuMs" + EXCLUDED."CpuMs",
                "EgressBytes" = u."EgressBytes" + EXCLUDED."EgressBytes", "Connections" = GREATEST(u."Connections", EXCLUDED."Connections")
            """;
        await db.Database.ExecuteSqlRawAsync(Sql, Columns(records), ct);

        // The batch may move a quota state: its orgs are re-evaluated shortly, coalesced with other batches.
        quotas.Touch(records.Select(r => r.DatabaseId!));
        return Results.Accepted();
    }

    /// <summary>The batch as one array parameter per field, in <c>unnest</c>'s order.</summary>
    private static NpgsqlParameter[] Columns(UsageRecord[] records)
    {
        var n = records.Length;
        var (sources, databases) = (new string[n], new string[n]);
        var hours = new DateTimeOffset[n];
        var (sequences, rowsRead, rowsWritten, bytesRead, bytesWritten) = (new long[n], new long[n], new long[n], new long[n], new long[n]);
        var (storage, cpu, egress, connections) = (new long[n], new long[n], new long[n], new long[n]);
        for (var i = 0; i < n; i++)
        {
            var r = records[i];
            sources[i] = r.Source!;
            sequences[i] = r.Sequence;
            databases[i] = r.DatabaseId!;
            hours[i] = r.HourStart.ToUniversalTime();
            rowsRead[i] = r.RowsRead;
            rowsWritten[i] = r.RowsWritten;
            bytesRead[i] = r.BytesRead;
            bytesWritten[i] = r.BytesWritten;
            storage[i] = r.StorageBytes;
            cpu[i] = r.CpuMs;
            egress[i] = r.EgressBytes;
            connections[i] = r.Connections;
        }

        return
        [
            new NpgsqlParameter("source", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = sources },
            Bigints("sequence", sequences),
            new NpgsqlParameter("database", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = databases },
            new NpgsqlParameter("hour", NpgsqlDbType.Array | NpgsqlDbType.TimestampTz) { Value = hours },
            Bigints("rows_read", rowsRead), Bigints("rows_written", rowsWritten), Bigints("bytes_read", bytesRead), Bigints("bytes_written", bytesWritten),
            Bigints("storage", storage), Bigints("cpu", cpu), Bigints("egress", egress), Bigints("connections", connections),
        ];

        static NpgsqlParameter Bigints(string name, long[] values) => new(name, NpgsqlDbType.Array | NpgsqlDbType.Bigint) { Value = values };
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
