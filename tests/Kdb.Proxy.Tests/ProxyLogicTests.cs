using System.Text;
using Kdb.Proxy.Pg;
using Kdb.Proxy.Routing;
using Kdb.Proxy.Throttling;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kdb.Proxy.Tests;

/// <summary>The proxy's pure logic: routing precedence, the failed-login throttle, the statement bucket, leader order.</summary>
public sealed class ProxyLogicTests
{
    private static Dictionary<string, string> Params(params (string Name, string Value)[] p) => p.ToDictionary(x => x.Name, x => x.Value);

    [Fact]
    public void Parse_OptionsDatabase_WinsOverSniAndDatabaseName()
    {
        var r = StartupRequest.Parse(Params(("user", "owner"), ("database", "db_name"), ("options", "--database=db_opt -c search_path=x")), "db-sni.kdb.localhost", out _)!;
        Assert.Equal("db_opt", r.Database);
        Assert.Equal(RoutingSource.Options, r.Source);
        Assert.Equal("-c search_path=x", r.ForwardedOptions);
    }

    [Fact]
    public void Parse_EndpointOption_NeonForm_Routes()
    {
        var r = StartupRequest.Parse(Params(("user", "owner"), ("database", "x"), ("options", "endpoint=db_ep")), null, out _)!;
        Assert.Equal("db_ep", r.Database);
    }

    [Fact]
    public void Parse_SniFirstLabel_WinsOverDatabaseName_AndNonDatabaseLabelsAreIgnored()
    {
        var sni = StartupRequest.Parse(Params(("user", "owner"), ("database", "db_name")), "DB-ABC123.kdb.localhost", out _)!;
        Assert.Equal(("db_abc123", RoutingSource.Sni), (sni.Database, sni.Source));
        var plain = StartupRequest.Parse(Params(("user", "owner"), ("database", "db_name")), "localhost", out _)!;
        Assert.Equal(("db_name", RoutingSource.DatabaseName), (plain.Database, plain.Source));
    }

    [Fact]
    public void Parse_NoDatabase_DefaultsToUser_AndNoUserIsAnError()
    {
        Assert.Equal("alice", StartupRequest.Parse(Params(("user", "alice")), null, out _)!.Database);
        Assert.Null(StartupRequest.Parse(Params(("database", "db_x")), null, out var error));
        Assert.Contains("no PostgreSQL user name", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_ClientCannotClaimToBeTheProxy_AndTheJwtSwitchIsConsumed()
    {
        var r = StartupRequest.Parse(Params(("user", "owner"), ("options", "--kdb:proxy=true --kdb:jwt=true -cstatement_timeout=5"), ("application_name", "app")), null, out _)!;
        Assert.True(r.TokenPassword);
        Assert.Equal("-cstatement_timeout=5", r.ForwardedOptions);
        Assert.Contains(new KeyValuePair<string, string>("application_name", "app"), r.Forwarded);
    }

    [Fact]
    public void ParseStartupParameters_RandomBytes_NeverThrow()
    {
        var random = new Random(7);
        for (var i = 0; i < 2000; i++)
        {
            var bytes = new byte[random.Next(0, 64)];
            random.NextBytes(bytes);
            _ = PgFrames.ParseStartupParameters(bytes);
        }

        Assert.Null(PgFrames.ParseStartupParameters("user\0x"u8));
        Assert.Equal("x", PgFrames.ParseStartupParameters("user\0x\0\0"u8)!["user"]);
        Assert.Null(PgFrames.ParseStartupParameters(Encoding.Latin1.GetBytes("user\0\xff\0\0")));
    }

    [Fact]
    public void Throttle_AfterFreeFailures_BacksOffExponentially_UpToTheCap()
    {
        var clock = new ManualClock();
        var throttle = new AuthThrottle(new ProxyOptions { ThrottleBaseDelay = TimeSpan.FromSeconds(1), ThrottleMaxDelay = TimeSpan.FromSeconds(5), ThrottleFreeFailures = 2 }, clock);
        var delays = new List<TimeSpan>();
        for (var i = 0; i < 7; i++)
        {
            Assert.Equal(ThrottleVerdict.Allowed, throttle.Begin("10.0.0.1", "db_a", null));
            var delay = throttle.Failed("10.0.0.1", "db_a");
            delays.Add(delay);
            if (delay > TimeSpan.Zero)
            {
                Assert.Equal(ThrottleVerdict.Throttled, throttle.Begin("10.0.0.1", "db_a", null));
                clock.Advance(delay);
            }
        }

        Assert.Equal(new[] { 0, 0, 1, 2, 4, 5, 5 }, delays.Select(d => (int)d.TotalSeconds));

        // Other pairs are unaffected.
        Assert.Equal(ThrottleVerdict.Allowed, throttle.Begin("10.0.0.2", "db_a", null));
        Assert.Equal(ThrottleVerdict.Allowed, throttle.Begin("10.0.0.1", "db_b", null));
    }

    [Fact]
    public void Throttle_ConcurrentAttemptOfAPair_IsThrottled_UntilTheFirstEnds()
    {
        var throttle = new AuthThrottle(new ProxyOptions(), new ManualClock());
        Assert.Equal(ThrottleVerdict.Allowed, throttle.Begin("ip", "db", null));
        Assert.Equal(ThrottleVerdict.Throttled, throttle.Begin("ip", "db", null));
        throttle.Abandon("ip", "db");
        Assert.Equal(ThrottleVerdict.Allowed, throttle.Begin("ip", "db", null));
    }

    [Fact]
    public void Throttle_SuccessExemptsThePair_AndLockoutResetForgetsEarlierFailures()
    {
        var clock = new ManualClock();
        var throttle = new AuthThrottle(new ProxyOptions { ThrottleFreeFailures = 0 }, clock);
        Assert.Equal(ThrottleVerdict.Allowed, throttle.Begin("ip", "db", null));
        throttle.Failed("ip", "db");
        Assert.Equal(ThrottleVerdict.Throttled, throttle.Begin("ip", "db", null));
        Assert.Equal(1, throttle.LockedPairs);
        Assert.Equal(ThrottleVerdict.Allowed, throttle.Begin("ip", "db", clock.GetUtcNow()));

        throttle.Succeeded("ip", "db");
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(ThrottleVerdict.Allowed, throttle.Begin("ip", "db", null));
            Assert.Equal(TimeSpan.Zero, throttle.Failed("ip", "db"));
        }
    }

    [Fact]
    public void StatementBucket_AllowsItsRate_ThenAsksToWait()
    {
        var clock = new ManualClock();
        var state = new DatabaseState(Entry("db_a", "throttled", statementsPerSecond: 10));
        Assert.True(state.Throttled);
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(TimeSpan.Zero, state.TakeStatementToken(clock));
        }

        Assert.True(state.TakeStatementToken(clock) > TimeSpan.Zero);
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(TimeSpan.Zero, state.TakeStatementToken(clock));
    }

