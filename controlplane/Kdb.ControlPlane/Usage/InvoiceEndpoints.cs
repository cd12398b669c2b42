using System.ComponentModel;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Kdb.ControlPlane.Api;
using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Identity;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Usage;

/// <summary>
/// Monthly statements: <c>GET /v1/orgs/{orgId}/invoices</c> (one per calendar month, UTC, since the org was
/// created; the current month is <c>open</c>) and <c>GET /v1/orgs/{orgId}/invoices/{yyyy-mm}</c> with line
/// items per database (JSON, or CSV with <c>Accept: text/csv</c>). Admins and owners only: billing is theirs.
/// </summary>
public static partial class InvoiceEndpoints
{
    public sealed record InvoiceSummary(string Period, string Status, string Plan, decimal Total, string Currency);

    public sealed record LineItem(string Description, string? DatabaseId, string? DatabaseName, decimal Quantity, string Unit, decimal UnitPrice, decimal Amount);

    /// <summary>
    /// A month's statement. <c>Plan</c> is the plan at the month's end; <c>Plans</c> every plan in effect during it.
    /// <c>LineItems</c> is one page of the <c>LineCount</c> lines (<c>NextCursor</c> asks for the next); <c>Total</c> covers them all.
    /// </summary>
    public sealed record Invoice(string OrgId, string Period, string Status, string Plan, DateTimeOffset PeriodStart, DateTimeOffset PeriodEnd, IReadOnlyList<LineItem> LineItems, decimal Total, string Currency, IReadOnlyList<PlanPeriod> Plans, int LineCount, string? NextCursor);

    /// <summary>Three lines per database: the default page holds a hundred databases' lines, the largest a thousand's.</summary>
    public const int DefaultLines = 300;

    public const int MaxLines = 3000;

    /// <summary>Sums of one database in one month under one plan (<see cref="PlanHistory.PlanOfBucket"/> of <c>Bucket</c>).</summary>
    public sealed record MonthUsage(DateTime Month, string DatabaseId, string DatabaseName, int Bucket, long RowsRead, long RowsWritten, long BytesRead, long BytesWritten, long CpuMs, long StorageByteHours, long EgressBytes);

    public static IEndpointRouteBuilder MapInvoiceEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/orgs/{orgId}/invoices", ListAsync).RequireAuthorization();
        app.MapGet("/v1/orgs/{orgId}/invoices/{period}", GetAsync).RequireAuthorization()
            .WithSummary("A month's statement")
            .WithDescription("Line items per database, a page at a time: `limit` lines (1 to 3000, default 300) from `cursor`, the `nextCursor` " +
                "of the previous page (null on the last). `lineCount` counts every line and `total` sums them, whichever page is asked. The open " +
                "month's lines can change between pages. With `Accept: text/csv` the whole statement as CSV, unpaged. A bad `cursor` or `limit` is a 400 validation problem.")
            .Produces<Invoice>()
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    [GeneratedRegex("^[0-9]{4}-(0[1-9]|1[0-2])$")]
    private static partial Regex PeriodPattern();

    private static async Task<IResult> ListAsync(HttpContext http, string orgId, ControlPlaneDbContext db, TimeProvider time, CancellationToken ct)
    {
        var (_, denied) = await OrgAccess.RequireAsync(db, orgId, http.User.UserId(), OrgRoles.Admin, ct);
        if (denied is not null)
        {
            return denied;
        }

        var org = await db.Orgs.AsNoTracking().FirstAsync(o => o.Id == orgId, ct);
        var current = MonthOf(time.GetUtcNow());
        var first = MonthOf(org.CreatedAt);
        var history = await PlanHistory.LoadAsync(db, org, ct);
        var usage = (await UsageAsync(db, orgId, history, first, current.AddMonths(1), ct)).ToLookup(u => u.Month);
        var items = new List<InvoiceSummary>();
        for (var month = current; month >= first && items.Count < 120; month = month.AddMonths(-1))
        {
            var invoice = Build(org, history, month, current, [.. usage[month.UtcDateTime]]);
            items.Add(new InvoiceSummary(invoice.Period, invoice.Status, invoice.Plan, invoice.Total, invoice.Currency));
        }

        return Results.Ok(new OrgEndpoints.Page<InvoiceSummary>(items, null));
    }

