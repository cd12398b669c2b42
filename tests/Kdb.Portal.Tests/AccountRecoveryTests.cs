using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace Kdb.Portal.Tests;

/// <summary>Forgotten password: the request form, the mailed link (read from the .eml the control plane wrote), the reset page.</summary>
[Collection(PortalCollection.Name)]
public sealed class AccountRecoveryTests(PortalCloud cloud, ITestOutputHelper output)
{
    private const string NewPassword = "a brand new passphrase";

    [Fact]
    public Task ForgotPassword_MailedLink_SetsNewPasswordOnceAndTheOldOneStops() => BrowserRun.RunAsync(cloud, output, async page =>
    {
        const string Email = "forgetful@example.com";
        await cloud.SignupThroughApiAsync(Email, Steps.Password);

        await page.GotoAsync("/login");
        await page.GetByRole(AriaRole.Link, new() { Name = "Forgot your password?" }).ClickAsync();
        await page.GetByLabel("Email").FillAsync(Email);
        await page.GetByRole(AriaRole.Button, new() { Name = "Send the link" }).ClickAsync();
        await Expect(page.GetByTestId("reset-sent")).ToContainTextAsync(Email);
        await BrowserRun.ScreenshotAsync(page, "forgot-password-sent");

        var link = await cloud.Mail.WaitForLinkAsync(Email, "/reset-password?token=");
        Assert.Equal(cloud.PortalUrl.Authority, link.Authority);

        // A truncated link is refused with a sentence and spends nothing: the full link still works afterwards.
        await page.GotoAsync(link.PathAndQuery[..^4]);
        await FillAsync(page, NewPassword, NewPassword);
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("The reset link is invalid, already used or expired");
        await Expect(page.GetByRole(AriaRole.Link, new() { Name = "Ask for a new link" })).ToBeVisibleAsync();

        await page.GotoAsync(link.PathAndQuery);
        await FillAsync(page, NewPassword, "not the same passphrase");
        await Expect(page.Locator("#confirm-error")).ToContainTextAsync("The two passwords differ");

        // The control plane's own password rules answer beside the field (the browser's checks switched off).
        await page.EvaluateAsync("() => document.querySelectorAll('form').forEach(f => f.noValidate = true)");
        await FillAsync(page, "short", "short");
        await Expect(page.Locator("#password-error")).ToContainTextAsync("at least 10 characters");

        await FillAsync(page, NewPassword, NewPassword);
        await page.WaitForURLAsync("**/login?passwordReset=true");
        await Expect(page.GetByText("Your password has been changed.")).ToBeVisibleAsync();
        await BrowserRun.ScreenshotAsync(page, "password-reset-done");

        Assert.Null(await cloud.TokenAsync(new() { ["grant_type"] = "password", ["username"] = Email, ["password"] = Steps.Password }));
        await Steps.LoginAsync(page, Email, NewPassword);

        // The link works once.
        await page.GotoAsync(link.PathAndQuery);
        await FillAsync(page, "yet another passphrase", "yet another passphrase");
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("already used or expired");
        Assert.NotNull(await cloud.TokenAsync(new() { ["grant_type"] = "password", ["username"] = Email, ["password"] = NewPassword }));
    });

    [Fact]
    public Task ForgotPassword_UnknownAddress_AnswersAlikeAndMailsNobody() => BrowserRun.RunAsync(cloud, output, async page =>
    {
        const string Known = "known-reset@example.com";
        await cloud.SignupThroughApiAsync(Known, Steps.Password);
        foreach (var email in new[] { "nobody-here@example.com", Known })
        {
            await page.GotoAsync("/forgot-password");
            await page.GetByLabel("Email").FillAsync(email);
            await page.GetByRole(AriaRole.Button, new() { Name = "Send the link" }).ClickAsync();
            await Expect(page.GetByTestId("reset-sent")).ToContainTextAsync($"If an account exists for {email}, we have sent it a link");
        }

        // One background sender handles requests in order: once the known address has its mail, the unknown one was handled.
        await cloud.Mail.WaitForLinkAsync(Known, "/reset-password?token=");
        Assert.Equal(0, cloud.Mail.CountTo("nobody-here@example.com"));
    });

    [Fact]
    public Task ResetPage_NoOrGarbageToken_ExplainsAndChangesNothing() => BrowserRun.RunAsync(cloud, output, async page =>
    {
        const string Email = "garbage-token@example.com";
        await cloud.SignupThroughApiAsync(Email, Steps.Password);

        await page.GotoAsync("/reset-password");
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("needs the link from the password-reset mail");

        var random = new Random(11);
        foreach (var token in new[] { "x", new string('A', 43), "%00%ff<script>", string.Concat(Enumerable.Range(0, 300).Select(_ => (char)random.Next(33, 127))) })
        {
            await page.GotoAsync("/reset-password?token=" + Uri.EscapeDataString(token));
            await FillAsync(page, NewPassword, NewPassword);
            await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("The reset link is invalid, already used or expired");
        }

        Assert.NotNull(await cloud.TokenAsync(new() { ["grant_type"] = "password", ["username"] = Email, ["password"] = Steps.Password }));
    });

    private static async Task FillAsync(IPage page, string password, string confirm)
    {
        await page.GetByLabel("New password", new() { Exact = true }).FillAsync(password);
        await page.GetByLabel("Repeat the new password").FillAsync(confirm);
        await page.GetByRole(AriaRole.Button, new() { Name = "Set the new password" }).ClickAsync();
    }
}
