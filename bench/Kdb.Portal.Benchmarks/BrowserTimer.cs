using System.Text.Json;
using Microsoft.Playwright;

namespace Kdb.Portal.Benchmarks;

/// <summary>
/// One page's samples: first-contentful-paint and the portal's time to first byte, both from navigation start; and what the
/// load fetched over the network (the page plus every subresource not served from the browser's cache, and their bytes).
/// </summary>
internal sealed record RenderSamples(double[] FirstPaint, double[] ResponseStart, double[] NetworkRequests, double[] TransferBytes);

/// <summary>Loads pages in Debian's headless Chromium, signed in through the login form, and reads the browser's own paint timing.</summary>
internal static class BrowserTimer
{
    // The paint entry can trail the load event by a frame; wait for it rather than read a missing one.
    private const string Timing = """
        async () => {
            for (let i = 0; i < 100; i++) {
                const paint = performance.getEntriesByName('first-contentful-paint')[0];
                if (paint) {
                    const nav = performance.getEntriesByType('navigation')[0];
                    // transferSize is 0 for a resource the cache served without asking the server (a revalidation is not 0).
                    const fetched = performance.getEntriesByType('resource').filter(r => r.transferSize > 0);
                    return [paint.startTime, nav.responseStart, 1 + fetched.length, fetched.reduce((sum, r) => sum + r.transferSize, nav.transferSize)];
                }
                await new Promise(r => setTimeout(r, 20));
            }
            return [-1, -1, -1, -1];
        }
        """;

    public static async Task<Dictionary<string, RenderSamples>> MeasureAsync(Uri portal, string email, string password, IReadOnlyList<PortalPage> pages, int warmup, int timed)
    {
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = "/usr/bin/chromium",
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"],
        });
        await using var context = await browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = portal.ToString(), ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        context.SetDefaultTimeout(30_000);
        var page = await context.NewPageAsync();
        await page.GotoAsync("/login");
        await page.GetByLabel("Email").FillAsync(email);
        await page.GetByLabel("Password").FillAsync(password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await page.WaitForURLAsync("**/orgs/*/databases");

        var results = new Dictionary<string, RenderSamples>(StringComparer.Ordinal);
        foreach (var target in pages)
        {
            var firstPaint = new double[timed];
            var responseStart = new double[timed];
            var requests = new double[timed];
            var bytes = new double[timed];
            for (var i = -warmup; i < timed; i++)
            {
                var response = await page.GotoAsync(target.Path, new PageGotoOptions { WaitUntil = WaitUntilState.Load });
                if (response is not { Status: 200 } || new Uri(page.Url).AbsolutePath != target.Path.Split('?')[0])
                {
                    throw new InvalidOperationException($"{target.Path} answered {response?.Status} at {page.Url}: the figure would time an error page");
                }

                var timing = await page.EvaluateAsync<JsonElement>(Timing);
                if (i >= 0)
                {
                    firstPaint[i] = timing[0].GetDouble();
                    responseStart[i] = timing[1].GetDouble();
                    requests[i] = timing[2].GetDouble();
                    bytes[i] = timing[3].GetDouble();
                    if (firstPaint[i] < 0)
                    {
                        throw new InvalidOperationException($"Chromium reported no first-contentful-paint for {target.Path}");
                    }
                }
            }

            results[target.Name] = new RenderSamples(firstPaint, responseStart, requests, bytes);
        }

        return results;
    }
}
