using System.Net;
using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace Kdb.Portal.Tests;

/// <summary>Members: invite, accept from the mailed link (signing up on the way), change roles, remove, the last-owner guard.</summary>
[Collection(PortalCollection.Name)]
public sealed class MemberTests(PortalCloud cloud, ITestOutputHelper output)
{
    [Fact]
    public Task Invite_AcceptedThroughMailAfterSignup_ThenRoleChangedAndRemoved() => BrowserRun.RunAsync(cloud, output, async page =>
    {
        const string Owner = "team-owner@example.com";
        const string Invitee = "new-colleague@example.com";
        var (ownerToken, orgId) = await cloud.SignupThroughApiAsync(Owner, Steps.Password);
        await Steps.LoginAsync(page, Owner);
        await page.GetByRole(AriaRole.Link, new() { Name = "Members" }).ClickAsync();

        await page.GetByLabel("Email").FillAsync(Invitee);
        await page.GetByLabel("Role", new() { Exact = true }).SelectOptionAsync("developer");
        await page.GetByRole(AriaRole.Button, new() { Name = "Send invitation" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync($"Invitation sent to {Invitee} as developer.");
        await Expect(page.Locator($"tr[data-invitation='{Invitee}']")).ToContainTextAsync("pending");
        await BrowserRun.ScreenshotAsync(page, "members-invited");

        // The invitee has no account yet: the link leads through login to sign-up and back to the invitation.
        var link = await cloud.Mail.WaitForLinkAsync(Invitee, "/invitations/inv_");
        await using var inviteeContext = await cloud.NewContextAsync();
        var invitee = await inviteeContext.NewPageAsync();
        await invitee.GotoAsync(link.PathAndQuery);
        Assert.Equal("/login", new Uri(invitee.Url).AbsolutePath);
        await invitee.Locator("#main").GetByRole(AriaRole.Link, new() { Name = "Sign up" }).ClickAsync();
        await invitee.GetByLabel("Your name").FillAsync("Colleague");
        await invitee.GetByLabel("Email").FillAsync(Invitee);
        await invitee.GetByLabel("Password").FillAsync(Steps.Password);
        await invitee.GetByRole(AriaRole.Button, new() { Name = "Sign up" }).ClickAsync();
        await invitee.WaitForURLAsync("**/invitations/inv_*");
        await BrowserRun.ScreenshotAsync(invitee, "invitation-accept");
        await invitee.GetByRole(AriaRole.Button, new() { Name = "Accept the invitation" }).ClickAsync();
        await invitee.WaitForURLAsync($"**/orgs/{orgId}/databases?joined=true");
        await Expect(invitee.GetByRole(AriaRole.Status)).ToContainTextAsync("You joined");

        // The owner sees the new member; the invitation is no longer pending.
        await page.GotoAsync(page.Url); // a GET: reloading would post the invitation again
        var row = page.Locator($"tr[data-member='{Invitee}']");
        await Expect(page.GetByLabel($"Role of {Invitee}")).ToHaveValueAsync("developer");
        await Expect(page.Locator($"tr[data-invitation='{Invitee}']")).ToHaveCountAsync(0);

        await page.GetByLabel($"Role of {Invitee}").SelectOptionAsync("admin");
        await page.GetByRole(AriaRole.Button, new() { Name = $"Change role of {Invitee}" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync($"{Invitee} is now admin.");
        var members = await cloud.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/members", ownerToken);
        Assert.Contains(members.Body.GetProperty("items").EnumerateArray(), m => m.GetProperty("email").GetString() == Invitee && m.GetProperty("role").GetString() == "admin");

        // The last owner cannot step down or leave: the reason shows on the owner's own row.
        await page.GetByLabel($"Role of {Owner}").SelectOptionAsync("viewer");
        await page.GetByRole(AriaRole.Button, new() { Name = $"Change role of {Owner}" }).ClickAsync();
        await Expect(page.Locator($"tr[data-member='{Owner}']").GetByTestId("member-error")).ToContainTextAsync("An organization needs an owner");
        await page.GetByRole(AriaRole.Button, new() { Name = $"Remove {Owner}" }).ClickAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = $"Yes, remove {Owner}" }).ClickAsync();
        await Expect(page.Locator($"tr[data-member='{Owner}']").GetByTestId("member-error")).ToContainTextAsync("An organization needs an owner");
        await Expect(page.GetByLabel($"Role of {Owner}")).ToHaveValueAsync("owner");
        await BrowserRun.ScreenshotAsync(page, "members-last-owner");

        await page.GetByRole(AriaRole.Button, new() { Name = $"Remove {Invitee}" }).ClickAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = $"Yes, remove {Invitee}" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync($"{Invitee} was removed");
        await Expect(row).ToHaveCountAsync(0);

        // Removed means gone: the org now looks to them like one that does not exist.
        var response = await invitee.GotoAsync($"/orgs/{orgId}/databases");
        Assert.Equal(404, response!.Status);
    });

    [Fact]
    public Task Invitation_WrongAccountTamperedTokenRevokedOrReused_IsRefusedClearly() => BrowserRun.RunAsync(cloud, output, async page =>
    {
        const string Owner = "inviting-owner@example.com";
        const string Right = "right-person@example.com";
        var (ownerToken, orgId) = await cloud.SignupThroughApiAsync(Owner, Steps.Password);
        await cloud.SignupThroughApiAsync(Right, Steps.Password);
        await cloud.SignupThroughApiAsync("wrong-person@example.com", Steps.Password);
        Assert.Equal(HttpStatusCode.Accepted, (await cloud.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/members", ownerToken, new { email = Right, role = "viewer" })).Status);
        var link = await cloud.Mail.WaitForLinkAsync(Right, "/invitations/inv_");

        // Someone else holding the link cannot use it.
        await Steps.LoginAsync(page, "wrong-person@example.com");
        await page.GotoAsync(link.PathAndQuery);
        await page.GetByRole(AriaRole.Button, new() { Name = "Accept the invitation" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("sent to another email address");
        await page.GetByRole(AriaRole.Button, new() { Name = "Log out" }).ClickAsync();

        // The right person, with the token cut short, then without any token, then with the real link.
        await Steps.LoginAsync(page, Right);
        await page.GotoAsync(link.PathAndQuery[..^3]);
        await page.GetByRole(AriaRole.Button, new() { Name = "Accept the invitation" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("cannot be accepted here");
        await page.GotoAsync(link.AbsolutePath);
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("needs the link from the invitation mail");
        await page.GotoAsync(link.PathAndQuery);
        await page.GetByRole(AriaRole.Button, new() { Name = "Accept the invitation" }).ClickAsync();
        await page.WaitForURLAsync($"**/orgs/{orgId}/databases?joined=true");

        // A second use of the link says so.
        await page.GotoAsync(link.PathAndQuery);
        await page.GetByRole(AriaRole.Button, new() { Name = "Accept the invitation" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("This invitation has already been accepted.");

        // A revoked invitation's link stops working.
        await page.GetByRole(AriaRole.Button, new() { Name = "Log out" }).ClickAsync();
        await Steps.LoginAsync(page, Owner);
        await page.GotoAsync($"/orgs/{orgId}/members");
        await page.GetByLabel("Email").FillAsync("wrong-person@example.com");
        await page.GetByRole(AriaRole.Button, new() { Name = "Send invitation" }).ClickAsync();
        var revokedLink = await cloud.Mail.WaitForLinkAsync("wrong-person@example.com", "/invitations/inv_");
        await page.GetByRole(AriaRole.Button, new() { Name = "Revoke invitation of wrong-person@example.com" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("The invitation was revoked");
        await page.GetByRole(AriaRole.Button, new() { Name = "Log out" }).ClickAsync();
        await Steps.LoginAsync(page, "wrong-person@example.com");
        await page.GotoAsync(revokedLink.PathAndQuery);
        await page.GetByRole(AriaRole.Button, new() { Name = "Accept the invitation" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("cannot be accepted here");
    });
}
