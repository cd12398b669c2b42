using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Databases;
using Kdb.ControlPlane.Ids;
using Kdb.ControlPlane.Internal;
using Kdb.Testing;
using Kdb.Testing.Postgres;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Kdb.ControlPlane.Tests;

/// <summary>
/// The route feed under concurrent changes: versions commit in the order they are taken, so a proxy following
/// "changes since v" never skips one; and proxy positions live in PostgreSQL, so every instance waits for them.
/// </summary>
[Collection(TestCollections.Postgres)]
public sealed class RouteFeedTests(PostgresFixture postgres)
{
    [Fact]
    public async Task ConcurrentRouteChanges_WithSlowCommits_AFollowerOfTheFeedNeverMissesOne()
    {
        await using var app = await ControlPlaneApp.StartAsync(postgres, new Dictionary<string, string> { ["Routes:LongPollTimeout"] = "00:00:02" });
        var (userToken, orgId) = await UserAsync(app, "feed");
        var databases = await SeedReadyDatabasesAsync(app, orgId, 6);
        var proxyToken = await app.ServiceTokenAsync("kdb-proxy", ControlPlaneApp.ProxySecret);
        var signal = app.Factory.Services.GetRequiredService<RouteSignal>();

        // The follower: a full fetch, then long polls; after each answer, what it holds (database -> version).
        var history = new ConcurrentQueue<(long Version, Dictionary<string, long> Held)>();
        using var stop = new CancellationTokenSource();
        var follower = Task.Run(async () =>
        {
            var held = new Dictionary<string, long>(StringComparer.Ordinal);
            var since = -1L;
            while (!stop.IsCancellationRequested)
            {
                var answer = await app.SendAsync(HttpMethod.Get, since < 0 ? "/internal/v1/routes?proxy=follower" : $"/internal/v1/routes?since={since}&proxy=follower", proxyToken);
                Assert.Equal(HttpStatusCode.OK, answer.Status);
                foreach (var entry in answer.Body.GetProperty("upserts").EnumerateArray())
                {
                    held[entry.GetProperty("databaseId").GetString()!] = entry.GetProperty("version").GetInt64();
                }

                since = answer.Body.GetProperty("version").GetInt64();
                history.Enqueue((since, new Dictionary<string, long>(held, StringComparer.Ordinal)));
            }
        });
        await Eventually.WaitAsync(() => Task.FromResult(history.IsEmpty ? null : (bool?)true), "the follower's full fetch");

        // Writers take a version, then hold their transaction open a random while before committing (or rolling
        // back): with versions from a bare sequence, a later version would often commit first.
        var committed = new ConcurrentBag<(string DatabaseId, long Version)>();
        var writers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            var random = new Random(w);
            for (var i = 0; i < 20; i++)
            {
                var databaseId = databases[random.Next(databases.Count)];
                await using var scope = app.Factory.Services.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
                await using var tx = await db.Database.BeginTransactionAsync();
                var version = await RouteVersions.BumpAsync(db, databaseId, null, CancellationToken.None);
                Assert.True(version > 0);
                await Task.Delay(random.Next(0, 25));
                if (random.Next(8) == 0)
                {
                    await tx.RollbackAsync();
                    continue;
                }

                await tx.CommitAsync();
                committed.Add((databaseId, version));
                signal.Pulse();
            }
        })).ToList();
        // And real changes through the API at the same time: lifting lockouts bumps the route.
        writers.Add(Task.Run(async () =>
        {
            for (var i = 0; i < 8; i++)
            {
                var databaseId = databases[i % databases.Count];
                Assert.Equal(HttpStatusCode.OK, (await app.SendAsync(HttpMethod.Delete, $"/v1/databases/{databaseId}/auth-lockouts", userToken)).Status);
                await using var scope = app.Factory.Services.CreateAsyncScope();
                var version = await scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>()
                    .Databases.Where(d => d.Id == databaseId).Select(d => d.RouteVersion).SingleAsync();
                committed.Add((databaseId, version));
            }
        }));
        await Task.WhenAll(writers);

        var last = committed.Max(c => c.Version);
        await Eventually.WaitAsync(() => Task.FromResult(history.Last().Version >= last ? true : (bool?)null), "the follower reaches the last version");
        await stop.CancelAsync();
        await Task.WhenAny(follower, Task.Delay(TimeSpan.FromSeconds(10)));

        // Once the follower's position has passed a committed change, it holds that database at that version or later.
        var answers = history.ToArray();
        Assert.True(committed.Count >= 60, $"only {committed.Count} changes committed");
        foreach (var (databaseId, version) in committed)
        {
            var first = answers.First(a => a.Version >= version);
            Assert.True(
                first.Held.TryGetValue(databaseId, out var held) && held >= version,
                $"the follower moved to version {first.Version} without seeing {databaseId} at {version} (it held {held})");
        }
    }

    [Fact]
    public async Task ProxyPositions_AreShared_AChangeOnOneInstanceWaitsForAProxyPollingTheOther()
    {
        var settings = new Dictionary<string, string>
        {
            ["Routes:LongPollTimeout"] = "00:00:03",
            // Long enough that the slow proxy is always waited for, even on a loaded machine.
            ["Routes:ProxyAckTimeout"] = "00:00:30",
        };
        await using var polled = await ControlPlaneApp.StartAsync(postgres, settings);
        await using var other = await ControlPlaneApp.StartBesideAsync(polled, settings);
        var (token, orgId) = await UserAsync(polled, "shared-positions");
        var databaseId = (await SeedReadyDatabasesAsync(polled, orgId, 1))[0];
        var applyDelay = TimeSpan.FromMilliseconds(700);
        await using var proxy = new TestProxy(polled, "only-a-" + Guid.NewGuid().ToString("N")[..8], applyDelay);
        await proxy.StartAsync();

        // The role is created on the instance the proxy never polls: it still returns only once the proxy holds it.
        var watch = Stopwatch.StartNew();
        var created = await other.SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/roles", token, new { name = "app_ro", kind = "readonly" });
        Assert.Equal(HttpStatusCode.Created, created.Status);
        Assert.True(watch.Elapsed >= applyDelay * 0.9, $"returned after {watch.Elapsed}: the other instance did not wait for the proxy");
        Assert.True(proxy.Entries.TryGetValue(databaseId, out var entry), "returned before the proxy held the route");
        Assert.Contains("app_ro", entry.GetProperty("roles").EnumerateArray().Select(r => r.GetProperty("name").GetString()));

        // A restarted instance knows the proxy too: its position is in PostgreSQL, not in the stopped process.
        await other.DisposeAsync();
        await using var restarted = await ControlPlaneApp.StartBesideAsync(polled, settings);
        watch.Restart();
        Assert.Equal(HttpStatusCode.NoContent, (await restarted.SendAsync(HttpMethod.Delete, $"/v1/databases/{databaseId}/roles/app_ro", token)).Status);
        Assert.True(watch.Elapsed >= applyDelay * 0.9, $"returned after {watch.Elapsed}: the restarted instance did not wait for the proxy");
        Assert.True(proxy.Entries.TryGetValue(databaseId, out entry));
        Assert.DoesNotContain("app_ro", entry.GetProperty("roles").EnumerateArray().Select(r => r.GetProperty("name").GetString()));
    }

    [Fact]
    public async Task InternalCalls_AreAuthenticatedByTheServiceSchemeOnly_NoAudienceFailureLogged()
    {
        var logs = new CapturingLoggerProvider();
        await using var app = await ControlPlaneApp.StartAsync(postgres, new Dictionary<string, string> { ["Logging:LogLevel:Default"] = "Information" }, logs);
        var node = await app.ServiceTokenAsync("kdb-node", ControlPlaneApp.NodeSecret);
        var proxy = await app.ServiceTokenAsync("kdb-proxy", ControlPlaneApp.ProxySecret);
        var (user, _) = await UserAsync(app, "quiet");
        var beat = new { pgEndpoint = "127.0.0.1:7001", internalEndpoint = "127.0.0.1:7101", httpEndpoint = "http://127.0.0.1:7201", capacity = 100 };

        Assert.Equal(HttpStatusCode.NoContent, (await app.SendAsync(HttpMethod.Post, "/internal/v1/nodes/node_q/heartbeat", node, beat)).Status);
        Assert.Equal(HttpStatusCode.OK, (await app.SendAsync(HttpMethod.Get, "/internal/v1/routes?proxy=quiet", proxy)).Status);
        Assert.Equal(HttpStatusCode.OK, (await app.SendAsync(HttpMethod.Get, "/v1/me", user)).Status);

        Assert.Contains(logs.Messages, m => m.StartsWith("Information", StringComparison.Ordinal));
        var noise = logs.Messages.Where(m => m.Contains("Failed to validate the token", StringComparison.Ordinal)).ToList();
        Assert.True(noise.Count == 0, string.Join("\n", noise));

        // The split by path keeps each audience on its side.
        Assert.Equal(HttpStatusCode.Unauthorized, (await app.SendAsync(HttpMethod.Get, "/internal/v1/routes", user)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await app.SendAsync(HttpMethod.Get, "/v1/me", proxy)).Status);
    }

    private static async Task<(string Token, string OrgId)> UserAsync(ControlPlaneApp app, string name)
    {
        var token = await app.SignupAndLoginAsync(SharedControlPlane.Email(name));
        var orgId = (await app.SendAsync(HttpMethod.Get, "/v1/me", token)).Body.GetProperty("orgs")[0].GetProperty("id").GetString()!;
        return (token, orgId);
    }

    /// <summary>Ready, placed databases written straight to the store (provisioning is not what is under test).</summary>
    private static async Task<List<string>> SeedReadyDatabasesAsync(ControlPlaneApp app, string orgId, int count)
    {
        await using var scope = app.Factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
        var ids = new List<string>();
        for (var i = 0; i < count; i++)
        {
            var database = new DatabaseRecord
            {
                Id = KdbIds.NewDatabaseId(),
                OrgId = orgId,
                Name = $"feed-{i}",
                Status = "ready",
                QuotaState = "ok",
                TenantId = DatabaseEndpoints.NewTenantId(),
                GroupId = 9,
                CreatedAt = DateTimeOffset.UtcNow,
            };
            db.Databases.Add(database);
            db.DatabaseRoles.Add(new DatabaseRoleRecord { DatabaseId = database.Id, Name = "owner", Kind = "owner", ScramVerifier = "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy", CreatedAt = DateTimeOffset.UtcNow });
            ids.Add(database.Id);
        }

        await db.SaveChangesAsync();
        await RouteVersions.BumpAsync(db, ids.ToArray(), null, CancellationToken.None);
        return ids;
    }
}
