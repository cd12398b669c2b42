using Microsoft.Playwright;

namespace Kdb.Portal.Tests;

/// <summary>Debian's headless Chromium under Playwright (never a downloaded browser), and browser contexts on a portal.</summary>
internal static class HeadlessChromium
{
    /// <summary>
    /// How long a navigation (a page load, a form post, waiting for an address) may take. Every wait is for a condition
    /// and returns as soon as it holds, so a generous budget costs a passing test nothing; it only has to outlast a
    /// loaded machine, where the whole-cloud journey's sign-up (a deliberately slow password hash, a token, the first
    /// page) took more than the 20 s it had.
    /// </summary>
    public const float NavigationBudgetMs = 120_000;

    /// <summary>How long an action or an expectation waits for its element or state.</summary>
    public const float ConditionBudgetMs = 45_000;

    public static Task<IBrowser> LaunchAsync(IPlaywright playwright)
    {
        // Playwright's expectations wait 5 s by default: a form post on a loaded machine can take longer to answer.
        Assertions.SetDefaultExpectTimeout(ConditionBudgetMs);
        return playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = "/usr/bin/chromium",
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"],
        });
    }

    /// <summary>A fresh context (its own cookies) on the portal at <paramref name="portal"/>, allowed to use the clipboard.</summary>
    public static async Task<IBrowserContext> NewContextAsync(IBrowser browser, Uri portal)
    {
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = portal.ToString(), ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        await context.GrantPermissionsAsync(["clipboard-read", "clipboard-write"], new BrowserContextGrantPermissionsOptions { Origin = portal.ToString().TrimEnd('/') });
        context.SetDefaultTimeout(ConditionBudgetMs);
        context.SetDefaultNavigationTimeout(NavigationBudgetMs);
        return context;
    }
}