    [Fact]
    public void SessionLimit_RefusesBeyondMaxConnections()
    {
        var state = new DatabaseState(Entry("db_a", "ok", maxConnections: 1));
        Assert.True(state.TryOpenSession());
        Assert.False(state.TryOpenSession());
        state.CloseSession();
        Assert.True(state.TryOpenSession());
        Assert.Equal(2, state.Connections);
    }

    [Fact]
    public async Task RouteCache_FollowsUpsertsAndRemovals_AndPrefersTheReportedLeader()
    {
        using var http = new HttpClient { BaseAddress = new Uri("http://127.0.0.1:9") };
        var cache = new RouteCache(new ControlPlaneClient(http, "p", _ => ValueTask.FromResult("t")), new ProxyOptions { RemovalDrain = TimeSpan.Zero }, TimeProvider.System, NullLogger<RouteCache>.Instance);
        cache.Apply(new RoutesResponse(5, true, [Entry("db_a", "ok"), Entry("db_b", "ok")], []));
        var a = await cache.ResolveAsync("db_a", CancellationToken.None);
        Assert.NotNull(a);
        Assert.Equal("n2", cache.ReplicasInOrder(a.Entry)[0].NodeId);
        cache.ReportLeader("7", "n3");
        Assert.Equal(["n3", "n1", "n2"], cache.ReplicasInOrder(a.Entry).Select(r => r.NodeId));

        cache.Apply(new RoutesResponse(6, false, [], ["db_a"]));
        Assert.True(a.Removed || a.RemovedToken.WaitHandle.WaitOne(TimeSpan.FromSeconds(5)));
        cache.Apply(new RoutesResponse(7, true, [Entry("db_c", "ok")], []));
        Assert.Equal(["db_c"], cache.Databases.Select(d => d.Entry.DatabaseId));
        Assert.Equal(7, cache.Version);
    }

    private static RouteEntry Entry(string id, string quota, int maxConnections = 10, int statementsPerSecond = 100) => new(
        id, "1", "org_x", "7",
        [new RouteReplica("n1", "127.0.0.1:1", null), new RouteReplica("n2", "127.0.0.1:2", null), new RouteReplica("n3", "127.0.0.1:3", null)],
        "n2", [], quota, new RouteLimits(maxConnections, statementsPerSecond), null, 1);

    private sealed class ManualClock : TimeProvider
    {
        private DateTimeOffset _now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        private long _ticks = 1;

        public override DateTimeOffset GetUtcNow() => _now;

        public override long GetTimestamp() => _ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public void Advance(TimeSpan by)
        {
            _now += by;
            _ticks += by.Ticks;
        }
    }
}
