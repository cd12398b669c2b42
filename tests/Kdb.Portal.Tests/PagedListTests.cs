using System.Globalization;
using System.Net;
using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace Kdb.Portal.Tests;

/// <summary>The quota page's databases and a statement's line items come from the API a page at a time.</summary>
[Collection(PortalCollection.Name)]
public sealed class PagedListTests(PortalCloud cloud, ITestOutputHelper output)
{
    private const int Databases = 55;

    [Fact]
    public Task QuotaRowsAndStatementLines_ArePaged_LargestFirst_TotalOverAll() => BrowserRun.RunAsync(cloud, output, async page =>
    {
        const string Email = "paged@example.com";
        var (token, orgId) = await cloud.SignupThroughApiAsync(Email, Steps.Password);
        Assert.Equal(HttpStatusCode.OK, (await cloud.SendAsync(HttpMethod.Patch, $"/v1/orgs/{orgId}", token, new { plan = "enterprise" })).Status);
        var ids = new string[Databases];
        for (var batch = 0; batch < Databases; batch += 8)
        {
            await Task.WhenAll(Enumerable.Range(batch, Math.Min(8, Databases - batch)).Select(async i =>
            {
                var created = await cloud.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = $"paged-{i:00}" });
                Assert.Equal(HttpStatusCode.Accepted, created.Status);
                ids[i] = Steps.Text(created.Body, "database", "id");
            }));
        }

        // Database i stores (i + 1) MB: paged-54 is the largest and leads the quota page.
        var now = DateTimeOffset.UtcNow;
        var hour = new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, 0, 0, TimeSpan.Zero);
        var node = await cloud.TokenAsync(new() { ["grant_type"] = "client_credentials", ["client_id"] = "kdb-node", ["client_secret"] = PortalCloud.NodeSecret });
        var source = "paged-node-" + Guid.NewGuid().ToString("N")[..8];
        var records = ids.Select((id, i) => new { source, sequence = i + 1, databaseId = id, hourStart = hour, rowsRead = 1_000_000L, rowsWritten = 0L, bytesRead = 0L, bytesWritten = 0L, storageBytes = (i + 1L) << 20, cpuMs = 0L, egressBytes = 1_000_000L, connections = 1 }).ToArray();
        Assert.Equal(HttpStatusCode.Accepted, (await cloud.SendAsync(HttpMethod.Post, "/internal/v1/usage", node!, records)).Status);

        await Steps.LoginAsync(page, Email);
        await page.GotoAsync($"/orgs/{orgId}/quota");
        var rows = page.GetByRole(AriaRole.Table, new() { Name = "Storage per database" }).Locator("tbody tr");
        var pager = page.GetByTestId("quota-pages");
        await Expect(rows).ToHaveCountAsync(50);
        await Expect(rows.First).ToContainTextAsync($"paged-{Databases - 1}");
        await Expect(pager).ToContainTextAsync($"50 of {Databases} databases shown");
        await Expect(pager.GetByRole(AriaRole.Link, new() { Name = "First databases" })).ToHaveCountAsync(0);
        await pager.GetByRole(AriaRole.Link, new() { Name = "Next databases" }).ClickAsync();
        await Expect(rows).ToHaveCountAsync(Databases - 50);
        await Expect(rows.Last).ToContainTextAsync("paged-00");
        await Expect(pager.GetByRole(AriaRole.Link, new() { Name = "Next databases" })).ToHaveCountAsync(0);
        await Expect(pager.GetByRole(AriaRole.Link, new() { Name = "First databases" })).ToBeVisibleAsync();

        // A hand-edited cursor is the API's validation problem, said beside the list, not a broken page.
        await page.GotoAsync($"/orgs/{orgId}/quota?rows=not-a-cursor");
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("not a cursor of this list");

        // This month's statement: the plan lines and three per database, 150 a page; the total covers every line.
        var period = now.ToString("yyyy-MM", CultureInfo.InvariantCulture);
        var invoice = await cloud.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/invoices/{period}?limit=3000", token);
        var lineCount = invoice.Body.GetProperty("lineCount").GetInt32();
        Assert.True(lineCount > 150, invoice.Body.ToString());
        var total = "$" + invoice.Body.GetProperty("total").GetDecimal().ToString("#,0.00", CultureInfo.InvariantCulture);
        await page.GotoAsync($"/orgs/{orgId}/billing");
        var statement = page.GetByTestId("statement");
        var lines = statement.GetByRole(AriaRole.Table, new() { Name = "Line items" }).Locator("tbody tr");
        var linePager = statement.GetByTestId("line-pages");
        await Expect(lines).ToHaveCountAsync(150);
        await Expect(linePager).ToContainTextAsync($"150 of {lineCount} lines shown");
        await Expect(statement.GetByTestId("statement-total")).ToHaveTextAsync(total);
        await BrowserRun.ScreenshotAsync(page, "billing-paged");
        await linePager.GetByRole(AriaRole.Link, new() { Name = "Next lines" }).ClickAsync();
        await Expect(lines).ToHaveCountAsync(lineCount - 150);
        await Expect(lines.Last).ToContainTextAsync("paged-54");
        await Expect(statement.GetByTestId("statement-total")).ToHaveTextAsync(total);
        await Expect(linePager.GetByRole(AriaRole.Link, new() { Name = "First lines" })).ToBeVisibleAsync();
    });
}