    private static async Task<IResult> GetAsync(
        HttpContext http,
        string orgId,
        string period,
        [Description(OffsetPaging.CursorDescription)] string? cursor,
        [Description("Line items per page, 1 to 3000 (default 300).")] string? limit,
        ControlPlaneDbContext db,
        TimeProvider time,
        CancellationToken ct)
    {
        var (_, denied) = await OrgAccess.RequireAsync(db, orgId, http.User.UserId(), OrgRoles.Admin, ct);
        if (denied is not null)
        {
            return denied;
        }

        if (!PeriodPattern().IsMatch(period))
        {
            return Problems.Validation(new Dictionary<string, string[]> { ["period"] = ["a month as yyyy-mm"] });
        }

        if (!OffsetPaging.TryRead(cursor, limit, DefaultLines, MaxLines, out var offset, out var take, out var badPage))
        {
            return badPage!;
        }

        var org = await db.Orgs.AsNoTracking().FirstAsync(o => o.Id == orgId, ct);
        var month = new DateTimeOffset(int.Parse(period[..4], CultureInfo.InvariantCulture), int.Parse(period[5..], CultureInfo.InvariantCulture), 1, 0, 0, 0, TimeSpan.Zero);
        var current = MonthOf(time.GetUtcNow());
        if (month > current || month < MonthOf(org.CreatedAt))
        {
            return Problems.NotFound("No invoice for that period.");
        }

        var history = await PlanHistory.LoadAsync(db, org, ct);
        var invoice = Build(org, history, month, current, await UsageAsync(db, orgId, history, month, month.AddMonths(1), ct));
        var accept = http.Request.Headers.Accept.ToString();
        if (accept.Contains("text/csv", StringComparison.OrdinalIgnoreCase))
        {
            http.Response.Headers.ContentDisposition = $"attachment; filename=\"invoice-{orgId}-{period}.csv\"";
            return Results.Text(Csv(invoice), "text/csv; charset=utf-8");
        }

        var count = invoice.LineItems.Count;
        return Results.Ok(invoice with { LineItems = [.. invoice.LineItems.Skip(offset).Take(take)], NextCursor = OffsetPaging.NextCursor(offset, take, count) });
    }

    /// <summary>
    /// The statement of one month: the base fee split between the plans in effect by their share of the month, and
    /// each database's usage priced by the plan of the hour it was used in.
    /// </summary>
    public static Invoice Build(Org org, PlanHistory history, DateTimeOffset month, DateTimeOffset currentMonth, IReadOnlyList<MonthUsage> usage)
    {
        var plans = history.PeriodsOf(month, org.CreatedAt);
        var lines = new List<LineItem>();
        foreach (var period in plans)
        {
            var fee = Pricing.For(period.Plan).BaseFee;
            lines.Add(new($"{period.Plan} plan", null, null, Math.Round(period.Share, 6), "month", fee, Pricing.Cents(period.Share * fee)));
        }

        foreach (var u in usage.OrderBy(u => u.DatabaseName, StringComparer.Ordinal).ThenBy(u => u.DatabaseId, StringComparer.Ordinal).ThenBy(u => u.Bucket))
        {
            var plan = history.PlanOfBucket(u.Bucket);
            var price = Pricing.For(plan);
            // With one plan all month the lines need not say which; otherwise each names the plan that priced it.
            var under = plans.Count > 1 ? $" ({plan} plan)" : string.Empty;
            var units = (decimal)UsageEndpoints.RequestUnits(u.RowsRead, u.RowsWritten, u.BytesRead, u.BytesWritten, u.CpuMs);
            var millions = Math.Round(units / 1_000_000m, 6);
            var gbHours = Math.Round(u.StorageByteHours / 1_000_000_000m, 6);
            var egressGb = Math.Round(u.EgressBytes / 1_000_000_000m, 6);
            lines.Add(new("Request units" + under, u.DatabaseId, u.DatabaseName, millions, "million RU", price.PerMillionRequestUnits, Pricing.Cents(millions * price.PerMillionRequestUnits)));
            lines.Add(new("Storage" + under, u.DatabaseId, u.DatabaseName, gbHours, "GB-hour", price.PerGbHour, Pricing.Cents(gbHours * price.PerGbHour)));
            lines.Add(new("Egress" + under, u.DatabaseId, u.DatabaseName, egressGb, "GB", price.PerEgressGb, Pricing.Cents(egressGb * price.PerEgressGb)));
        }

        var total = 0m;
        foreach (var line in lines)
        {
            total += line.Amount;
        }

        return new Invoice(
            org.Id,
            month.ToString("yyyy-MM", CultureInfo.InvariantCulture),
            month == currentMonth ? "open" : "final",
            history.PlanAt(month.AddMonths(1).AddHours(-1)),
            month,
            month.AddMonths(1),
            lines,
            total,
            Pricing.Currency,
            plans,
            lines.Count,
            null);
    }

