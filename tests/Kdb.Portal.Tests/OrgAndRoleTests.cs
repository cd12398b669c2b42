using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace Kdb.Portal.Tests;

/// <summary>Creating a second org and switching between orgs; a database's read-write role from creation to deletion; a phone-sized screen.</summary>
[Collection(PortalCollection.Name)]
public sealed class OrgAndRoleTests(PortalCloud cloud, ITestOutputHelper output)
{
    [Fact]
    public Task NewOrg_AppearsInTheSwitcher_AndSwitchingShowsEachOrgsDatabases() => BrowserRun.RunAsync(cloud, output, async page =>
    {
        const string Email = "two-orgs@example.com";
        var (token, firstOrg) = await cloud.SignupThroughApiAsync(Email, Steps.Password);
        await Steps.ReadyDatabaseAsync(cloud, token, firstOrg, "first-org-db");
        await Steps.LoginAsync(page, Email);

        // An empty name is the API's validation error, beside the field.
        await page.GetByRole(AriaRole.Link, new() { Name = "New organization" }).ClickAsync();
        await page.GetByLabel("Organization name").FillAsync("   ");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create organization" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).ToBeVisibleAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "New organization" })).ToBeVisibleAsync();

        await page.GetByLabel("Organization name").FillAsync("Second Org");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create organization" }).ClickAsync();
        await page.WaitForURLAsync(url => url.Contains("/orgs/", StringComparison.Ordinal) && !url.Contains(firstOrg, StringComparison.Ordinal) && url.EndsWith("/databases", StringComparison.Ordinal));
        var secondOrg = BrowserRun.OrgIdFrom(page.Url);
        var switcher = page.GetByRole(AriaRole.Combobox, new() { Name = "Organization" });
        await Expect(switcher).ToHaveValueAsync(secondOrg);
        await Expect(switcher.Locator("option")).ToHaveCountAsync(2);
        await Expect(switcher.Locator($"option[value='{secondOrg}']")).ToHaveTextAsync("Second Org (owner)");
        await Expect(page.GetByRole(AriaRole.Link, new() { Name = "first-org-db" })).ToHaveCountAsync(0);

        // Switching back with the select and its button (no script needed).
        await switcher.SelectOptionAsync(firstOrg);
        await page.GetByRole(AriaRole.Button, new() { Name = "Switch" }).ClickAsync();
        await page.WaitForURLAsync($"**/orgs/{firstOrg}/databases");
        await Expect(page.GetByRole(AriaRole.Link, new() { Name = "first-org-db" })).ToBeVisibleAsync();
        await Expect(switcher).ToHaveValueAsync(firstOrg);

        // Switching to an org the user does not belong to looks like a missing org.
        await page.GotoAsync("/switch-org?orgId=org_doesnotexist000");
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Organization not found" })).ToBeVisibleAsync();
    });

    [Fact]
    public Task ReadWriteRole_CreatedResetAndDeletedWithAConfirmStep() => BrowserRun.RunAsync(cloud, output, async page =>
    {
        const string Email = "roles@example.com";
        var (token, orgId) = await cloud.SignupThroughApiAsync(Email, Steps.Password);
        var databaseId = await Steps.ReadyDatabaseAsync(cloud, token, orgId, "with-roles");
        await Steps.LoginAsync(page, Email);
        await page.GotoAsync($"/databases/{databaseId}");

        await page.GetByLabel("Role name").FillAsync("app");
        await page.GetByLabel("Kind").SelectOptionAsync("readwrite");
        await page.GetByRole(AriaRole.Button, new() { Name = "Add role" }).ClickAsync();
        var shown = page.GetByTestId("role-password");
        await Expect(shown).ToContainTextAsync("app");
        var first = await shown.GetByLabel("Password", new() { Exact = true }).InputValueAsync();
        await Expect(page.Locator("tr[data-role='app']")).ToContainTextAsync("readwrite");

        // A duplicate name is refused with the API's reason.
        await page.GetByLabel("Role name").FillAsync("app");
        await page.GetByRole(AriaRole.Button, new() { Name = "Add role" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).ToBeVisibleAsync();

        await page.GetByRole(AriaRole.Button, new() { Name = "Reset password of app" }).ClickAsync();
        var second = await page.GetByTestId("role-password").GetByLabel("Password", new() { Exact = true }).InputValueAsync();
        Assert.False(string.IsNullOrEmpty(second));
        Assert.NotEqual(first, second);

        await page.GetByRole(AriaRole.Button, new() { Name = "Delete role app" }).ClickAsync();
        await Expect(page.Locator("tr[data-role='app']")).ToBeVisibleAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Yes, delete role app" }).ClickAsync();
        await Expect(page.Locator("tr[data-role='app']")).ToHaveCountAsync(0);
        var roles = await cloud.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/roles", token);
        Assert.DoesNotContain(roles.Body.GetProperty("items").EnumerateArray(), r => r.GetProperty("name").GetString() == "app");
    });

    [Fact]
    public Task PhoneSizedScreen_PagesFitTheWidth_NavigationAboveTheContent() => BrowserRun.RunAsync(cloud, output, async page =>
    {
        const string Email = "phone@example.com";
        var (token, orgId) = await cloud.SignupThroughApiAsync(Email, Steps.Password);
        var databaseId = await Steps.ReadyDatabaseAsync(cloud, token, orgId, "on-a-phone");
        await page.SetViewportSizeAsync(390, 844);
        await Steps.LoginAsync(page, Email);

        foreach (var path in new[] { $"/orgs/{orgId}/databases", $"/databases/{databaseId}", $"/databases/{databaseId}/backups", $"/orgs/{orgId}/quota", $"/orgs/{orgId}/billing", $"/orgs/{orgId}/audit-log" })
        {
            await page.GotoAsync(path);
            // Wide tables scroll inside their own box; the page itself never scrolls sideways.
            var overflow = await page.EvaluateAsync<int>("() => document.documentElement.scrollWidth - window.innerWidth");
            Assert.True(overflow <= 0, $"{path} is {overflow} px wider than the screen");
            var nav = await page.Locator("nav.orgnav").BoundingBoxAsync();
            var heading = await page.GetByRole(AriaRole.Heading, new() { Level = 1 }).BoundingBoxAsync();
            Assert.True(nav is not null && heading is not null && nav.Y + nav.Height <= heading.Y + 1, $"{path}: the navigation is not above the content");
        }

        await BrowserRun.ScreenshotAsync(page, "phone-database");
    });
}
