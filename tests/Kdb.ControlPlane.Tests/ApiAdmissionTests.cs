using System.Net;
using Kdb.Testing;
using Kdb.Testing.Postgres;

namespace Kdb.ControlPlane.Tests;

[Collection(TestCollections.Postgres)]
public sealed class ApiAdmissionTests(PostgresFixture postgres)
{
    [Fact]
    public async Task ABurstFarAboveTheConcurrencyLimit_WaitsItsTurn_AndEveryRequestSucceeds()
    {
        await using var app = await ControlPlaneApp.StartAsync(postgres, new Dictionary<string, string>
        {
            ["Api:ConcurrentRequests"] = "2",
            ["Api:QueuedRequests"] = "1000",
        });
        var token = await app.SignupAndLoginAsync("burst@example.com");

        var statuses = await Task.WhenAll(Enumerable.Range(0, 200).Select(async _ => (await app.SendAsync(HttpMethod.Get, "/v1/me", token)).Status));

        Assert.All(statuses, s => Assert.Equal(HttpStatusCode.OK, s));
    }

    [Fact]
    public async Task WithNoQueue_RequestsBeyondTheLimit_Are503ProblemsWithRetryAfter_AndTheRestSucceed()
    {
        await using var app = await ControlPlaneApp.StartAsync(postgres, new Dictionary<string, string>
        {
            ["Api:ConcurrentRequests"] = "1",
            ["Api:QueuedRequests"] = "0",
        });
        var token = await app.SignupAndLoginAsync("noqueue@example.com");

        var responses = await Task.WhenAll(Enumerable.Range(0, 60).Select(_ => app.SendAsync(HttpMethod.Get, "/v1/me", token)));

        Assert.Contains(responses, r => r.Status == HttpStatusCode.OK);
        foreach (var (status, body, response) in responses)
        {
            if (status == HttpStatusCode.OK)
            {
                continue;
            }

            Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
            Assert.Equal("1", response.Headers.GetValues("Retry-After").Single());
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.EndsWith("/overloaded", body.GetProperty("type").GetString(), StringComparison.Ordinal);
        }

        // Paths outside the management API (health, internal endpoints) are never queued.
        Assert.Equal(HttpStatusCode.OK, (await app.Client.GetAsync(new Uri("/health/live", UriKind.Relative))).StatusCode);
    }
}
