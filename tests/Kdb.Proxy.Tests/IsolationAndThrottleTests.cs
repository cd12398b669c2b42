using Kdb.Testing.Proxy;
using Npgsql;

namespace Kdb.Proxy.Tests;

/// <summary>Tenant isolation at the proxy, the failed-login throttle, quota states and connection limits.</summary>
[Collection(ProxyCollection.Name)]
public sealed class IsolationAndThrottleTests(ProxyTestBed bed)
{
    [Fact]
    public async Task CredentialsOfA_ReachNothingOfB_ByAnyRoutingForm_SameAnswerAsMissing()
    {
        var a = await bed.CreateRoutedDatabaseAsync("pw-iso-a");
        var b = await bed.CreateRoutedDatabaseAsync("pw-iso-b");
        var missing = "db_" + Guid.NewGuid().ToString("N")[..16];
        var proxy = bed.Proxy;

        var attempts = new List<(string What, string ConnectionString)>
        {
            ("B by name", proxy.ConnectionString(b.DatabaseId, "owner", "pw-iso-a")),
            ("B by --database", proxy.ConnectionString(a.DatabaseId, "owner", "pw-iso-a", "Options=--database=" + b.DatabaseId)),
            ("B by endpoint", proxy.ConnectionString(a.DatabaseId, "owner", "pw-iso-a", "Options=endpoint=" + b.DatabaseId)),
            ("missing by name", proxy.ConnectionString(missing, "owner", "pw-iso-a")),
            ("missing by --database", proxy.ConnectionString(a.DatabaseId, "owner", "pw-iso-a", "Options=--database=" + missing + "x")),
            ("A with a role it lacks", proxy.ConnectionString(a.DatabaseId, "nobody", "pw-iso-a")),
        };
        var answers = new List<(string What, string State, string Message)>();
        foreach (var (what, cs) in attempts)
        {
            var e = await Assert.ThrowsAsync<PostgresException>(async () =>
            {
                await using var conn = new NpgsqlConnection(cs);
                await conn.OpenAsync();
            });
            answers.Add((what, e.SqlState, e.MessageText.Replace("\"nobody\"", "\"owner\"", StringComparison.Ordinal)));
        }

        Assert.All(answers, x => Assert.Equal("28P01", x.State));
        Assert.Single(answers.Select(x => x.Message).Distinct());

        // A's credentials still open A.
        await using var ok = new NpgsqlConnection(proxy.ConnectionString(a.DatabaseId, "owner", "pw-iso-a"));
        await ok.OpenAsync();
    }

    [Fact]
    public async Task PasswordGuessingLoop_IsThrottled_ThenCorrectLoginWorksAfterBackoff_AndLiftingClearsIt()
    {
        var entry = await bed.CreateRoutedDatabaseAsync("pw-guess-right");
        var proxy = bed.Proxy;
        var verdicts = new List<string>();
        for (var i = 0; i < 12; i++)
        {
            var e = await Assert.ThrowsAsync<PostgresException>(async () =>
            {
                await using var conn = new NpgsqlConnection(proxy.ConnectionString(entry.DatabaseId, "owner", "guess-" + i));
                await conn.OpenAsync();
            });
            verdicts.Add(e.SqlState);
        }

        // The first guess gets a verdict; quick follow-ups get the throttle error instead of another verdict.
        Assert.Equal("28P01", verdicts[0]);
        Assert.Contains("08004", verdicts);
        Assert.True(verdicts.Count(v => v == "28P01") < verdicts.Count / 2, string.Join(",", verdicts));

        // Concurrent guesses: at most one of them reaches an authentication verdict.
        await Task.Delay(TimeSpan.FromSeconds(6));
        var concurrent = await Task.WhenAll(Enumerable.Range(0, 6).Select(async i =>
        {
            try
            {
                await using var conn = new NpgsqlConnection(proxy.ConnectionString(entry.DatabaseId, "owner", "parallel-" + i));
                await conn.OpenAsync();
                return "ok";
            }
            catch (PostgresException e)
            {
                return e.SqlState;
            }
        }));
        Assert.True(concurrent.Count(v => v == "28P01") <= 1, string.Join(",", concurrent));

        // Lifting the lockout through the route entry lets the correct password in at once.
        await bed.UpdateAsync(entry with { LockoutResetAt = DateTimeOffset.UtcNow.AddSeconds(1) });
        await using (var conn = new NpgsqlConnection(proxy.ConnectionString(entry.DatabaseId, "owner", "pw-guess-right")))
        {
            await conn.OpenAsync();
        }

        // The control plane saw the denials and throttles.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!bed.Routes.Events.Any(e => e.DatabaseId == entry.DatabaseId && e.Kind == "throttle"))
        {
            Assert.True(DateTime.UtcNow < deadline, "no throttle event reached the connection log");
            await Task.Delay(200);
        }

        Assert.Contains(bed.Routes.Events, e => e.DatabaseId == entry.DatabaseId && e.Kind == "deny" && e.Reason == "auth_failed" && e.ClientIp == "127.0.0.1");
    }

