using System.Runtime.CompilerServices;
using Kdb.Testing.Processes;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Kdb.Portal.Tests;

/// <summary>Runs a browser test body; on failure saves a screenshot and the portal's log into the test output.</summary>
internal static class BrowserRun
{
    public static string ScreenshotDirectory { get; } = Path.Combine(AppContext.BaseDirectory, "screenshots");

    public static async Task RunAsync(PortalCloud cloud, ITestOutputHelper output, Func<IPage, Task> body, [CallerMemberName] string name = "")
    {
        await using var context = await cloud.NewContextAsync();
        var page = await context.NewPageAsync();
        try
        {
            await ProcessLauncher.WriteLogsOnFailureAsync(output, () => body(page), cloud.Portal);
        }
        catch
        {
            var path = await ScreenshotAsync(page, name + ".failure");
            output.WriteLine($"screenshot: {path}; page url: {page.Url}");
            output.WriteLine("===== control plane warnings and errors =====");
            foreach (var line in cloud.ControlPlaneLog.Lines)
            {
                output.WriteLine(line);
            }

            throw;
        }
    }

    /// <summary>Saves a full-page screenshot (a test artifact) and returns its path.</summary>
    public static async Task<string> ScreenshotAsync(IPage page, string name)
    {
        Directory.CreateDirectory(ScreenshotDirectory);
        var path = Path.Combine(ScreenshotDirectory, name + ".png");
        try
        {
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        }
        catch (PlaywrightException)
        {
            // The page may be gone (crashed browser): the failure itself matters more than its picture.
        }

        return path;
    }

    /// <summary>The org id in a portal URL such as <c>/orgs/org_…/databases</c>.</summary>
    public static string OrgIdFrom(string url)
    {
        var path = new Uri(url).AbsolutePath;
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        return parts is ["orgs", var org, ..] ? org : throw new InvalidOperationException("not an org page: " + url);
    }
}
