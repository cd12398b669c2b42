using Kdb.PgWire.Auth;
using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace Kdb.Portal.Tests;

/// <summary>The self-service journey in headless Chromium, against a real control plane and a real portal process.</summary>
[Collection(PortalCollection.Name)]
public sealed class JourneyTests(PortalCloud cloud, ITestOutputHelper output)
{
    private static readonly PageGetByLabelOptions Exact = new() { Exact = true };

    private static readonly LocatorGetByLabelOptions ExactIn = new() { Exact = true };

    [Fact]
    public Task Journey_SignupCreateDatabaseApiKeyLogoutLogin_Works() => BrowserRun.RunAsync(cloud, output, async page =>
    {
        const string Email = "journey@example.com";
        const string Password = "correct horse battery";

        // Sign up: lands signed in on the new org's databases.
        await page.GotoAsync("/signup");
        await page.GetByLabel("Your name").FillAsync("Journey");
        await page.GetByLabel("Email").FillAsync(Email);
        await page.GetByLabel("Password").FillAsync(Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign up" }).ClickAsync();
        await page.WaitForURLAsync("**/orgs/*/databases");
        await Expect(page.GetByTestId("signed-in-as")).ToHaveTextAsync("Journey");
        var orgId = BrowserRun.OrgIdFrom(page.Url);
        await Expect(page.GetByRole(AriaRole.Combobox, new() { Name = "Organization" })).ToHaveValueAsync(orgId);
        await BrowserRun.ScreenshotAsync(page, "01-databases-empty");

        // Create a database: progress, one-time credentials and connection strings at once.
        await page.GetByLabel("Database name").FillAsync("held-shop");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create database" }).ClickAsync();
        var created = page.GetByTestId("created-database");
        await Expect(created.GetByText("you will not see this password again")).ToBeVisibleAsync();
        var badge = created.Locator(".badge");
        await Expect(badge).ToHaveTextAsync("provisioning");
        var password = await created.GetByLabel("Password", ExactIn).InputValueAsync();
        var psql = await created.GetByLabel("psql", ExactIn).InputValueAsync();
        var npgsql = await created.GetByLabel("Npgsql (.NET)", ExactIn).InputValueAsync();
        var jdbc = await created.GetByLabel("JDBC", ExactIn).InputValueAsync();
        var http = await created.GetByLabel("HTTP SQL endpoint", ExactIn).InputValueAsync();
        var request = await cloud.RequestForAsync("held-shop");
        var databaseId = request.DatabaseId;
        Assert.StartsWith($"psql \"postgresql://owner:{Uri.EscapeDataString(password)}@127.0.0.1:6432/{databaseId}?sslmode=require", psql, StringComparison.Ordinal);
        Assert.Contains($"Database={databaseId};Username=owner;Password={password}", npgsql, StringComparison.Ordinal);
        Assert.Contains($"jdbc:postgresql://127.0.0.1:6432/{databaseId}?user=owner&password={Uri.EscapeDataString(password)}", jdbc, StringComparison.Ordinal);
        Assert.EndsWith($"/v1/databases/{databaseId}/sql", http, StringComparison.Ordinal);

        // The password on the page is the one whose SCRAM verifier went to provisioning.
        var verifier = ScramSha256Verifier.Parse(request.Owner.ScramVerifier);
        Assert.Equal(verifier.ToString(), ScramSha256Verifier.Create(password, verifier.Iterations, verifier.Salt).ToString());

        // Copy buttons put exactly the string shown on the clipboard.
        await page.GetByRole(AriaRole.Button, new() { Name = "Copy psql" }).ClickAsync();
        Assert.Equal(psql, await page.EvaluateAsync<string>("() => navigator.clipboard.readText()"));
        await page.GetByRole(AriaRole.Button, new() { Name = "Copy Password" }).ClickAsync();
        Assert.Equal(password, await page.EvaluateAsync<string>("() => navigator.clipboard.readText()"));
        await BrowserRun.ScreenshotAsync(page, "02-database-created");

        // Provisioning finishes: the badge turns ready in place, the credentials stay on screen.
        cloud.Release("held-shop");
        await Expect(badge).ToHaveTextAsync("ready");
        await Expect(created.GetByText("Your database is ready.")).ToBeVisibleAsync();
        Assert.Equal(password, await created.GetByLabel("Password", ExactIn).InputValueAsync());

        // The database page: connection info without the password, roles, reset shows a new password once.
        await page.GetByRole(AriaRole.Link, new() { Name = "Open the database page" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "held-shop", Level = 1 })).ToBeVisibleAsync();
        var connectionPsql = await page.GetByLabel("psql", Exact).InputValueAsync();
        Assert.Contains($"postgresql://owner@127.0.0.1:6432/{databaseId}", connectionPsql, StringComparison.Ordinal);
        Assert.DoesNotContain(password, await page.ContentAsync(), StringComparison.Ordinal);
        await Expect(page.Locator("tr[data-role='owner']")).ToBeVisibleAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Reset password of owner" }).ClickAsync();
        var reset = page.GetByTestId("role-password");
        var newPassword = await reset.GetByLabel("Password", ExactIn).InputValueAsync();
        Assert.False(string.IsNullOrEmpty(newPassword));
        Assert.NotEqual(password, newPassword);
        await BrowserRun.ScreenshotAsync(page, "03-database-page");

        // The list shows the database as ready.
        await page.GotoAsync($"/orgs/{orgId}/databases");
        await Expect(page.Locator($"tr[data-database-id='{databaseId}'] .badge")).ToHaveTextAsync("ready");

        // API keys: the secret is shown once and works; after delete it no longer does.
        await page.GetByRole(AriaRole.Link, new() { Name = "API keys" }).ClickAsync();
        await page.GetByLabel("Key name").FillAsync("ci");
        await page.GetByLabel("Role").SelectOptionAsync("developer");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create API key" }).ClickAsync();
        var createdKey = page.GetByTestId("created-key");
        await Expect(createdKey.GetByText("you will not see this secret again")).ToBeVisibleAsync();
        var keyId = await createdKey.GetByLabel("Key id (client_id)", ExactIn).InputValueAsync();
        var secret = await createdKey.GetByLabel("Secret (client_secret)", ExactIn).InputValueAsync();
        Assert.StartsWith("kdb_", secret, StringComparison.Ordinal);
        var keyGrant = new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["client_id"] = keyId, ["client_secret"] = secret };
        Assert.NotNull(await cloud.TokenAsync(keyGrant));
        await Expect(page.Locator($"tr[data-key-id='{keyId}']")).ToBeVisibleAsync();
        await BrowserRun.ScreenshotAsync(page, "04-api-keys");
        await page.GetByRole(AriaRole.Button, new() { Name = "Delete ci" }).ClickAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Yes, delete ci" }).ClickAsync();
        await Expect(page.Locator($"tr[data-key-id='{keyId}']")).ToHaveCountAsync(0);
        Assert.Null(await cloud.TokenAsync(keyGrant));

        // Usage reported by a node appears on the usage page, with its chart.
        var node = await cloud.TokenAsync(new() { ["grant_type"] = "client_credentials", ["client_id"] = "kdb-node", ["client_secret"] = PortalCloud.NodeSecret });
        var hour = DateTimeOffset.UtcNow;
        hour = new DateTimeOffset(hour.Year, hour.Month, hour.Day, hour.Hour, 0, 0, TimeSpan.Zero);
        var usage = await cloud.SendAsync(HttpMethod.Post, "/internal/v1/usage", node!, new[]
        {
            new { source = "node_1", sequence = 1, databaseId, hourStart = hour, rowsRead = 123_400, rowsWritten = 50, bytesRead = 0, bytesWritten = 0, storageBytes = 4096, cpuMs = 0, egressBytes = 0, connections = 1 },
        });
        Assert.Equal(System.Net.HttpStatusCode.Accepted, usage.Status);
        await page.GetByRole(AriaRole.Link, new() { Name = "Usage" }).ClickAsync();
        var usageTable = page.GetByRole(AriaRole.Table, new() { Name = "Usage" });
        await Expect(usageTable).ToContainTextAsync("123,400");
        await Expect(usageTable).ToContainTextAsync("1,239"); // 123,400 rows read / 100 + 50 written / 10 request units
        await Expect(page.GetByTestId("usage-chart")).ToBeVisibleAsync();
        await BrowserRun.ScreenshotAsync(page, "05-usage");

        // Quota, members and the audit log.
        await page.GetByRole(AriaRole.Link, new() { Name = "Quota" }).ClickAsync();
        await Expect(page.GetByTestId("plan")).ToHaveTextAsync("free");
        await Expect(page.GetByRole(AriaRole.Table, new() { Name = "Storage per database" })).ToContainTextAsync("held-shop");
        await page.GetByRole(AriaRole.Link, new() { Name = "Members" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Table, new() { Name = "Members" })).ToContainTextAsync(Email);
        await page.GetByRole(AriaRole.Link, new() { Name = "Audit log" }).ClickAsync();
        var audit = page.GetByRole(AriaRole.Table, new() { Name = "Audit log" });
        await Expect(audit).ToContainTextAsync(keyId); // the key's deletion
        await Expect(audit).ToContainTextAsync("reset-password");
        await BrowserRun.ScreenshotAsync(page, "06-audit-log");

        // Log out: back at the login page; org pages now send to login.
        await page.GetByRole(AriaRole.Button, new() { Name = "Log out" }).ClickAsync();
        await page.WaitForURLAsync("**/login?loggedOut=true");
        await Expect(page.GetByText("You are logged out.")).ToBeVisibleAsync();
        await page.GotoAsync($"/orgs/{orgId}/databases");
        Assert.Contains("/login?returnUrl=", page.Url, StringComparison.Ordinal);

        // Log in again: the database is still there.
        await page.GetByLabel("Email").FillAsync(Email);
        await page.GetByLabel("Password").FillAsync(Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await page.WaitForURLAsync($"**/orgs/{orgId}/databases");
        await Expect(page.GetByRole(AriaRole.Link, new() { Name = "held-shop" })).ToBeVisibleAsync();
    });
}