    [Fact]
    public async Task WrongPassword_WithDefaultClientSettings_GetsTheVerdictNotAThrottle()
    {
        // Npgsql and libpq retry a refused login once on their own (gssencmode/sslmode "prefer"): both tries must
        // end in the authentication verdict.
        var entry = await bed.CreateRoutedDatabaseAsync("pw-defaults");
        var e = await Assert.ThrowsAsync<PostgresException>(async () =>
        {
            await using var conn = new NpgsqlConnection($"Host=127.0.0.1;Port={bed.Proxy.PgPort};Username=owner;Password=wrong;Database={entry.DatabaseId};Pooling=false");
            await conn.OpenAsync();
        });
        Assert.Equal("28P01", e.SqlState);
        var (exit, _, stderr) = await PgRoutingTests.PsqlAsync($"host=127.0.0.1 port={bed.Proxy.PgPort} dbname={entry.DatabaseId}x user=owner", "wrong", "SELECT 1");
        Assert.NotEqual(0, exit);
        Assert.Contains("password authentication failed for user \"owner\"", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CorrectLogin_AfterTheBackoff_Works()
    {
        var entry = await bed.CreateRoutedDatabaseAsync("pw-backoff-right");
        var e = await Assert.ThrowsAsync<PostgresException>(async () =>
        {
            await using var conn = new NpgsqlConnection(bed.Proxy.ConnectionString(entry.DatabaseId, "owner", "wrong"));
            await conn.OpenAsync();
        });
        Assert.Equal("28P01", e.SqlState);
        await Task.Delay(ProxyTestBed.ThrottleBaseDelay * 3);
        await using var ok = new NpgsqlConnection(bed.Proxy.ConnectionString(entry.DatabaseId, "owner", "pw-backoff-right"));
        await ok.OpenAsync();

        // A pair that logged in is exempt: a later typo gets a verdict, not a throttle.
        for (var i = 0; i < 3; i++)
        {
            var typo = await Assert.ThrowsAsync<PostgresException>(async () =>
            {
                await using var conn = new NpgsqlConnection(bed.Proxy.ConnectionString(entry.DatabaseId, "owner", "typo"));
                await conn.OpenAsync();
            });
            Assert.Equal("28P01", typo.SqlState);
        }
    }

    [Fact]
    public async Task SuspendedDatabase_IsRefusedWith53400_AfterAuthentication()
    {
        var entry = await bed.CreateRoutedDatabaseAsync("pw-suspended", quotaState: "suspended");
        var e = await Assert.ThrowsAsync<PostgresException>(async () =>
        {
            await using var conn = new NpgsqlConnection(bed.Proxy.ConnectionString(entry.DatabaseId, "owner", "pw-suspended"));
            await conn.OpenAsync();
        });
        Assert.Equal("53400", e.SqlState);
        Assert.Equal("database suspended: quota exceeded", e.MessageText);

        await bed.UpdateAsync(entry with { QuotaState = "ok" });
        await using var ok = new NpgsqlConnection(bed.Proxy.ConnectionString(entry.DatabaseId, "owner", "pw-suspended"));
        await ok.OpenAsync();
    }

    [Fact]
    public async Task MaxConnections_RefusesTheSessionBeyondTheLimit_AndFreesSlotsOnClose()
    {
        var entry = await bed.CreateRoutedDatabaseAsync("pw-limit", maxConnections: 2);
        var cs = bed.Proxy.ConnectionString(entry.DatabaseId, "owner", "pw-limit");
        await using var first = new NpgsqlConnection(cs);
        await first.OpenAsync();
        await using (var second = new NpgsqlConnection(cs))
        {
            await second.OpenAsync();
            var e = await Assert.ThrowsAsync<PostgresException>(async () =>
            {
                await using var third = new NpgsqlConnection(cs);
                await third.OpenAsync();
            });
            Assert.Equal("53300", e.SqlState);
        }

        await Task.Delay(200);
        await using var again = new NpgsqlConnection(cs);
        await again.OpenAsync();
    }

    [Fact]
    public async Task ThrottledDatabase_StatementsAreLimitedToItsRate()
    {
        var entry = await bed.CreateRoutedDatabaseAsync("pw-rate", quotaState: "throttled", statementsPerSecond: 10);
        await using var conn = new NpgsqlConnection(bed.Proxy.ConnectionString(entry.DatabaseId, "owner", "pw-rate"));
        await conn.OpenAsync();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; i < 30; i++)
        {
            await using var cmd = new NpgsqlCommand("SELECT " + i, conn);
            Assert.Equal(i, await cmd.ExecuteScalarAsync());
        }

        // 30 statements at 10/s with a bucket of 10: at least ~2 s, whatever the machine's speed.
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(1.8), watch.Elapsed.ToString());
    }

    [Fact]
    public async Task RemovedRoute_ClosesSessionsAndRefusesLikeMissing()
    {
        var entry = await bed.CreateRoutedDatabaseAsync("pw-removed");
        var cs = bed.Proxy.ConnectionString(entry.DatabaseId, "owner", "pw-removed");
        await using var conn = new NpgsqlConnection(cs);
        await conn.OpenAsync();
        bed.Routes.Remove(entry.DatabaseId);
        await Task.Delay(1500);
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await using var cmd = new NpgsqlCommand("SELECT 1", conn);
            await cmd.ExecuteScalarAsync();
        });
        var e = await Assert.ThrowsAsync<PostgresException>(async () =>
        {
            await using var again = new NpgsqlConnection(cs);
            await again.OpenAsync();
        });
        Assert.Equal("28P01", e.SqlState);
    }
}
