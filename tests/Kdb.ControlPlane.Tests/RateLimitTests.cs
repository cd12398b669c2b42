using System.Net;
using Kdb.Testing;
using Kdb.Testing.Postgres;

namespace Kdb.ControlPlane.Tests;

[Collection(TestCollections.Postgres)]
public sealed class RateLimitTests(PostgresFixture postgres)
{
    [Fact]
    public async Task TokenEndpointAndApi_OverTheLimit_Are429WithRetryAfter()
    {
        await using var app = await ControlPlaneApp.StartAsync(postgres, new Dictionary<string, string>
        {
            ["RateLimits:TokenRequestsPerMinute"] = "3",
            ["RateLimits:ApiRequestsPerMinute"] = "4",
            ["RateLimits:PasswordResetRequestsPerMinute"] = "2",
        });
        var token = await app.SignupAndLoginAsync("limited@example.com"); // signup: API 1; password grant: token 1

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 3; i++)
        {
            using var response = await app.Client.PostAsync(new Uri("/connect/token", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "password",
                ["username"] = "limited@example.com",
                ["password"] = "guess " + i,
            }));
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                Assert.True(int.Parse(response.Headers.GetValues("Retry-After").Single(), System.Globalization.CultureInfo.InvariantCulture) >= 1);
                Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            }
        }

        Assert.Equal([HttpStatusCode.BadRequest, HttpStatusCode.BadRequest, HttpStatusCode.TooManyRequests], statuses);

        var api = new List<HttpStatusCode>();
        for (var i = 0; i < 5; i++)
        {
            api.Add((await app.SendAsync(HttpMethod.Get, "/v1/me", token)).Status);
        }

        // The user's own partition: 4 per minute.
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests], api);

        // Password reset has its own, stricter per-IP limit (it sends mail).
        var resets = new List<HttpStatusCode>();
        for (var i = 0; i < 3; i++)
        {
            using var response = await app.Client.PostAsync(new Uri("/v1/password-reset", UriKind.Relative), System.Net.Http.Json.JsonContent.Create(new { email = "limited@example.com" }));
            resets.Add(response.StatusCode);
        }

        Assert.Equal([HttpStatusCode.Accepted, HttpStatusCode.Accepted, HttpStatusCode.TooManyRequests], resets);
    }
}
