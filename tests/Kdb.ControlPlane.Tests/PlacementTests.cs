using System.Net;
using System.Text;
using System.Text.Json;
using Kdb.Testing;
using Kdb.Testing.Postgres;

namespace Kdb.ControlPlane.Tests;

/// <summary>PUT /internal/v1/placements and leaders from heartbeats, as the route table shows them to proxies.</summary>
[Collection(TestCollections.Postgres)]
public sealed class PlacementTests(PostgresFixture postgres) : IAsyncLifetime
{
    private RoutedControlPlane _cp = null!;
    private string _provisioning = null!;
    private string _node = null!;
    private string _proxy = null!;

    private ControlPlaneApp App => _cp.App;

    public async Task InitializeAsync()
    {
        _cp = await RoutedControlPlane.StartAsync(postgres, new Dictionary<string, string> { ["Routes:LongPollTimeout"] = "00:00:03" });
        _provisioning = await App.ServiceTokenAsync("kdb-provisioning", ControlPlaneApp.ProvisioningSecret);
        _node = await App.ServiceTokenAsync("kdb-node", ControlPlaneApp.NodeSecret);
        _proxy = await App.ServiceTokenAsync("kdb-proxy", ControlPlaneApp.ProxySecret);
    }

    public async Task DisposeAsync() => await _cp.DisposeAsync();

    [Fact]
    public async Task Placement_RoundTrips_AndReachesLongPollingProxies()
    {
        var (a, b) = (await NodeAsync("pl-a", 7001), await NodeAsync("pl-b", 7002));
        var (_, databaseId) = await _cp.ReadyDatabaseAsync("placed");
        var version = (await App.SendAsync(HttpMethod.Get, "/internal/v1/routes", _proxy)).Body.GetProperty("version").GetInt64();
        var poll = App.SendAsync(HttpMethod.Get, $"/internal/v1/routes?since={version}&proxy=placement-test", _proxy);

        // A group id past long.MaxValue: u64 travels as a decimal string and comes back the same.
        const string Group = "18446744073709551557";
        var put = await App.SendAsync(HttpMethod.Put, $"/internal/v1/placements/{databaseId}", _provisioning, new { groupId = Group, replicas = new[] { new { nodeId = a }, new { nodeId = b } } });
        Assert.Equal(HttpStatusCode.OK, put.Status);
        Assert.Equal(Group, put.Body.GetProperty("groupId").GetString());
        Assert.Equal([a, b], put.Body.GetProperty("replicas").EnumerateArray().Select(r => r.GetProperty("nodeId").GetString()));
        Assert.Equal("127.0.0.1:7001", put.Body.GetProperty("replicas")[0].GetProperty("pgEndpoint").GetString());
        Assert.Equal("http://127.0.0.1:8002", put.Body.GetProperty("replicas")[1].GetProperty("httpEndpoint").GetString());
        var got = await App.SendAsync(HttpMethod.Get, $"/internal/v1/placements/{databaseId}", _provisioning);
        Assert.Equal(put.Body.GetRawText(), got.Body.GetRawText());

        var entry = await UpsertAsync(await poll, databaseId);
        Assert.Equal(Group, entry.GetProperty("groupId").GetString());
        Assert.Equal(put.Body.GetProperty("replicas").GetRawText(), entry.GetProperty("replicas").GetRawText());
        Assert.Equal(JsonValueKind.Null, entry.GetProperty("leaderNodeId").ValueKind);

        // The same placement again changes nothing, so no proxy is woken for it.
        var again = await App.SendAsync(HttpMethod.Put, $"/internal/v1/placements/{databaseId}", _provisioning, new { groupId = Group, replicas = new[] { new { nodeId = a }, new { nodeId = b } } });
        Assert.Equal(put.Body.GetProperty("version").GetInt64(), again.Body.GetProperty("version").GetInt64());

        // A move to one replica is a change.
        var moved = await App.SendAsync(HttpMethod.Put, $"/internal/v1/placements/{databaseId}", _provisioning, new { groupId = Group, replicas = new[] { new { nodeId = b } } });
        Assert.True(moved.Body.GetProperty("version").GetInt64() > put.Body.GetProperty("version").GetInt64());
        Assert.Equal([b], (await RouteAsync(databaseId)).GetProperty("replicas").EnumerateArray().Select(r => r.GetProperty("nodeId").GetString()));
    }

