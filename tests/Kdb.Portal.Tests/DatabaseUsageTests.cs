using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace Kdb.Portal.Tests;

/// <summary>The database's Usage tab: charts and a table of this database's usage over time, its quota state in words.</summary>
[Collection(PortalCollection.Name)]
public sealed class DatabaseUsageTests(PortalCloud cloud, ITestOutputHelper output)
{
    [Fact]
    public Task UsageTab_ShowsThisDatabasesUsageOverTime_NotItsSiblings() => BrowserRun.RunAsync(cloud, output, async page =>
    {
        const string Email = "db-usage@example.com";
        var (token, orgId) = await cloud.SignupThroughApiAsync(Email, Steps.Password);
        var databaseId = await Steps.ReadyDatabaseAsync(cloud, token, orgId, "metered");
        var sibling = await Steps.ReadyDatabaseAsync(cloud, token, orgId, "quiet");
        var node = await cloud.TokenAsync(new() { ["grant_type"] = "client_credentials", ["client_id"] = "kdb-node", ["client_secret"] = PortalCloud.NodeSecret });
        var now = DateTimeOffset.UtcNow;
        var hour = new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, 0, 0, TimeSpan.Zero);
        var usage = await cloud.SendAsync(HttpMethod.Post, "/internal/v1/usage", node!, new[]
        {
            new { source = "node_u", sequence = 1, databaseId, hourStart = hour.AddHours(-1), rowsRead = 1_000, rowsWritten = 0, bytesRead = 0, bytesWritten = 0, storageBytes = 1_048_576, cpuMs = 0, egressBytes = 0, connections = 1 },
            new { source = "node_u", sequence = 2, databaseId, hourStart = hour, rowsRead = 250_000, rowsWritten = 30, bytesRead = 0, bytesWritten = 0, storageBytes = 3_145_728, cpuMs = 0, egressBytes = 2_048, connections = 4 },
            new { source = "node_u", sequence = 3, databaseId = sibling, hourStart = hour, rowsRead = 777_777, rowsWritten = 0, bytesRead = 0, bytesWritten = 0, storageBytes = 1, cpuMs = 0, egressBytes = 0, connections = 1 },
        });
        Assert.Equal(System.Net.HttpStatusCode.Accepted, usage.Status);

        await Steps.LoginAsync(page, Email);
        await page.GotoAsync($"/databases/{databaseId}");
        await page.GetByRole(AriaRole.Navigation, new() { Name = "Database sections" }).GetByRole(AriaRole.Link, new() { Name = "Usage" }).ClickAsync();
        await page.WaitForURLAsync($"**/databases/{databaseId}/usage");
        var table = page.GetByRole(AriaRole.Table, new() { Name = "Database usage" });
        await Expect(table).ToContainTextAsync("250,000");
        await Expect(table).ToContainTextAsync("2,503"); // 250,000 rows read / 100 + 30 written / 10 request units
        await Expect(table).ToContainTextAsync("3 MiB");
        Assert.DoesNotContain("777,777", await table.InnerTextAsync(), StringComparison.Ordinal);
        foreach (var chart in new[] { "db-usage-ru", "db-usage-storage", "db-usage-connections", "db-usage-egress" })
        {
            await Expect(page.GetByTestId(chart)).ToBeVisibleAsync();
        }

        await Expect(page.GetByTestId("quota-state")).ToContainTextAsync("Within limits.");
        await BrowserRun.ScreenshotAsync(page, "database-usage");

        // Per day: both hours in one row (unless the run crossed midnight, which splits them into two days).
        await page.GetByLabel("Show").SelectOptionAsync("day");
        await page.GetByRole(AriaRole.Button, new() { Name = "Show", Exact = true }).ClickAsync();
        await page.WaitForURLAsync("**/usage?granularity=day");
        await Expect(page.GetByRole(AriaRole.Table, new() { Name = "Database usage" })).ToContainTextAsync(hour.Hour == 0 ? "250,000" : "251,000");
    });
}
