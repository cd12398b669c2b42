using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using Kdb.Testing.Ports;
using Kdb.Testing.Proxy;

namespace Kdb.Proxy.Tests;

/// <summary>The HTTP data API through the proxy (YARP) to real nodes: both address forms, token checks, isolation, limits.</summary>
[Collection(ProxyCollection.Name)]
public sealed class HttpFrontTests(ProxyTestBed bed)
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(60) };

    private Task<HttpResponseMessage> SqlAsync(string path, string? host, string token, string sql)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{bed.Proxy.HttpPort}{path}")
        {
            Content = JsonContent.Create(new { statements = new[] { new { sql } } }),
        };
        if (host is not null)
        {
            request.Headers.Host = host;
        }

        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return Http.SendAsync(request);
    }

    [Fact]
    public async Task Sql_PathFormAndHostForm_ReachTheDatabase()
    {
        var entry = await bed.CreateRoutedDatabaseAsync("pw-http-1");
        var token = bed.Cluster.Issuer.MintDataToken("org_test", entry.DatabaseId, "owner", TimeSpan.FromMinutes(10));
        using (var r = await SqlAsync($"/v1/databases/{entry.DatabaseId}/sql", null, token, "SELECT 40 + 2 AS answer"))
        {
            var body = await r.Content.ReadAsStringAsync();
            Assert.True(r.StatusCode == HttpStatusCode.OK, body);
            Assert.Contains("42", body, StringComparison.Ordinal);
        }

        using (var r = await SqlAsync("/v1/sql", entry.DatabaseId.Replace('_', '-') + ".kdb.localhost", token, "SELECT 'host-form' AS v"))
        {
            var body = await r.Content.ReadAsStringAsync();
            Assert.True(r.StatusCode == HttpStatusCode.OK, body);
            Assert.Contains("host-form", body, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task ForeignToken_AndMissingDatabase_GetTheSame401()
    {
        var a = await bed.CreateRoutedDatabaseAsync("pw-http-a");
        var b = await bed.CreateRoutedDatabaseAsync("pw-http-b");
        var tokenA = bed.Cluster.Issuer.MintDataToken("org_test", a.DatabaseId, "owner", TimeSpan.FromMinutes(10));
        var missing = "db_" + Guid.NewGuid().ToString("N")[..16];
        var answers = new List<(HttpStatusCode, string)>();
        foreach (var (path, token) in new[] { ($"/v1/databases/{b.DatabaseId}/sql", tokenA), ($"/v1/databases/{missing}/sql", tokenA), ($"/v1/databases/{a.DatabaseId}/sql", "not-a-token") })
        {
            using var r = await SqlAsync(path, null, token, "SELECT 1");
            var problem = await r.Content.ReadFromJsonAsync<Dictionary<string, object>>();
            answers.Add((r.StatusCode, problem!["detail"].ToString()!));
        }

        Assert.All(answers, x => Assert.Equal(HttpStatusCode.Unauthorized, x.Item1));
        Assert.Single(answers.Select(x => x.Item2).Distinct());
    }

    [Fact]
    public async Task OversizedBody_Is413_AndRateLimit_Is429()
    {
        var entry = await bed.CreateRoutedDatabaseAsync("pw-http-limits", statementsPerSecond: 2);
        var token = bed.Cluster.Issuer.MintDataToken("org_test", entry.DatabaseId, "owner", TimeSpan.FromMinutes(10));
        using (var big = await SqlAsync($"/v1/databases/{entry.DatabaseId}/sql", null, token, "SELECT '" + new string('x', 2 * 1024 * 1024) + "'"))
        {
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, big.StatusCode);
        }

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 8; i++)
        {
            using var r = await SqlAsync($"/v1/databases/{entry.DatabaseId}/sql", null, token, "SELECT 1");
            statuses.Add(r.StatusCode);
        }

        Assert.Contains(HttpStatusCode.OK, statuses);
        Assert.Contains((HttpStatusCode)429, statuses);
    }

    [Fact]
    public async Task LeaderUnreachable_TheRequestGoesToTheNextReplica_AndItsBytesAreMetered()
    {
        // The route names a leader that refuses connections (a node gone since the entry was written): the request
        // never reached it, so the proxy sends it to the next replica, which forwards to the real leader.
        var entry = await bed.CreateRoutedDatabaseAsync("pw-http-fallback");
        var gone = new TestReplica("node-gone", "127.0.0.1:" + FreePorts.Allocate(), "http://127.0.0.1:" + FreePorts.Allocate());
        entry = await bed.UpdateAsync(entry with { Replicas = [gone, .. bed.Replicas()], LeaderNodeId = gone.NodeId });
        var token = bed.Cluster.Issuer.MintDataToken("org_test", entry.DatabaseId, "owner", TimeSpan.FromMinutes(10));
        var payload = new string('y', 30_000);
        for (var i = 0; i < 3; i++)
        {
            using var r = await SqlAsync($"/v1/databases/{entry.DatabaseId}/sql", null, token, $"SELECT '{payload}' AS v, {i} AS attempt");
            var body = await r.Content.ReadAsStringAsync();
            Assert.True(r.StatusCode == HttpStatusCode.OK, body);
            Assert.Contains(payload, body, StringComparison.Ordinal);
        }

        // Three answers of more than 30 KB each are egress of this database and of no other.
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (bed.Routes.Usage.Where(u => u.DatabaseId == entry.DatabaseId).Sum(u => u.EgressBytes) < 90_000)
        {
            Assert.True(DateTime.UtcNow < deadline, "no HTTP egress reported for the database");
            await Task.Delay(200);
        }
    }
}