    [Fact]
    public async Task LeaderChange_ReportedByHeartbeats_BumpsTheRoute_AndOlderTermsAreIgnored()
    {
        var (a, b) = (await NodeAsync("ld-a", 7011), await NodeAsync("ld-b", 7012));
        var (_, databaseId) = await _cp.ReadyDatabaseAsync("led");
        const string Group = "424242";
        Assert.Equal(HttpStatusCode.OK, (await App.SendAsync(HttpMethod.Put, $"/internal/v1/placements/{databaseId}", _provisioning, new { groupId = Group, replicas = new[] { new { nodeId = a }, new { nodeId = b } } })).Status);

        await BeatAsync(a, 7011, new { groupId = Group, role = "leader", term = 3 });
        var first = await RouteAsync(databaseId);
        Assert.Equal(a, first.GetProperty("leaderNodeId").GetString());

        // A long-polling proxy hears of the new leader as soon as its heartbeat lands.
        var poll = App.SendAsync(HttpMethod.Get, $"/internal/v1/routes?since={first.GetProperty("version").GetInt64()}&proxy=leader-test", _proxy);
        await BeatAsync(b, 7012, new { groupId = Group, role = "leader", term = 4 });
        Assert.Equal(b, (await UpsertAsync(await poll, databaseId)).GetProperty("leaderNodeId").GetString());
        var afterChange = (await RouteAsync(databaseId)).GetProperty("version").GetInt64();

        // The deposed leader's late heartbeat (older term) and a follower naming the same leader change nothing.
        await BeatAsync(a, 7011, new { groupId = Group, role = "leader", term = 3 });
        await BeatAsync(a, 7011, new { groupId = Group, role = "follower", term = 4, leaderNodeId = b });
        var unchanged = await RouteAsync(databaseId);
        Assert.Equal(b, unchanged.GetProperty("leaderNodeId").GetString());
        Assert.Equal(afterChange, unchanged.GetProperty("version").GetInt64());

        // Roles as Raft numbers them (4 = leader) are understood too.
        await BeatAsync(a, 7011, new { groupId = ulong.Parse(Group, System.Globalization.CultureInfo.InvariantCulture), role = 4, term = 5 });
        Assert.Equal(a, (await RouteAsync(databaseId)).GetProperty("leaderNodeId").GetString());

        // A replica back on another port: the entry follows its endpoints.
        await BeatAsync(b, 7099, new { groupId = Group, role = "follower", term = 5 });
        var replica = (await RouteAsync(databaseId)).GetProperty("replicas").EnumerateArray().Single(r => r.GetProperty("nodeId").GetString() == b);
        Assert.Equal("127.0.0.1:7099", replica.GetProperty("pgEndpoint").GetString());
    }

    [Fact]
    public async Task Placement_BadInput_Is400Problem_AndChangesNothing()
    {
        var a = await NodeAsync("bi-a", 7021);
        var (_, databaseId) = await _cp.ReadyDatabaseAsync("badinput");
        var before = await RouteAsync(databaseId);
        string[] bodies =
        [
            "",
            "{}",
            "[1,2]",
            "{\"groupId\":\"abc\",\"replicas\":[{\"nodeId\":\"A\"}]}",
            "{\"groupId\":\"-1\",\"replicas\":[{\"nodeId\":\"A\"}]}",
            "{\"groupId\":-1,\"replicas\":[{\"nodeId\":\"A\"}]}",
            "{\"groupId\":1.5,\"replicas\":[{\"nodeId\":\"A\"}]}",
            "{\"groupId\":\"18446744073709551616\",\"replicas\":[{\"nodeId\":\"A\"}]}",
            "{\"groupId\":\"1\",\"replicas\":[]}",
            "{\"groupId\":\"1\",\"replicas\":[null]}",
            "{\"groupId\":\"1\",\"replicas\":[{\"nodeId\":\"\"}]}",
            "{\"groupId\":\"1\",\"replicas\":[{\"nodeId\":\"A\"},{\"nodeId\":\"A\"}]}",
            "{\"groupId\":\"1\",\"replicas\":[{\"nodeId\":\"never-beat\"}]}",
            "{\"groupId\":\"1\",\"replicas\":[{\"nodeId\":\"A\",\"pgEndpoint\":\"1.2.3.4:5\"}]}",
            "{\"groupId\":\"1\",\"replicas\":[{\"nodeId\":\"A\"}],\"status\":\"ready\"}",
            "{\"groupId\":\"1\",\"replicas\":\"A\"}",
        ];
        foreach (var body in bodies.Select(b => b.Replace("\"A\"", $"\"{a}\"", StringComparison.Ordinal)))
        {
            var put = await App.SendAsync(HttpMethod.Put, $"/internal/v1/placements/{databaseId}", _provisioning, body);
            Assert.True(put.Status == HttpStatusCode.BadRequest, $"{body} answered {put.Status}");
            Assert.Equal("application/problem+json", put.Response.Content.Headers.ContentType?.MediaType);
        }

        Assert.Equal(before.GetRawText(), (await RouteAsync(databaseId)).GetRawText());
    }