    /// <summary>RFC 4180 CSV: a header row, one row per line item, and a total row.</summary>
    public static string Csv(Invoice invoice)
    {
        var csv = new StringBuilder("period,item,database_id,database_name,quantity,unit,unit_price,amount,currency\r\n");
        foreach (var line in invoice.LineItems)
        {
            Row(csv, invoice.Period, line.Description, line.DatabaseId, line.DatabaseName, line.Quantity, line.Unit, line.UnitPrice, line.Amount, invoice.Currency);
        }

        Row(csv, invoice.Period, "Total", null, null, null, null, null, invoice.Total, invoice.Currency);
        return csv.ToString();
    }

    private static void Row(StringBuilder csv, params object?[] fields)
    {
        for (var i = 0; i < fields.Length; i++)
        {
            if (i > 0)
            {
                csv.Append(',');
            }

            var text = fields[i] switch
            {
                null => string.Empty,
                decimal d => d.ToString(CultureInfo.InvariantCulture),
                var other => other.ToString() ?? string.Empty,
            };
            csv.Append(text.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + text.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : text);
        }

        csv.Append("\r\n");
    }

    // Deleted databases are included: they were billed while they existed.
    private static Task<List<MonthUsage>> UsageAsync(ControlPlaneDbContext db, string orgId, PlanHistory history, DateTimeOffset from, DateTimeOffset to, CancellationToken ct)
    {
        var thresholds = history.Thresholds;
        return db.Database.SqlQuery<MonthUsage>($"""
            SELECT date_trunc('month', u."HourStart", 'UTC') AT TIME ZONE 'UTC' AS "Month", d."Id" AS "DatabaseId", d."Name" AS "DatabaseName",
                   width_bucket(u."HourStart", {thresholds}::timestamptz[]) AS "Bucket",
                   sum(u."RowsRead")::bigint AS "RowsRead", sum(u."RowsWritten")::bigint AS "RowsWritten",
                   sum(u."BytesRead")::bigint AS "BytesRead", sum(u."BytesWritten")::bigint AS "BytesWritten", sum(u."CpuMs")::bigint AS "CpuMs",
                   sum(u."StorageBytes")::bigint AS "StorageByteHours", sum(u."EgressBytes")::bigint AS "EgressBytes"
            FROM usage_hourly u JOIN databases d ON d."Id" = u."DatabaseId"
            WHERE d."OrgId" = {orgId} AND u."HourStart" >= {from} AND u."HourStart" < {to}
            GROUP BY 1, 2, 3, 4
            """).ToListAsync(ct);
    }

    private static DateTimeOffset MonthOf(DateTimeOffset at)
    {
        var utc = at.ToUniversalTime();
        return new DateTimeOffset(utc.Year, utc.Month, 1, 0, 0, 0, TimeSpan.Zero);
    }
}
