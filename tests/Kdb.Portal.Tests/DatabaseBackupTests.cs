using System.Net;
using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace Kdb.Portal.Tests;

/// <summary>The database's Backups tab: back up now, the verified badge, the schedule editor, restores new and in place.</summary>
[Collection(PortalCollection.Name)]
public sealed class DatabaseBackupTests(PortalCloud cloud, ITestOutputHelper output)
{
    [Fact]
    public Task Backups_BackUpNowScheduleAndRestoreIntoNewDatabase() => BrowserRun.RunAsync(cloud, output, async page =>
    {
        output.WriteLine($"provisioning consumers taken out of the control plane: {cloud.RemovedProvisioningConsumers}");
        const string Email = "backups@example.com";
        var (token, orgId) = await cloud.SignupThroughApiAsync(Email, Steps.Password);
        var databaseId = await Steps.ReadyDatabaseAsync(cloud, token, orgId, "orders");
        await Steps.LoginAsync(page, Email);
        await page.GotoAsync($"/databases/{databaseId}");
        await page.GetByRole(AriaRole.Link, new() { Name = "Backups" }).ClickAsync();
        await Expect(page.GetByText("No backups yet.")).ToBeVisibleAsync();

        await page.GetByRole(AriaRole.Button, new() { Name = "Back up now" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("requested");
        var row = page.Locator("table[aria-label='Backups'] tbody tr");
        // Completion and verification are two events the control plane applies independently, in either order: a page
        // can show the one without the other, so each is waited for by reloading.
        await Steps.ReloadUntilTextAsync(page, row.Locator(".badge").First, "completed");
        await Steps.ReloadUntilTextAsync(page, row.Locator(".badge-verified"), "verified");
        await Expect(row).ToHaveCountAsync(1);
        await Expect(row.Locator(".badge").First).ToHaveTextAsync("completed");
        await Expect(row).ToContainTextAsync("3 MiB");
        await BrowserRun.ScreenshotAsync(page, "database-backups");

        // Schedule: a preset, then a custom expression; bad input is answered beside its field and saves nothing.
        await Expect(page.GetByTestId("schedule-state")).ToHaveTextAsync("No scheduled backups.");
        await page.GetByLabel("When").SelectOptionAsync("0 */6 * * *");
        await page.GetByLabel("Keep each backup (days)").FillAsync("1");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save schedule" }).ClickAsync();
        await Expect(page.GetByTestId("schedule-state")).ToContainTextAsync("0 */6 * * *");

        await page.GetByLabel("When").SelectOptionAsync("custom");
        await page.GetByLabel("Custom cron expression").FillAsync("61 * * * *");
        await page.GetByLabel("Keep each backup (days)").FillAsync("30");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save schedule" }).ClickAsync();
        await Expect(page.Locator("#schedule-cron-error")).ToContainTextAsync("minute");
        await Expect(page.Locator("#schedule-retention-error")).ToContainTextAsync("1 to 1 days on the free plan");
        var schedule = await cloud.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/backup-schedule", token);
        Assert.Equal("0 */6 * * *", Steps.Text(schedule.Body, "cron"));

        await page.GetByLabel("Custom cron expression").FillAsync("30 2 * * 1-5");
        await page.GetByLabel("Keep each backup (days)").FillAsync("1");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save schedule" }).ClickAsync();
        await Expect(page.GetByTestId("schedule-state")).ToContainTextAsync("30 2 * * 1-5");
        await page.GotoAsync(page.Url); // a GET: reloading would post the form again
        await Expect(page.GetByLabel("When")).ToHaveValueAsync("custom");
        await Expect(page.GetByLabel("Custom cron expression")).ToHaveValueAsync("30 2 * * 1-5");

        // Restore into a new database: a name the API refuses first, then a good one.
        await row.GetByRole(AriaRole.Button).ClickAsync();
        var restore = page.GetByTestId("restore");
        await page.EvaluateAsync("() => document.querySelectorAll('form').forEach(f => f.noValidate = true)");
        await restore.GetByLabel("New database name").FillAsync("Not A Name");
        await restore.GetByRole(AriaRole.Button, new() { Name = "Restore" }).ClickAsync();
        await Expect(page.Locator("#restore-name-error")).ToContainTextAsync("lowercase");
        await restore.GetByLabel("New database name").FillAsync("orders-copy");
        await restore.GetByRole(AriaRole.Button, new() { Name = "Restore" }).ClickAsync();
        await page.WaitForURLAsync("**/databases/db_*?restoring=true");
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "orders-copy", Level = 1 })).ToBeVisibleAsync();
        await Expect(page.Locator(".facts .badge").First).ToHaveTextAsync("ready");
        var copyId = new Uri(page.Url).AbsolutePath.Split('/')[^1];
        Assert.NotEqual(databaseId, copyId);
        var roles = await cloud.SendAsync(HttpMethod.Get, $"/v1/databases/{copyId}/roles", token);
        Assert.Contains(roles.Body.GetProperty("items").EnumerateArray(), r => r.GetProperty("name").GetString() == "owner");
    });

    [Fact]
    public Task Restore_InPlace_RequiresTheTypedNameThenRestores() => BrowserRun.RunAsync(cloud, output, async page =>
    {
        const string Email = "restore-in-place@example.com";
        var (token, orgId) = await cloud.SignupThroughApiAsync(Email, Steps.Password);
        var databaseId = await Steps.ReadyDatabaseAsync(cloud, token, orgId, "ledger");
        var backup = await cloud.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/backups", token);
        Assert.Equal(HttpStatusCode.Accepted, backup.Status);
        var backupId = Steps.Text(backup.Body, "backup", "id");
        await Steps.UntilAsync(async () => Steps.Text((await cloud.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}/backups/{backupId}", token)).Body, "status") == "completed", "backup completed");

        await Steps.LoginAsync(page, Email);
        await page.GotoAsync($"/databases/{databaseId}/backups");
        await page.Locator($"tr[data-backup-id='{backupId}']").GetByRole(AriaRole.Button).ClickAsync();
        var restore = page.GetByTestId("restore");
        await restore.GetByLabel("this database, in place").CheckAsync();
        await restore.GetByLabel("type the database name").FillAsync("ledger2");
        await restore.GetByRole(AriaRole.Button, new() { Name = "Restore" }).ClickAsync();
        await Expect(page.Locator("#restore-confirm-error")).ToContainTextAsync("does not match");
        Assert.Equal("ready", Steps.Text((await cloud.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}", token)).Body, "status"));
        await BrowserRun.ScreenshotAsync(page, "restore-confirm");

        await restore.GetByLabel("this database, in place").CheckAsync();
        await restore.GetByLabel("type the database name").FillAsync("ledger");
        await restore.GetByRole(AriaRole.Button, new() { Name = "Restore" }).ClickAsync();
        await page.WaitForURLAsync($"**/databases/{databaseId}?restoring=true");
        await Expect(page.GetByText("Restore started.")).ToBeVisibleAsync();
        await Expect(page.Locator(".facts .badge").First).ToHaveTextAsync("ready");
    });

    [Fact]
    public Task DatabaseTabsAndBilling_AnotherOrgsIds_ShowNotFound() => BrowserRun.RunAsync(cloud, output, async page =>
    {
        var (ownerToken, ownerOrg) = await cloud.SignupThroughApiAsync("tabs-owner@example.com", Steps.Password);
        var databaseId = await Steps.ReadyDatabaseAsync(cloud, ownerToken, ownerOrg, "private-data");
        await cloud.SignupThroughApiAsync("tabs-intruder@example.com", Steps.Password);
        await Steps.LoginAsync(page, "tabs-intruder@example.com");

        foreach (var path in new[] { $"/databases/{databaseId}/backups", $"/databases/{databaseId}/connections", $"/databases/{databaseId}/usage", "/databases/db_0000000000000000/backups" })
        {
            var response = await page.GotoAsync(path);
            Assert.Equal(404, response!.Status);
            await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Database not found" })).ToBeVisibleAsync();
            Assert.DoesNotContain("private-data", await page.ContentAsync(), StringComparison.Ordinal);
        }

        var billing = await page.GotoAsync($"/orgs/{ownerOrg}/billing");
        Assert.Equal(404, billing!.Status);
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Organization not found" })).ToBeVisibleAsync();
        var csv = await page.Context.APIRequest.GetAsync($"/orgs/{ownerOrg}/billing/2026-01.csv");
        Assert.Equal(404, csv.Status);
        Assert.DoesNotContain("period,item", await csv.TextAsync(), StringComparison.Ordinal);
    });
}
