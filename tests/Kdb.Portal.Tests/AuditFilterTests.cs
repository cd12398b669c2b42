using System.Globalization;
using System.Net;
using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace Kdb.Portal.Tests;

/// <summary>The audit log's filters: action, actor and a range of UTC days, with hand-typed bad dates explained.</summary>
[Collection(PortalCollection.Name)]
public sealed class AuditFilterTests(PortalCloud cloud, ITestOutputHelper output)
{
    [Fact]
    public Task AuditLog_ActionActorAndDayRangeFilters() => BrowserRun.RunAsync(cloud, output, async page =>
    {
        const string Email = "auditor@example.com";
        var (token, orgId) = await cloud.SignupThroughApiAsync(Email, Steps.Password);
        Assert.Equal(HttpStatusCode.Created, (await cloud.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/api-keys", token, new { name = "audited", role = "viewer" })).Status);
        Assert.Equal(HttpStatusCode.OK, (await cloud.SendAsync(HttpMethod.Patch, $"/v1/orgs/{orgId}", token, new { name = "Renamed org" })).Status);
        var userId = Steps.Text((await cloud.SendAsync(HttpMethod.Get, "/v1/me", token)).Body, "id");
        var today = DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        var tomorrow = DateTime.UtcNow.AddDays(1).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

        await Steps.LoginAsync(page, Email);
        await page.GotoAsync($"/orgs/{orgId}/audit-log");
        var audit = page.GetByRole(AriaRole.Table, new() { Name = "Audit log" });
        await Expect(audit.Locator("tbody tr")).ToHaveCountAsync(2);

        await page.GetByLabel("Action contains").FillAsync("api-keys");
        await page.GetByLabel("Actor id").FillAsync(userId);
        await page.GetByLabel("From (UTC day)").FillAsync(today);
        await page.GetByLabel("To (UTC day, included)").FillAsync(today);
        await page.GetByRole(AriaRole.Button, new() { Name = "Filter" }).ClickAsync();
        await Expect(audit.Locator("tbody tr")).ToHaveCountAsync(1);
        await Expect(audit).ToContainTextAsync("POST /v1/orgs/{orgId}/api-keys");
        await Expect(page.GetByLabel("From (UTC day)")).ToHaveValueAsync(today);
        await BrowserRun.ScreenshotAsync(page, "audit-log-filtered");

        await page.GetByLabel("From (UTC day)").FillAsync(tomorrow);
        await page.GetByLabel("To (UTC day, included)").FillAsync(string.Empty);
        await page.GetByRole(AriaRole.Button, new() { Name = "Filter" }).ClickAsync();
        await Expect(page.GetByText("No entries.")).ToBeVisibleAsync();

        await page.GotoAsync($"/orgs/{orgId}/audit-log?from={tomorrow}&to={today}");
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("before the “From” day");
        await page.GotoAsync($"/orgs/{orgId}/audit-log?from=2026-02-31");
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("is not a day (yyyy-mm-dd)");
        await page.GotoAsync($"/orgs/{orgId}/audit-log?cursor=abc");
        await Expect(page.GetByRole(AriaRole.Alert)).ToBeVisibleAsync();
    });
}
