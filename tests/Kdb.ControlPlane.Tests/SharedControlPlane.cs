using System.Net;
using System.Text.RegularExpressions;
using Kdb.ControlPlane.Data;
using Kdb.Testing.Postgres;
using Microsoft.Extensions.DependencyInjection;

namespace Kdb.ControlPlane.Tests;

/// <summary>
/// One control plane shared by every test of a class (xunit class fixture): tests use addresses of their
/// own, so they do not see each other. Mail goes to a private directory that <see cref="WaitForMailAsync"/> reads.
/// </summary>
public sealed partial class SharedControlPlane(PostgresFixture postgres) : IAsyncLifetime
{
    private ControlPlaneApp? _app;

    public string MailDirectory { get; } = Path.Combine(Path.GetTempPath(), "kdb-cp-mail-" + Guid.NewGuid().ToString("N"));

    public ControlPlaneApp App => _app ?? throw new InvalidOperationException("not started");

    public async Task InitializeAsync() => _app = await ControlPlaneApp.StartAsync(postgres, new Dictionary<string, string>
    {
        ["Mail:Directory"] = MailDirectory,
        ["Mail:LinkBaseUrl"] = "http://portal.test",
        ["RateLimits:TokenRequestsPerMinute"] = "100000",
        ["RateLimits:PasswordResetRequestsPerMinute"] = "100000",
        ["PasswordReset:MinInterval"] = "00:00:00",
        // Tests run the scheduler and retention sweeps themselves, so the background ones stay out of the way.
        ["Backups:SchedulerInterval"] = "01:00:00",
        ["Backups:RetentionInterval"] = "01:00:00",
    });

    public async Task DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }

        if (Directory.Exists(MailDirectory))
        {
            Directory.Delete(MailDirectory, recursive: true);
        }
    }

    /// <summary>A unique address for one test.</summary>
    public static string Email(string name) => $"{name}-{Guid.NewGuid().ToString("N")[..8]}@example.com";

    /// <summary>The .eml files sent to <paramref name="to"/> so far, oldest first (file names start with the time).</summary>
    public IReadOnlyList<string> MailTo(string to) =>
        Directory.Exists(MailDirectory)
            ? Directory.GetFiles(MailDirectory, "*.eml").Order(StringComparer.Ordinal).Select(File.ReadAllText).Where(t => t.Contains($"\r\nTo: {to}\r\n", StringComparison.Ordinal)).ToList()
            : [];

    /// <summary>Waits (generously: this never fails on a slow machine) for the <paramref name="count"/>-th mail to an address.</summary>
    public async Task<string> WaitForMailAsync(string to, int count = 1)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var mails = MailTo(to);
            if (mails.Count >= count)
            {
                return mails[count - 1];
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"no mail #{count} to {to} in {MailDirectory}");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>The first link of a mail.</summary>
    public static Uri Link(string mail) => new(LinkPattern().Match(mail).Value);

    /// <summary>The token query parameter of a mail's link.</summary>
    public static string Token(string mail) => Uri.UnescapeDataString(Regex.Match(Link(mail).Query, "token=([^&]+)").Groups[1].Value);

    /// <summary>Signs a user up and returns their token, id and personal org.</summary>
    public async Task<(string Token, string UserId, string OrgId)> UserAsync(string email)
    {
        var token = await App.SignupAndLoginAsync(email);
        var me = await App.SendAsync(HttpMethod.Get, "/v1/me", token);
        Assert.Equal(HttpStatusCode.OK, me.Status);
        return (token, me.Body.GetProperty("id").GetString()!, me.Body.GetProperty("orgs")[0].GetProperty("id").GetString()!);
    }

    /// <summary>Invites through the API, reads the mail and accepts as the invitee: the whole real path.</summary>
    public async Task<(string Token, string UserId)> JoinAsync(string orgId, string inviterToken, string role, string? email = null)
    {
        email ??= Email(role);
        var (token, userId, _) = await UserAsync(email);
        var invited = await App.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/members", inviterToken, new { email, role });
        Assert.Equal(HttpStatusCode.Accepted, invited.Status);
        var mail = await WaitForMailAsync(email);
        var accepted = await App.SendAsync(HttpMethod.Post, $"/v1/invitations/{invited.Body.GetProperty("id").GetString()}/accept", token, new { token = Token(mail) });
        Assert.Equal(HttpStatusCode.OK, accepted.Status);
        return (token, userId);
    }

    /// <summary>Runs a query against the control plane's own store.</summary>
    public async Task<T> WithDbAsync<T>(Func<ControlPlaneDbContext, Task<T>> query)
    {
        await using var scope = App.Factory.Services.CreateAsyncScope();
        return await query(scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>());
    }

    [GeneratedRegex(@"https?://[^\s]+")]
    private static partial Regex LinkPattern();
}
