using Kdb.Testing;
using Kdb.Testing.Postgres;

namespace Kdb.ControlPlane.Tests;

[Collection(TestCollections.Postgres)]
public sealed class SecretsInLogsTests(PostgresFixture postgres)
{
    [Fact]
    public async Task Secrets_NeverReachTheLogs()
    {
        var sink = new CapturingLoggerProvider();
        var mail = Path.Combine(Path.GetTempPath(), "kdb-logs-mail-" + Guid.NewGuid().ToString("N"));
        await using var app = await ControlPlaneApp.StartAsync(postgres, new Dictionary<string, string> { ["Logging:LogLevel:Default"] = "Debug", ["Mail:Directory"] = mail }, sink);
        const string Password = "a very secret user password";
        var token = await app.SignupAndLoginAsync("logs@example.com", Password);
        var orgId = (await app.SendAsync(HttpMethod.Get, "/v1/me", token)).Body.GetProperty("orgs")[0].GetProperty("id").GetString()!;
        var database = await app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "logged" });
        var key = await app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/api-keys", token, new { name = "k" });
        var wrong = await app.SendAsync(HttpMethod.Post, "/v1/signup", token, new { email = "logs@example.com", password = "another secret password", name = "x" });
        // Mailed one-time tokens: an invitation, a password reset, and the new password it sets.
        await app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/members", token, new { email = "invitee@example.com", role = "viewer" });
        await app.Client.PostAsync(new Uri("/v1/password-reset", UriKind.Relative), System.Net.Http.Json.JsonContent.Create(new { email = "logs@example.com" }));
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while ((!Directory.Exists(mail) || Directory.GetFiles(mail, "*.eml").Length < 2) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        var mailed = Directory.GetFiles(mail, "*.eml").Select(f => SharedControlPlane.Token(File.ReadAllText(f))).ToList();
        Assert.Equal(2, mailed.Count);
        var resetToken = mailed.Single(t => Directory.GetFiles(mail, "*.eml").Any(f => File.ReadAllText(f).Contains("reset-password?token=" + t, StringComparison.Ordinal)));
        await app.Client.PostAsync(new Uri("/v1/password-reset/confirm", UriKind.Relative), System.Net.Http.Json.JsonContent.Create(new { token = resetToken, password = "the new secret password" }));
        Directory.Delete(mail, recursive: true);
        var secrets = new[]
        {
            mailed[0],
            mailed[1],
            "the new secret password",
            Password,
            "another secret password",
            token,
            database.Body.GetProperty("credentials").GetProperty("password").GetString()!,
            key.Body.GetProperty("secret").GetString()!,
            ControlPlaneApp.ProxySecret,
            ControlPlaneApp.NodeSecret,
        };

        var logs = sink.Messages.ToArray();
        Assert.NotEmpty(logs);
        foreach (var secret in secrets)
        {
            var leak = logs.FirstOrDefault(line => line.Contains(secret, StringComparison.Ordinal));
            Assert.True(leak is null, $"a secret reached the logs: {leak}");
        }
    }
}
