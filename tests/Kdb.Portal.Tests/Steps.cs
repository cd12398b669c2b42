using System.Net;
using System.Text.Json;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Kdb.Portal.Tests;

/// <summary>Steps several browser tests share: logging in, creating a ready database, reloading until a page shows a change.</summary>
internal static class Steps
{
    public const string Password = "long enough password";

    /// <summary>Logs in through the login page and waits for <paramref name="landing"/> (the org's databases by default).</summary>
    public static async Task LoginAsync(IPage page, string email, string password = Password, string landing = "**/orgs/*/databases")
    {
        await page.GotoAsync("/login");
        await page.GetByLabel("Email").FillAsync(email);
        await page.GetByLabel("Password").FillAsync(password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();

        // The address is what says the login worked; what a caller does next waits for its own elements. Waiting for the
        // landing page's load event as well once hung for the whole navigation budget on a loaded machine, the page
        // being there and the network idle (the event was lost between the post's redirect and the landing page).
        await page.WaitForURLAsync(landing, new() { WaitUntil = WaitUntilState.Commit });
    }

    /// <summary>Creates a database through the API and waits until the stand-in for provisioning has made it ready.</summary>
    public static async Task<string> ReadyDatabaseAsync(PortalCloud cloud, string token, string orgId, string name)
    {
        var created = await cloud.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name });
        Assert.Equal(HttpStatusCode.Accepted, created.Status);
        var databaseId = created.Body.GetProperty("database").GetProperty("id").GetString()!;
        await UntilAsync(async () => (await cloud.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}", token)).Body.GetProperty("status").GetString() == "ready", "database ready");
        return databaseId;
    }

    /// <summary>Loads the page again (a GET, never a re-post) until <paramref name="locator"/> has <paramref name="text"/> (for changes no script pushes).</summary>
    public static async Task ReloadUntilTextAsync(IPage page, ILocator locator, string text, int attempts = 60)
    {
        for (var attempt = 0; attempt < attempts; attempt++)
        {
            if (await locator.CountAsync() > 0 && (await locator.First.InnerTextAsync()).Contains(text, StringComparison.Ordinal))
            {
                return;
            }

            await Task.Delay(250);
            await page.GotoAsync(page.Url);
        }

        await Expect(locator.First).ToContainTextAsync(text);
    }

    /// <summary>Polls <paramref name="condition"/> for up to a minute (it returns as soon as it holds).</summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("waited 60 s for: " + what);
            }

            await Task.Delay(100);
        }
    }

    /// <summary>A string property of an API answer.</summary>
    public static string Text(JsonElement body, params string[] path)
    {
        foreach (var name in path)
        {
            body = body.GetProperty(name);
        }

        return body.GetString()!;
    }
}