    [Fact]
    public async Task Placement_TruncatedAndRandomBodies_AreRejected_WithoutServerErrors()
    {
        var a = await NodeAsync("fz-a", 7031);
        var (_, databaseId) = await _cp.ReadyDatabaseAsync("fuzzed");
        var valid = JsonSerializer.Serialize(new { groupId = "77", replicas = new[] { new { nodeId = a } } });
        var random = new Random(8);
        for (var i = 0; i < 40; i++)
        {
            var body = i < 20 ? valid[..random.Next(valid.Length)] : Encoding.UTF8.GetString(RandomBytes(random, random.Next(1, 64)));
            var put = await App.SendAsync(HttpMethod.Put, $"/internal/v1/placements/{databaseId}", _provisioning, body);
            Assert.True(put.Status == HttpStatusCode.BadRequest, $"{body} answered {put.Status}");
        }

        Assert.Empty((await RouteAsync(databaseId)).GetProperty("replicas").EnumerateArray());
        Assert.Equal(HttpStatusCode.OK, (await App.SendAsync(HttpMethod.Put, $"/internal/v1/placements/{databaseId}", _provisioning, valid)).Status);
    }

    [Fact]
    public async Task Placement_UnknownDatabase_Is404_AndOnlyProvisioningMayPlace()
    {
        var a = await NodeAsync("sc-a", 7041);
        var (user, databaseId) = await _cp.ReadyDatabaseAsync("scoped");
        var body = new { groupId = "5", replicas = new[] { new { nodeId = a } } };

        Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Put, "/internal/v1/placements/db_0000000000000000", _provisioning, body)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Get, "/internal/v1/placements/db_0000000000000000", _provisioning)).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await App.SendAsync(HttpMethod.Put, $"/internal/v1/placements/{databaseId}", _node, body)).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await App.SendAsync(HttpMethod.Put, $"/internal/v1/placements/{databaseId}", _proxy, body)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await App.SendAsync(HttpMethod.Put, $"/internal/v1/placements/{databaseId}", user, body)).Status);
        using var anonymous = await App.Client.PutAsync(new Uri($"/internal/v1/placements/{databaseId}", UriKind.Relative), new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await App.SendAsync(HttpMethod.Put, $"/internal/v1/placements/{databaseId}", _provisioning, body)).Status);
    }

    [Theory]
    [InlineData("[{\"groupId\":\"x\",\"role\":\"leader\"}]")]
    [InlineData("[{\"role\":\"leader\"}]")]
    [InlineData("[7]")]
    [InlineData("\"groups\"")]
    [InlineData("[{\"groupId\":\"1\",\"role\":\"leader\",\"term\":-1}]")]
    [InlineData("[{\"groupId\":\"1\",\"role\":\"leader\",\"term\":\"3\"}]")]
    public async Task Heartbeat_BadGroups_Is400(string groups)
    {
        var body = $"{{\"pgEndpoint\":\"127.0.0.1:1\",\"internalEndpoint\":\"127.0.0.1:2\",\"httpEndpoint\":\"http://127.0.0.1:3\",\"capacity\":1,\"groups\":{groups}}}";
        var beat = await App.SendAsync(HttpMethod.Post, "/internal/v1/nodes/bad-groups/heartbeat", _node, body);
        Assert.Equal(HttpStatusCode.BadRequest, beat.Status);
        Assert.Contains(beat.Body.GetProperty("errors").EnumerateObject(), e => e.Name.StartsWith("groups", StringComparison.Ordinal));
    }

    private static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    private async Task<string> NodeAsync(string name, int port)
    {
        var nodeId = name + "-" + Guid.NewGuid().ToString("N")[..6];
        await BeatAsync(nodeId, port);
        return nodeId;
    }

    private async Task BeatAsync(string nodeId, int port, object? group = null)
    {
        var beat = new
        {
            pgEndpoint = $"127.0.0.1:{port}",
            internalEndpoint = $"127.0.0.1:{port + 100}",
            httpEndpoint = $"http://127.0.0.1:{port + 1000}",
            capacity = 10,
            groups = group is null ? Array.Empty<object>() : [group],
        };
        Assert.Equal(HttpStatusCode.NoContent, (await App.SendAsync(HttpMethod.Post, $"/internal/v1/nodes/{nodeId}/heartbeat", _node, beat)).Status);
    }

    private async Task<JsonElement> RouteAsync(string databaseId)
    {
        var route = await App.SendAsync(HttpMethod.Get, $"/internal/v1/routes/{databaseId}", _proxy);
        Assert.Equal(HttpStatusCode.OK, route.Status);
        return route.Body;
    }

    /// <summary>The entry for a database in a poll's answer, polling on until it comes (other tests' changes may come first).</summary>
    private async Task<JsonElement> UpsertAsync((HttpStatusCode Status, JsonElement Body, HttpResponseMessage Response) answer, string databaseId)
    {
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(HttpStatusCode.OK, answer.Status);
            foreach (var entry in answer.Body.GetProperty("upserts").EnumerateArray())
            {
                if (entry.GetProperty("databaseId").GetString() == databaseId)
                {
                    return entry;
                }
            }

            answer = await App.SendAsync(HttpMethod.Get, $"/internal/v1/routes?since={answer.Body.GetProperty("version").GetInt64()}&proxy=placement-test", _proxy);
        }

        throw new Xunit.Sdk.XunitException("no upsert for the database");
    }
}
