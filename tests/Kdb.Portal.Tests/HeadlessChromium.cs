using Microsoft.Playwright;

namespace Kdb.Portal.Tests;

/// <summary>Debian's headless Chromium under Playwright (never a downloaded browser), and browser contexts on a portal.</summary>
internal static class HeadlessChromium
{
    public static Task<IBrowser> LaunchAsync(IPlaywright playwright) => playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
    {
        ExecutablePath = "/usr/bin/chromium",
        Headless = true,
        Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"],
    });

    /// <summary>A fresh context (its own cookies) on the portal at <paramref name="portal"/>, allowed to use the clipboard.</summary>
    public static async Task<IBrowserContext> NewContextAsync(IBrowser browser, Uri portal)
    {
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = portal.ToString(), ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        await context.GrantPermissionsAsync(["clipboard-read", "clipboard-write"], new BrowserContextGrantPermissionsOptions { Origin = portal.ToString().TrimEnd('/') });
        context.SetDefaultTimeout(20_000);
        return context;
    }
}
