using System.Net;
using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace Kdb.Portal.Tests;

/// <summary>The database's Connections tab: the log the proxies report, the lockouts it implies, and unlocking.</summary>
[Collection(PortalCollection.Name)]
public sealed class ConnectionSecurityTests(PortalCloud cloud, ITestOutputHelper output)
{
    [Fact]
    public Task Connections_LogFilterLockoutAndUnlock() => BrowserRun.RunAsync(cloud, output, async page =>
    {
        const string Email = "connections@example.com";
        var (token, orgId) = await cloud.SignupThroughApiAsync(Email, Steps.Password);
        var databaseId = await Steps.ReadyDatabaseAsync(cloud, token, orgId, "guarded");

        // What a proxy reports: a good login, failed logins from one address, its refusals, one throttle.
        var proxy = await cloud.TokenAsync(new() { ["grant_type"] = "client_credentials", ["client_id"] = "kdb-proxy", ["client_secret"] = PortalCloud.ProxySecret });
        var now = DateTimeOffset.UtcNow;
        object Event(int secondsAgo, string kind, string? reason, string ip) =>
            new { source = "proxy_1", databaseId, at = now.AddSeconds(-secondsAgo), kind, reason, clientIp = ip, user = "owner" };
        var events = new[]
        {
            Event(60, "connect", null, "198.51.100.1"),
            Event(50, "deny", "auth_failed", "203.0.113.7"), Event(49, "deny", "auth_failed", "203.0.113.7"), Event(48, "deny", "auth_failed", "203.0.113.7"),
            Event(40, "deny", "locked_out", "203.0.113.7"), Event(30, "deny", "locked_out", "203.0.113.7"),
            Event(20, "throttle", "statements_per_second", "198.51.100.2"),
        };
        Assert.Equal(HttpStatusCode.Accepted, (await cloud.SendAsync(HttpMethod.Post, "/internal/v1/connection-log", proxy!, events)).Status);

        await Steps.LoginAsync(page, Email);
        await page.GotoAsync($"/databases/{databaseId}");
        await page.GetByRole(AriaRole.Link, new() { Name = "Connections" }).ClickAsync();
        var lockouts = page.GetByRole(AriaRole.Table, new() { Name = "Locked-out clients" });
        await Expect(lockouts.Locator("tbody tr")).ToHaveCountAsync(1);
        await Expect(lockouts.Locator("tbody tr")).ToContainTextAsync("203.0.113.7");
        await Expect(lockouts.Locator("tbody td").Nth(3)).ToHaveTextAsync("2");
        await Expect(lockouts.Locator("tbody td").Nth(4)).ToHaveTextAsync("3");
        var log = page.GetByRole(AriaRole.Table, new() { Name = "Connection log" });
        await Expect(log.Locator("tbody tr")).ToHaveCountAsync(7);
        await BrowserRun.ScreenshotAsync(page, "database-connections");

        await page.GetByLabel("Show").SelectOptionAsync("deny");
        await page.GetByRole(AriaRole.Button, new() { Name = "Show" }).ClickAsync();
        await Expect(log.Locator("tbody tr")).ToHaveCountAsync(5);
        await Expect(log.Locator("tbody tr").First).ToContainTextAsync("locked_out");

        await page.GetByRole(AriaRole.Button, new() { Name = "Unlock all clients" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("All clients were unlocked");
        await Expect(page.GetByTestId("no-lockouts")).ToContainTextAsync("No client is locked out (last unlocked");
        var lifted = await cloud.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/auth-lockouts", token);
        Assert.Equal(System.Text.Json.JsonValueKind.String, lifted.Body.GetProperty("lockoutResetAt").ValueKind);
        Assert.Empty(lifted.Body.GetProperty("items").EnumerateArray());

        // Hand-edited addresses: an unknown kind shows everything, a bad cursor is explained.
        await page.GotoAsync($"/databases/{databaseId}/connections?kind=bogus");
        await Expect(log.Locator("tbody tr")).ToHaveCountAsync(7);
        await page.GotoAsync($"/databases/{databaseId}/connections?cursor=not-a-cursor");
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("not a cursor of this list");
    });
}
