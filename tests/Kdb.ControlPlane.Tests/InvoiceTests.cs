using System.Net;
using Kdb.Testing;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Tests;

[Collection(TestCollections.Postgres)]
public sealed class InvoiceTests(SharedControlPlane cp) : IClassFixture<SharedControlPlane>
{
    private ControlPlaneApp App => cp.App;

    [Fact]
    public async Task Invoice_PricesTheMonthsUsageByPlan_PerDatabase()
    {
        var (owner, orgId, databaseId) = await ProOrgWithDatabaseAsync("priced");
        var now = DateTimeOffset.UtcNow;
        await IngestAsync(databaseId, now, rowsWritten: 10_000_000, storageBytes: 2_000_000_000, egressBytes: 10_000_000_000);
        var period = now.ToString("yyyy-MM", System.Globalization.CultureInfo.InvariantCulture);

        var invoice = await App.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/invoices/{period}", owner);

        Assert.Equal(HttpStatusCode.OK, invoice.Status);
        Assert.Equal("open", invoice.Body.GetProperty("status").GetString());
        Assert.Equal("USD", invoice.Body.GetProperty("currency").GetString());
        var lines = invoice.Body.GetProperty("lineItems").EnumerateArray().ToDictionary(l => l.GetProperty("description").GetString()!, l => l);
        Assert.Equal(25m, lines["pro plan"].GetProperty("amount").GetDecimal());
        Assert.Equal(1m, lines["Request units"].GetProperty("quantity").GetDecimal()); // 10,000,000 rows written / 10 = 1,000,000 RU
        Assert.Equal(0.20m, lines["Request units"].GetProperty("amount").GetDecimal());
        Assert.Equal(2m, lines["Storage"].GetProperty("quantity").GetDecimal());
        Assert.Equal(0m, lines["Storage"].GetProperty("amount").GetDecimal()); // 2 GB-hours × $0.0002 rounds to 0
        Assert.Equal(0.90m, lines["Egress"].GetProperty("amount").GetDecimal());
        Assert.Equal(databaseId, lines["Egress"].GetProperty("databaseId").GetString());
        Assert.Equal(26.10m, invoice.Body.GetProperty("total").GetDecimal());
    }

