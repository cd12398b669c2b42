using System.Globalization;
using System.Net;
using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace Kdb.Portal.Tests;

/// <summary>Billing: the plan, this month's and past statements with line items, the CSV download.</summary>
[Collection(PortalCollection.Name)]
public sealed class BillingTests(PortalCloud cloud, ITestOutputHelper output)
{
    [Fact]
    public Task Billing_PlanChangeStatementsLineItemsAndCsv() => BrowserRun.RunAsync(cloud, output, async page =>
    {
        const string Email = "billing@example.com";
        var (token, orgId) = await cloud.SignupThroughApiAsync(Email, Steps.Password);
        var databaseId = await Steps.ReadyDatabaseAsync(cloud, token, orgId, "billed");

        // The org is made two months old, and a node reports usage in this month and the last.
        await cloud.BackdateOrgAsync(orgId, TimeSpan.FromDays(62));
        var now = DateTimeOffset.UtcNow;
        var thisHour = new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, 0, 0, TimeSpan.Zero);
        var lastMonth = new DateTimeOffset(now.Year, now.Month, 1, 12, 0, 0, TimeSpan.Zero).AddMonths(-1);
        var node = await cloud.TokenAsync(new() { ["grant_type"] = "client_credentials", ["client_id"] = "kdb-node", ["client_secret"] = PortalCloud.NodeSecret });
        var source = "billing-node-" + Guid.NewGuid().ToString("N")[..8];
        var usage = await cloud.SendAsync(HttpMethod.Post, "/internal/v1/usage", node!, new[]
        {
            new { source, sequence = 1, databaseId, hourStart = thisHour, rowsRead = 200_000_000L, rowsWritten = 0L, bytesRead = 0L, bytesWritten = 0L, storageBytes = 2_000_000_000L, cpuMs = 0L, egressBytes = 5_000_000_000L, connections = 1 },
            new { source, sequence = 2, databaseId, hourStart = lastMonth, rowsRead = 100_000_000L, rowsWritten = 0L, bytesRead = 0L, bytesWritten = 0L, storageBytes = 1_000_000_000L, cpuMs = 0L, egressBytes = 0L, connections = 1 },
        });
        Assert.Equal(HttpStatusCode.Accepted, usage.Status);

        await Steps.LoginAsync(page, Email);
        await page.GetByRole(AriaRole.Link, new() { Name = "Billing" }).ClickAsync();
        await Expect(page.GetByTestId("billing-plan")).ToHaveTextAsync("free");
        await page.GetByLabel("Change plan").SelectOptionAsync("pro");
        await page.GetByRole(AriaRole.Button, new() { Name = "Change plan" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("The plan is now pro.");
        await Expect(page.GetByTestId("billing-plan")).ToHaveTextAsync("pro");

        var period = now.ToString("yyyy-MM", CultureInfo.InvariantCulture);
        var previous = lastMonth.ToString("yyyy-MM", CultureInfo.InvariantCulture);
        var statements = page.GetByRole(AriaRole.Table, new() { Name = "Statements" });
        await Expect(statements.Locator($"tr[data-period='{period}']")).ToContainTextAsync("open");
        await Expect(statements.Locator($"tr[data-period='{previous}']")).ToContainTextAsync("final");

        // The page shows the statement exactly as the API computes it (pricing is the control plane's business).
        var statement = page.GetByTestId("statement");
        await Expect(statement.GetByRole(AriaRole.Heading)).ToContainTextAsync($"Statement for {period} (open)");
        var lines = statement.GetByRole(AriaRole.Table, new() { Name = "Line items" });
        await Expect(lines).ToContainTextAsync("pro plan");
        await Expect(lines).ToContainTextAsync("billed");
        await Expect(lines.Locator("tbody tr")).ToHaveCountAsync(await LineCountAsync(token, orgId, period));
        await Expect(page.GetByTestId("statement-total")).ToHaveTextAsync(await TotalAsync(token, orgId, period));
        await BrowserRun.ScreenshotAsync(page, "billing");

        await statements.GetByRole(AriaRole.Link, new() { Name = previous, Exact = true }).ClickAsync();
        await Expect(statement.GetByRole(AriaRole.Heading)).ToContainTextAsync($"Statement for {previous} (final)");
        await Expect(lines).ToContainTextAsync(databaseId);
        await Expect(page.GetByTestId("statement-total")).ToHaveTextAsync(await TotalAsync(token, orgId, previous));

        // The download is the control plane's CSV, byte for byte, under a name that says what it is.
        var download = await page.RunAndWaitForDownloadAsync(() => statement.GetByRole(AriaRole.Link, new() { Name = "Download CSV" }).ClickAsync());
        Assert.Equal($"kdb-statement-{orgId}-{previous}.csv", download.SuggestedFilename);
        var csv = await File.ReadAllTextAsync((await download.PathAsync())!);
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/orgs/{orgId}/invoices/{previous}");
        request.Headers.Authorization = new("Bearer", token);
        request.Headers.Accept.ParseAdd("text/csv");
        using var expected = await cloud.ControlPlane.SendAsync(request);
        Assert.Equal(await expected.Content.ReadAsStringAsync(), csv);
        var rows = csv.Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("period,item,database_id,database_name,quantity,unit,unit_price,amount,currency", rows[0], StringComparison.Ordinal);
        Assert.Contains(rows, r => r.StartsWith($"{previous},Request units", StringComparison.Ordinal) && r.Contains($",{databaseId},billed,", StringComparison.Ordinal));

        // A hand-typed month that is no month is explained, not a crash.
        await page.GotoAsync($"/orgs/{orgId}/billing?period=2026-13");
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("a month as yyyy-mm");
    });

    private async Task<string> TotalAsync(string token, string orgId, string period)
    {
        var invoice = await cloud.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/invoices/{period}", token);
        return "$" + invoice.Body.GetProperty("total").GetDecimal().ToString("#,0.00", CultureInfo.InvariantCulture);
    }

    private async Task<int> LineCountAsync(string token, string orgId, string period) =>
        (await cloud.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/invoices/{period}", token)).Body.GetProperty("lineItems").GetArrayLength();
}
