using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Kdb.Testing.Cluster;

namespace Kdb.Cluster.Tests;

/// <summary>The HTTP data API of a node: SQL over JSON, key-value endpoints, data-token auth and isolation.</summary>
[Collection(ClusterCollection.Name)]
public sealed class DataApiTests(ThreeNodeCluster cluster)
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(60) };

    private async Task<HttpResponseMessage> PostAsync(ClusterNodeProcess node, string path, object body, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{node.HttpPort}{path}") { Content = JsonContent.Create(body) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return await Http.SendAsync(request);
    }

    private async Task<HttpResponseMessage> GetAsync(ClusterNodeProcess node, string path, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{node.HttpPort}{path}");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return await Http.SendAsync(request);
    }

    [Fact]
    public async Task Sql_over_http_runs_parameterized_statements_as_one_transaction()
    {
        var group = await cluster.CreateGroupAsync((ulong)Random.Shared.NextInt64(1, long.MaxValue));
        var (db, _) = await cluster.CreateDatabaseAsync(group, cluster.Nodes[0]);
        var token = cluster.Issuer.MintDataToken("org_a", db, "owner", TimeSpan.FromMinutes(10));
        var node = cluster.Nodes[1];
        using (var r = await PostAsync(node, $"/v1/databases/{db}/sql", new
        {
            statements = new object[]
            {
                new { sql = "CREATE TABLE notes (id int PRIMARY KEY, body text, done bool)" },
                new { sql = "INSERT INTO notes VALUES ($1, $2, $3), ($4, $5, $6)", @params = new object?[] { 1, "first", false, 2, null, true } },
            },
        }, token))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }
        using (var r = await PostAsync(node, $"/v1/databases/{db}/sql", new { sql = "SELECT id, body, done FROM notes WHERE id >= $1 ORDER BY id", @params = new object[] { 1 } }, token))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
            var result = doc.RootElement.GetProperty("results")[0];
            Assert.Equal("SELECT 2", result.GetProperty("command").GetString());
            Assert.Equal("int4", result.GetProperty("columns")[0].GetProperty("type").GetString());
            var rows = result.GetProperty("rows");
            Assert.Equal(1, rows[0][0].GetInt32());
            Assert.Equal("first", rows[0][1].GetString());
            Assert.False(rows[0][2].GetBoolean());
            Assert.Equal(JsonValueKind.Null, rows[1][1].ValueKind);
        }
        // A failing statement rolls back the whole request.
        using (var r = await PostAsync(node, $"/v1/databases/{db}/sql", new
        {
            statements = new object[] { new { sql = "INSERT INTO notes VALUES (3, 'x', false)" }, new { sql = "INSERT INTO notes VALUES (1, 'dup', false)" } },
        }, token))
        {
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
            Assert.Equal("23505", doc.RootElement.GetProperty("sqlstate").GetString());
        }
        using (var r = await PostAsync(cluster.Nodes[2], $"/v1/databases/{db}/sql", new { sql = "SELECT count(*) FROM notes" }, token))
        {
            using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
            Assert.Equal("2", doc.RootElement.GetProperty("results")[0].GetProperty("rows")[0][0].ToString());
        }
        using (var r = await PostAsync(node, $"/v1/databases/{db}/sql", new { sql = "SELEC nonsense" }, token))
        {
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            Assert.Contains("42601", await r.Content.ReadAsStringAsync());
        }
        using (var bad = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{node.HttpPort}/v1/databases/{db}/sql") { Content = new StringContent("{not json") })
        {
            bad.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using var r = await Http.SendAsync(bad);
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        }
    }

    [Fact]
    public async Task Key_value_endpoints_and_isolation_between_databases()
    {
        var group = await cluster.CreateGroupAsync((ulong)Random.Shared.NextInt64(1, long.MaxValue));
        var (a, _) = await cluster.CreateDatabaseAsync(group, cluster.Nodes[0]);
        var (b, _) = await cluster.CreateDatabaseAsync(group, cluster.Nodes[0]);
        var tokenA = cluster.Issuer.MintDataToken("org_a", a, "owner", TimeSpan.FromMinutes(10));
        var tokenB = cluster.Issuer.MintDataToken("org_b", b, "owner", TimeSpan.FromMinutes(10));
        using (var r = await PostAsync(cluster.Nodes[1], $"/v1/databases/{a}/kv/put", new { key = "color", value = "blue" }, tokenA))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }
        using (var r = await GetAsync(cluster.Nodes[2], $"/v1/databases/{a}/kv/get_fast/color", tokenA))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.Contains("blue", await r.Content.ReadAsStringAsync());
        }
        using (var r = await GetAsync(cluster.Nodes[2], $"/v1/databases/{b}/kv/get_fast/color", tokenB))
        {
            Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
        }
        // A's token on B, a token for a database that does not exist, and garbage: one and the same answer.
        var answers = new List<string>();
        foreach (var (db, token) in new[] { (b, tokenA), ("db_doesnotexist00000", tokenA), (b, "not-a-token") })
        {
            using var r = await GetAsync(cluster.Nodes[1], $"/v1/databases/{db}/kv/get_fast/color", token);
            answers.Add((int)r.StatusCode + " " + await r.Content.ReadAsStringAsync());
        }
        Assert.Single(answers.Distinct());
        Assert.StartsWith("401", answers[0]);
        using (var r = await PostAsync(cluster.Nodes[1], $"/v1/databases/{b}/sql", new { sql = "SELECT 1" }, tokenA))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        }
        // Operator endpoints act on the engine all tenants share: never for a tenant token.
        using (var r = await PostAsync(cluster.Nodes[1], "/v1/admin/snapshot", new { }, tokenA))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        }
        using (var r = await PostAsync(cluster.Nodes[1], "/v1/admin/snapshot", new { }, cluster.OperatorToken))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }
    }

    [Fact]
    public async Task A_paused_write_is_503_with_retry_after_on_both_write_paths_and_reads_go_on()
    {
        var group = await cluster.CreateGroupAsync((ulong)Random.Shared.NextInt64(1, long.MaxValue));
        var (db, _) = await cluster.CreateDatabaseAsync(group, cluster.Nodes[0]);
        var token = cluster.Issuer.MintDataToken("org_a", db, "owner", TimeSpan.FromMinutes(10));
        var node = cluster.Nodes[1];
        using (var r = await PostAsync(node, $"/v1/databases/{db}/sql", new { statements = new object[] { new { sql = "CREATE TABLE t (id int PRIMARY KEY)" }, new { sql = "INSERT INTO t VALUES (1)" } } }, token))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }
        var admin = cluster.Admin(await cluster.LeaderOfAsync(group));
        await admin.SetWritesPausedOnGroupAsync(db, group, true);
        try
        {
            // Every node applies the flag through Raft; the one asked may be a follower still behind for a moment.
            await EventuallyAsync(async () =>
            {
                using var r = await PostAsync(node, $"/v1/databases/{db}/sql", new { sql = "INSERT INTO t VALUES (2)" }, token);
                Assert.Equal(HttpStatusCode.ServiceUnavailable, r.StatusCode);
                Assert.Equal(TimeSpan.FromSeconds(1), r.Headers.RetryAfter?.Delta);
                using var body = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
                // The write is refused at commit, after its one statement ran: "statement" counts the statements that did.
                Assert.Equal(("25006", 1), (body.RootElement.GetProperty("sqlstate").GetString(), body.RootElement.GetProperty("statement").GetInt32()));
            });
            using (var r = await PostAsync(node, $"/v1/databases/{db}/kv/put", new { key = "k", value = "v" }, token))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, r.StatusCode);
                Assert.NotNull(r.Headers.RetryAfter);
            }
            using (var r = await PostAsync(node, $"/v1/databases/{db}/sql", new { sql = "SELECT count(*) AS n FROM t" }, token))
            {
                Assert.Equal(HttpStatusCode.OK, r.StatusCode);
                using var body = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
                Assert.Equal(1, body.RootElement.GetProperty("results")[0].GetProperty("rows")[0][0].GetInt64());
            }
        }
        finally
        {
            await admin.SetWritesPausedOnGroupAsync(db, group, false);
        }

        // Lifted: the write that was refused goes through, and only once.
        await EventuallyAsync(async () =>
        {
            using var r = await PostAsync(node, $"/v1/databases/{db}/sql", new { sql = "INSERT INTO t VALUES (2)" }, token);
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        });
        using (var r = await PostAsync(node, $"/v1/databases/{db}/sql", new { sql = "SELECT count(*) AS n FROM t" }, token))
        {
            using var body = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
            Assert.Equal(2, body.RootElement.GetProperty("results")[0].GetProperty("rows")[0][0].GetInt64());
        }
    }

    private static async Task EventuallyAsync(Func<Task> check)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try
            {
                await check();
                return;
            }
            catch (Exception) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
    }
}
