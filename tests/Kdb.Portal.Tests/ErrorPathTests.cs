using System.Net;
using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace Kdb.Portal.Tests;

/// <summary>What the user sees when things go wrong: wrong password, no session, another org's ids, API errors.</summary>
[Collection(PortalCollection.Name)]
public sealed class ErrorPathTests(PortalCloud cloud, ITestOutputHelper output)
{
    private const string Password = "long enough password";

    [Fact]
    public Task Login_WrongPassword_ShowsErrorAndStartsNoSession() => BrowserRun.RunAsync(cloud, output, async page =>
    {
        await cloud.SignupThroughApiAsync("wrong-password@example.com", Password);

        await page.GotoAsync("/login");
        await page.GetByLabel("Email").FillAsync("wrong-password@example.com");
        await page.GetByLabel("Password").FillAsync("not the password");
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();

        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("The email or password is incorrect");
        Assert.EndsWith("/login", new Uri(page.Url).AbsolutePath, StringComparison.Ordinal);
        Assert.DoesNotContain(await page.Context.CookiesAsync(), c => c.Name == "kdb_session");
        await BrowserRun.ScreenshotAsync(page, "login-wrong-password");
    });

    [Fact]
    public Task ProtectedPage_LoggedOut_RedirectsToLoginThenBackAfterLogin() => BrowserRun.RunAsync(cloud, output, async page =>
    {
        var (_, orgId) = await cloud.SignupThroughApiAsync("return@example.com", Password);

        await page.GotoAsync($"/orgs/{orgId}/quota");
        Assert.Equal("/login", new Uri(page.Url).AbsolutePath);
        Assert.Contains("returnUrl=" + Uri.EscapeDataString($"/orgs/{orgId}/quota"), page.Url, StringComparison.Ordinal);

        await page.GetByLabel("Email").FillAsync("return@example.com");
        await page.GetByLabel("Password").FillAsync(Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await page.WaitForURLAsync($"**/orgs/{orgId}/quota");
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Quota", Level = 1 })).ToBeVisibleAsync();
    });

    [Fact]
    public Task ExpiredSession_RefreshRefused_SendsToLoginSayingSo_ThenBackWhereTheUserWas() => BrowserRun.RunAsync(cloud, output, async page =>
    {
        var (_, orgId) = await cloud.SignupThroughApiAsync("expiring@example.com", Password);
        await LoginAsync(page, "expiring@example.com");

        // The control plane ends the login behind the portal's back: five failed password attempts lock the
        // account, and a locked account's refresh token is refused. The fixture's portal refreshes on every page
        // (Session:RefreshBefore is longer than a token lives), so the next page finds the session over.
        for (var i = 0; i < 5; i++)
        {
            Assert.Null(await cloud.TokenAsync(new() { ["grant_type"] = "password", ["username"] = "expiring@example.com", ["password"] = "not the password" }));
        }

        await page.GotoAsync($"/orgs/{orgId}/quota");
        Assert.Equal("/login", new Uri(page.Url).AbsolutePath);
        Assert.Contains("returnUrl=" + Uri.EscapeDataString($"/orgs/{orgId}/quota"), page.Url, StringComparison.Ordinal);
        await Expect(page.GetByTestId("session-expired")).ToContainTextAsync("Your session has expired");
        Assert.DoesNotContain(await page.Context.CookiesAsync(), c => c.Name == "kdb_session");
        await BrowserRun.ScreenshotAsync(page, "session-expired");
    });

    [Fact]
    public Task DatabasePage_AnotherOrgsDatabase_ShowsNotFound() => BrowserRun.RunAsync(cloud, output, async page =>
    {
        var (ownerToken, ownerOrg) = await cloud.SignupThroughApiAsync("owner-a@example.com", Password);
        var created = await cloud.SendAsync(HttpMethod.Post, $"/v1/orgs/{ownerOrg}/databases", ownerToken, new { name = "secret-db" });
        Assert.Equal(HttpStatusCode.Accepted, created.Status);
        var databaseId = created.Body.GetProperty("database").GetProperty("id").GetString()!;
        await cloud.SignupThroughApiAsync("intruder@example.com", Password);
        await LoginAsync(page, "intruder@example.com");

        var response = await page.GotoAsync($"/databases/{databaseId}");
        Assert.Equal(404, response!.Status);
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Database not found" })).ToBeVisibleAsync();
        Assert.DoesNotContain("secret-db", await page.ContentAsync(), StringComparison.Ordinal);

        response = await page.GotoAsync($"/orgs/{ownerOrg}/databases");
        Assert.Equal(404, response!.Status);
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Organization not found" })).ToBeVisibleAsync();

        response = await page.GotoAsync($"/orgs/{ownerOrg}/api-keys");
        Assert.Equal(404, response!.Status);
        await BrowserRun.ScreenshotAsync(page, "not-found");

        // A path that is no page at all.
        response = await page.GotoAsync("/no/such/page");
        Assert.Equal(404, response!.Status);
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Not found" })).ToBeVisibleAsync();
    });

    [Fact]
    public Task CreateDatabase_DuplicateName_ShowsTheApiReason() => BrowserRun.RunAsync(cloud, output, async page =>
    {
        await cloud.SignupThroughApiAsync("duplicate@example.com", Password);
        await LoginAsync(page, "duplicate@example.com");

        await page.GetByLabel("Database name").FillAsync("twice");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create database" }).ClickAsync();
        await Expect(page.GetByTestId("created-database")).ToBeVisibleAsync();
        await page.GetByLabel("Database name").FillAsync("twice");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create database" }).ClickAsync();

        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("A database named 'twice' already exists in this organization.");
        await Expect(page.GetByTestId("created-database")).ToHaveCountAsync(0);
        await Expect(page.Locator("tbody tr")).ToHaveCountAsync(1);
    });

    [Fact]
    public Task CreateDatabase_PlanLimitReached_ShowsTheQuotaReason() => BrowserRun.RunAsync(cloud, output, async page =>
    {
        var (token, orgId) = await cloud.SignupThroughApiAsync("limit@example.com", Password);
        foreach (var name in new[] { "one", "two", "three" })
        {
            Assert.Equal(HttpStatusCode.Accepted, (await cloud.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name })).Status);
        }

        await LoginAsync(page, "limit@example.com");
        await page.GetByLabel("Database name").FillAsync("four");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create database" }).ClickAsync();

        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("The free plan allows 3 databases per organization.");
        await page.GotoAsync($"/orgs/{orgId}/quota");
        await Expect(page.GetByRole(AriaRole.Table, new() { Name = "Limits" }).GetByRole(AriaRole.Row, new() { Name = "Databases" })).ToContainTextAsync("100%");
        await BrowserRun.ScreenshotAsync(page, "quota-full");
    });

    [Fact]
    public Task Signup_ServerSideValidationAndTakenEmail_ShowReadableErrors() => BrowserRun.RunAsync(cloud, output, async page =>
    {
        await cloud.SignupThroughApiAsync("taken@example.com", Password);
        await page.GotoAsync("/signup");
        // Switch off the browser's own checks so the control plane's validation is what answers.
        await page.EvaluateAsync("() => document.querySelectorAll('form').forEach(f => f.noValidate = true)");
        await page.GetByLabel("Your name").FillAsync("Short");
        await page.GetByLabel("Email").FillAsync("short@example.com");
        await page.GetByLabel("Password").FillAsync("short");
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign up" }).ClickAsync();
        await Expect(page.Locator("#password-error")).ToContainTextAsync("at least 10 characters");

        await page.GetByLabel("Email").FillAsync("taken@example.com");
        await page.GetByLabel("Password").FillAsync(Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign up" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("An account with this email already exists.");
        Assert.DoesNotContain(await page.Context.CookiesAsync(), c => c.Name == "kdb_session");
    });

    [Fact]
    public Task DeleteDatabase_TypedConfirmation_MismatchKeepsItMatchDeletes() => BrowserRun.RunAsync(cloud, output, async page =>
    {
        var (token, orgId) = await cloud.SignupThroughApiAsync("deleter@example.com", Password);
        var created = await cloud.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "doomed" });
        var databaseId = created.Body.GetProperty("database").GetProperty("id").GetString()!;
        await LoginAsync(page, "deleter@example.com");
        await page.GotoAsync($"/databases/{databaseId}");
        await Expect(page.Locator(".facts .badge").First).ToHaveTextAsync("ready");
        await page.ReloadAsync();

        // A read-only role: its password is shown once, and it joins the roles table.
        await page.GetByLabel("Role name").FillAsync("reporting");
        await page.GetByLabel("Kind").SelectOptionAsync("readonly");
        await page.GetByRole(AriaRole.Button, new() { Name = "Add role" }).ClickAsync();
        await Expect(page.GetByTestId("role-password")).ToContainTextAsync("reporting");
        Assert.Contains("postgresql://reporting:", await page.GetByTestId("role-password").GetByLabel("psql", new() { Exact = true }).InputValueAsync(), StringComparison.Ordinal);
        await Expect(page.Locator("tr[data-role='reporting']")).ToContainTextAsync("readonly");

        await page.GetByLabel("Type the database name").FillAsync("doomed-not");
        await page.GetByRole(AriaRole.Button, new() { Name = "Delete database" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("does not match");
        Assert.Equal("ready", (await cloud.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}", token)).Body.GetProperty("status").GetString());

        await page.GetByLabel("Type the database name").FillAsync("doomed");
        await page.GetByRole(AriaRole.Button, new() { Name = "Delete database" }).ClickAsync();
        await page.WaitForURLAsync($"**/orgs/{orgId}/databases?deleted=doomed");
        await Expect(page.GetByText("Database “doomed” is being deleted.")).ToBeVisibleAsync();
        var after = await cloud.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}", token);
        Assert.True(after.Status == HttpStatusCode.NotFound || after.Body.GetProperty("status").GetString() is "deleting", $"{after.Status} {after.Body}");
    });

    [Fact]
    public Task Logout_OldCookieReplayed_SessionDoesNotComeBack() => BrowserRun.RunAsync(cloud, output, async page =>
    {
        await cloud.SignupThroughApiAsync("replay@example.com", Password);
        await LoginAsync(page, "replay@example.com");
        var orgPage = page.Url;
        var stolen = await page.Context.CookiesAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Log out" }).ClickAsync();
        await page.WaitForURLAsync("**/login?loggedOut=true");

        // A copy of the cookie taken before logout: its refresh token was revoked with the logout.
        await using var replay = await cloud.NewContextAsync();
        await replay.AddCookiesAsync(stolen.Select(c => new Microsoft.Playwright.Cookie { Name = c.Name, Value = c.Value, Domain = c.Domain, Path = c.Path }));
        var replayPage = await replay.NewPageAsync();
        await replayPage.GotoAsync(orgPage);
        Assert.Equal("/login", new Uri(replayPage.Url).AbsolutePath);
    });

    private static Task LoginAsync(IPage page, string email) => Steps.LoginAsync(page, email, Password);
}