    [Fact]
    public async Task Invoice_AsCsv_HasHeaderLinesAndTotal()
    {
        var (owner, orgId, databaseId) = await ProOrgWithDatabaseAsync("csv");
        var now = DateTimeOffset.UtcNow;
        await IngestAsync(databaseId, now, rowsWritten: 10_000_000, storageBytes: 0, egressBytes: 0);
        var period = now.ToString("yyyy-MM", System.Globalization.CultureInfo.InvariantCulture);

        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/orgs/{orgId}/invoices/{period}");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", owner);
        request.Headers.Accept.ParseAdd("text/csv");
        using var response = await App.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/csv", response.Content.Headers.ContentType?.MediaType);
        var rows = (await response.Content.ReadAsStringAsync()).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("period,item,database_id,database_name,quantity,unit,unit_price,amount,currency", rows[0]);
        Assert.Equal($"{period},pro plan,,,1,month,25,25,USD", rows[1]);
        Assert.Equal($"{period},Request units,{databaseId},billed,1,million RU,0.20,0.20,USD", rows[2]);
        Assert.Equal($"{period},Total,,,,,,25.20,USD", rows[^1]);
    }

    [Fact]
    public async Task Invoices_ListEveryMonthSinceTheOrgBegan_NewestFirst_PastMonthsFinal()
    {
        var (owner, orgId, databaseId) = await ProOrgWithDatabaseAsync("months");
        var now = DateTimeOffset.UtcNow;
        var thisMonth = new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero);
        // The org has been pro since it began, two months ago.
        await BackdateAsync(orgId, thisMonth.AddMonths(-2).AddDays(3), thisMonth.AddMonths(-2).AddDays(3));
        await IngestAsync(databaseId, thisMonth.AddMonths(-1).AddHours(5), rowsWritten: 20_000_000, storageBytes: 0, egressBytes: 0);

        var list = await App.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/invoices", owner);

        var items = list.Body.GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(3, items.Count);
        Assert.Equal(["open", "final", "final"], items.Select(i => i.GetProperty("status").GetString()));
        Assert.Equal(thisMonth.AddMonths(-1).ToString("yyyy-MM", System.Globalization.CultureInfo.InvariantCulture), items[1].GetProperty("period").GetString());
        Assert.Equal(25.40m, items[1].GetProperty("total").GetDecimal());
        Assert.Equal(25m, items[2].GetProperty("total").GetDecimal());
        var before = thisMonth.AddMonths(-3).ToString("yyyy-MM", System.Globalization.CultureInfo.InvariantCulture);
        var after = thisMonth.AddMonths(1).ToString("yyyy-MM", System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/invoices/{before}", owner)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/invoices/{after}", owner)).Status);
    }

    [Fact]
    public async Task PastMonths_ArePricedByThePlansThenInEffect_WithTheBaseFeeSplitByTime()
    {
        var (owner, orgId, databaseId) = await ProOrgWithDatabaseAsync("history");
        var now = DateTimeOffset.UtcNow;
        var thisMonth = new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero);
        var lastMonth = thisMonth.AddMonths(-1);
        // Free since two months ago; the upgrade (recorded by the PATCH) happened on the 11th of last month at 00:30,
        // so it took effect from 00:00 that day.
        var upgradedAt = lastMonth.AddDays(10).AddMinutes(30);
        var effective = lastMonth.AddDays(10);
        await BackdateAsync(orgId, thisMonth.AddMonths(-2).AddDays(3), upgradedAt);
        await IngestAsync(databaseId, lastMonth.AddHours(5), rowsWritten: 10_000_000, storageBytes: 0, egressBytes: 0);
        await IngestAsync(databaseId, effective, rowsWritten: 10_000_000, storageBytes: 0, egressBytes: 0);

        var invoice = (await App.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/invoices/{lastMonth:yyyy-MM}", owner)).Body;

        var proShare = (decimal)(thisMonth - effective).Ticks / (thisMonth - lastMonth).Ticks;
        var proFee = Math.Round(25m * proShare, 2, MidpointRounding.AwayFromZero);
        var lines = invoice.GetProperty("lineItems").EnumerateArray().ToDictionary(l => l.GetProperty("description").GetString()!, l => l);
        Assert.Equal(0m, lines["free plan"].GetProperty("amount").GetDecimal());
        Assert.Equal(Math.Round(1 - proShare, 6), lines["free plan"].GetProperty("quantity").GetDecimal());
        Assert.Equal(proFee, lines["pro plan"].GetProperty("amount").GetDecimal());
        Assert.Equal(Math.Round(proShare, 6), lines["pro plan"].GetProperty("quantity").GetDecimal());
        Assert.Equal(0m, lines["Request units (free plan)"].GetProperty("amount").GetDecimal());
        Assert.Equal(1m, lines["Request units (free plan)"].GetProperty("quantity").GetDecimal());
        Assert.Equal(0.20m, lines["Request units (pro plan)"].GetProperty("amount").GetDecimal());
        Assert.Equal(proFee + 0.20m, invoice.GetProperty("total").GetDecimal());
        Assert.Equal("pro", invoice.GetProperty("plan").GetString());
        Assert.Equal(["free", "pro"], invoice.GetProperty("plans").EnumerateArray().Select(p => p.GetProperty("plan").GetString()));

        // Before the upgrade the org was free all month; this month it is pro all month.
        var list = (await App.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/invoices", owner)).Body.GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(["pro", "pro", "free"], list.Select(i => i.GetProperty("plan").GetString()));
        Assert.Equal([25m, proFee + 0.20m, 0m], list.Select(i => i.GetProperty("total").GetDecimal()));
    }

    [Theory]
    [InlineData("2026-13")]
    [InlineData("2026-1")]
    [InlineData("26-01")]
    [InlineData("abcd-ef")]
    public async Task Invoice_BadPeriod_Is400(string period)
    {
        var (owner, _, orgId) = await cp.UserAsync(SharedControlPlane.Email("period"));

        var result = await App.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/invoices/{period}", owner);

        Assert.Equal(HttpStatusCode.BadRequest, result.Status);
    }

    [Fact]
    public async Task Invoices_AdminsAndOwnersOnly_AndNotFoundForOtherOrgs()
    {
        var (owner, _, orgId) = await cp.UserAsync(SharedControlPlane.Email("billing"));
        var (admin, _) = await cp.JoinAsync(orgId, owner, "admin");
        var (developer, _) = await cp.JoinAsync(orgId, owner, "developer");
        var (viewer, _) = await cp.JoinAsync(orgId, owner, "viewer");
        var (stranger, _, _) = await cp.UserAsync(SharedControlPlane.Email("stranger"));
        var period = DateTimeOffset.UtcNow.ToString("yyyy-MM", System.Globalization.CultureInfo.InvariantCulture);

        foreach (var path in new[] { $"/v1/orgs/{orgId}/invoices", $"/v1/orgs/{orgId}/invoices/{period}" })
        {
            Assert.Equal(HttpStatusCode.OK, (await App.SendAsync(HttpMethod.Get, path, owner)).Status);
            Assert.Equal(HttpStatusCode.OK, (await App.SendAsync(HttpMethod.Get, path, admin)).Status);
            Assert.Equal(HttpStatusCode.Forbidden, (await App.SendAsync(HttpMethod.Get, path, developer)).Status);
            Assert.Equal(HttpStatusCode.Forbidden, (await App.SendAsync(HttpMethod.Get, path, viewer)).Status);
            Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Get, path, stranger)).Status);
        }
    }

    private async Task<(string Token, string OrgId, string DatabaseId)> ProOrgWithDatabaseAsync(string name)
    {
        var (token, _, orgId) = await cp.UserAsync(SharedControlPlane.Email(name));
        Assert.Equal(HttpStatusCode.OK, (await App.SendAsync(HttpMethod.Patch, $"/v1/orgs/{orgId}", token, new { plan = "pro" })).Status);
        var created = await App.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "billed" });
        return (token, orgId, created.Body.GetProperty("database").GetProperty("id").GetString()!);
    }

    /// <summary>Moves the org's creation and its one recorded plan change (the PATCH to pro) into the past.</summary>
    private async Task BackdateAsync(string orgId, DateTimeOffset createdAt, DateTimeOffset planChangedAt)
    {
        await cp.WithDbAsync(db => db.Orgs.Where(o => o.Id == orgId).ExecuteUpdateAsync(s => s.SetProperty(o => o.CreatedAt, createdAt)));
        Assert.Equal(1, await cp.WithDbAsync(db => db.OrgPlanChanges.Where(c => c.OrgId == orgId && c.FromPlan == "free" && c.ToPlan == "pro").ExecuteUpdateAsync(s => s.SetProperty(c => c.At, planChangedAt))));
    }

    private async Task IngestAsync(string databaseId, DateTimeOffset hour, long rowsWritten, long storageBytes, long egressBytes)
    {
        var node = await App.ServiceTokenAsync("kdb-node", ControlPlaneApp.NodeSecret);
        var record = new
        {
            source = "inv-" + Guid.NewGuid().ToString("N"),
            sequence = 1L,
            databaseId,
            hourStart = hour,
            rowsRead = 0L,
            rowsWritten,
            bytesRead = 0L,
            bytesWritten = 0L,
            storageBytes,
            cpuMs = 0L,
            egressBytes,
            connections = 1L,
        };
        Assert.Equal(HttpStatusCode.Accepted, (await App.SendAsync(HttpMethod.Post, "/internal/v1/usage", node, new[] { record })).Status);
    }
}
