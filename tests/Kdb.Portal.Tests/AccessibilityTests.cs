using System.Text.Json;
using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace Kdb.Portal.Tests;

/// <summary>Accessibility basics on every signed-in page: named controls, one main heading, a skip link, keyboard-only use.</summary>
[Collection(PortalCollection.Name)]
public sealed class AccessibilityTests(PortalCloud cloud, ITestOutputHelper output)
{
    // Controls a user can reach whose accessible name is empty: no <label for>, no wrapping label, no aria-label(ledby), no text.
    private const string UnnamedControls = """
        () => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button, a[href]')]
            .filter(el => el.offsetParent !== null || el.getClientRects().length > 0)
            .filter(el => {
                const labelled = (el.labels && el.labels.length > 0) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
                const text = (el.innerText || el.value || '').trim();
                return !labelled && (el.tagName === 'INPUT' || el.tagName === 'SELECT' || el.tagName === 'TEXTAREA' || text.length === 0);
            })
            .map(el => el.outerHTML.slice(0, 120))
        """;

    [Fact]
    public Task EveryPage_ControlsAreNamed_OneMainHeading_SkipLinkFirst() => BrowserRun.RunAsync(cloud, output, async page =>
    {
        const string Email = "a11y@example.com";
        var (token, orgId) = await cloud.SignupThroughApiAsync(Email, Steps.Password);
        var databaseId = await Steps.ReadyDatabaseAsync(cloud, token, orgId, "reachable");
        string[] anonymous = ["/login", "/signup", "/forgot-password"];
        string[] signedIn =
        [
            $"/orgs/{orgId}/databases", $"/databases/{databaseId}", $"/databases/{databaseId}/usage", $"/databases/{databaseId}/backups", $"/databases/{databaseId}/connections",
            $"/orgs/{orgId}/usage", $"/orgs/{orgId}/quota", $"/orgs/{orgId}/members", $"/orgs/{orgId}/api-keys", $"/orgs/{orgId}/billing",
            $"/orgs/{orgId}/audit-log", "/orgs/new",
        ];

        foreach (var path in anonymous)
        {
            await CheckPageAsync(page, path);
        }

        await Steps.LoginAsync(page, Email);
        foreach (var path in signedIn)
        {
            await CheckPageAsync(page, path);
        }
    });

    [Fact]
    public Task CreateDatabase_WithTheKeyboardOnly_Works() => BrowserRun.RunAsync(cloud, output, async page =>
    {
        const string Email = "keyboard@example.com";
        await cloud.SignupThroughApiAsync(Email, Steps.Password);
        await Steps.LoginAsync(page, Email);

        // Tab from the top until the name field has focus (no pointer), type, and submit with Enter.
        await page.Keyboard.PressAsync("Tab");
        await Expect(page.GetByRole(AriaRole.Link, new() { Name = "Skip to content" })).ToBeFocusedAsync();
        var name = page.GetByLabel("Database name");
        for (var i = 0; i < 40 && !await name.EvaluateAsync<bool>("el => el === document.activeElement"); i++)
        {
            await page.Keyboard.PressAsync("Tab");
        }

        await Expect(name).ToBeFocusedAsync();
        await page.Keyboard.TypeAsync("typed-only");
        await page.Keyboard.PressAsync("Enter");
        await Expect(page.GetByTestId("created-database")).ToContainTextAsync("typed-only");

        // The copy button is reachable and works from the keyboard too.
        var copy = page.GetByRole(AriaRole.Button, new() { Name = "Copy Password", Exact = true });
        await copy.FocusAsync();
        await page.Keyboard.PressAsync("Enter");
        var password = await page.GetByTestId("created-database").GetByLabel("Password", new() { Exact = true }).InputValueAsync();
        Assert.Equal(password, await page.EvaluateAsync<string>("() => navigator.clipboard.readText()"));
    });

    private async Task CheckPageAsync(IPage page, string path)
    {
        var response = await page.GotoAsync(path);
        Assert.True(response is { Status: 200 }, $"{path}: {response?.Status}");
        var unnamed = await page.EvaluateAsync<JsonElement>(UnnamedControls);
        Assert.True(unnamed.GetArrayLength() == 0, $"{path}: controls without an accessible name: {unnamed}");
        await Expect(page.Locator("h1")).ToHaveCountAsync(1);
        Assert.False(string.IsNullOrWhiteSpace(await page.TitleAsync()), path + ": no title");
        Assert.Equal("en", await page.Locator("html").GetAttributeAsync("lang"));

        // The first Tab lands on the skip link; following it moves focus into the page's main region.
        await page.Keyboard.PressAsync("Tab");
        var skip = page.GetByRole(AriaRole.Link, new() { Name = "Skip to content" });
        await Expect(skip).ToBeFocusedAsync();
        await page.Keyboard.PressAsync("Enter");
        await Expect(page.Locator("main#main")).ToBeFocusedAsync();
        output.WriteLine($"{path}: ok");
    }
}
