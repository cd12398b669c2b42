using Kdb.Testing.Cluster;
using Npgsql;

namespace Kdb.Cluster.Tests;

/// <summary>An import large enough to span several Raft entries (they are cut at about 4 MiB and several are in flight).</summary>
[Collection(ClusterCollection.Name)]
public sealed class ImportTests(ThreeNodeCluster cluster)
{
    [Fact]
    public async Task Import_spanning_several_entries_restores_every_row_and_replicas_match_also_after_a_restart()
    {
        var group = (ulong)Random.Shared.NextInt64(1, long.MaxValue);
        await cluster.CreateGroupAsync(group);
        var (source, _) = await cluster.CreateDatabaseAsync(group, cluster.Nodes[0]);
        // 4,000 rows of 4,000 bytes: about 16 MB of pairs, four or more import entries.
        await using (var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(cluster.Nodes[0], source)))
        {
            await conn.OpenAsync();
            foreach (var sql in new[]
            {
                "CREATE TABLE big (id int PRIMARY KEY, payload text NOT NULL)",
                "INSERT INTO big SELECT g, repeat(md5(g::text), 125) FROM generate_series(1, 2000) g",
                "INSERT INTO big SELECT g, repeat(md5(g::text), 125) FROM generate_series(2001, 4000) g",
            })
            {
                await using var cmd = new NpgsqlCommand(sql, conn) { CommandTimeout = 300 };
                await cmd.ExecuteNonQueryAsync();
            }
        }
        using var export = await cluster.SendAsync(cluster.Nodes[1], HttpMethod.Get, $"/internal/v1/databases/{source}/export");
        Assert.True(export.IsSuccessStatusCode);
        var backup = await export.Content.ReadAsByteArrayAsync();
        Assert.True(backup.Length > 12 << 20, $"the export holds {backup.Length} bytes, fewer than three import entries");

        var (target, _) = await cluster.CreateDatabaseAsync(group, cluster.Nodes[2]);
        using (var ok = await PostRawAsync(cluster.Nodes[2], $"/internal/v1/databases/{target}/import", backup))
        {
            Assert.True(ok.IsSuccessStatusCode, await ok.Content.ReadAsStringAsync());
        }
        using (var again = await PostRawAsync(cluster.Nodes[0], $"/internal/v1/databases/{target}/import", backup))
        {
            Assert.Equal(409, (int)again.StatusCode);
            Assert.Contains("needs a new or emptied database", await again.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        var expected = await SummaryAsync(cluster.Nodes[0], source);
        Assert.StartsWith("4000|16000000|", expected, StringComparison.Ordinal);
        foreach (var node in cluster.Nodes)
        {
            Assert.Equal(expected, await SummaryAsync(node, target));
        }

        // A replica restarted after the import recovers the same state (engine files or snapshot plus log).
        var restarted = cluster.Nodes[1];
        await restarted.KillAsync();
        await cluster.RestartAsync(restarted);
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (true)
        {
            var hashes = new List<(ulong Applied, string Hash)>();
            foreach (var n in cluster.Nodes)
            {
                try
                {
                    var h = await cluster.Admin(n).StateHashAsync(group);
                    hashes.Add((h.AppliedIndex, h.Sha256));
                }
                catch (HttpRequestException)
                {
                    // The restarted node may not serve yet.
                }
            }
            if (hashes.Count == cluster.Nodes.Count && hashes.Select(h => h.Applied).Distinct().Count() == 1)
            {
                Assert.Single(hashes.Select(h => h.Hash).Distinct());
                break;
            }
            Assert.True(DateTime.UtcNow < deadline, "the restarted node did not catch up: " + string.Join(", ", hashes.Select(h => h.Applied)));
            await Task.Delay(200);
        }
        Assert.Equal(expected, await SummaryAsync(restarted, target));
    }

    private static async Task<string> SummaryAsync(ClusterNodeProcess node, string db)
    {
        await using var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(node, db));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT count(*), sum(length(payload)), min(payload), max(id), sum(id) FROM big", conn) { CommandTimeout = 120 };
        await using var reader = await cmd.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        return string.Join("|", Enumerable.Range(0, reader.FieldCount).Select(i => Convert.ToString(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture)));
    }

    private async Task<HttpResponseMessage> PostRawAsync(ClusterNodeProcess node, string path, byte[] body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, node.InternalUrl + path) { Content = new ByteArrayContent(body), Version = System.Net.HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        request.Headers.Authorization = new("Bearer", cluster.OperatorToken);
        using var http = new HttpClient(new SocketsHttpHandler()) { DefaultRequestVersion = System.Net.HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact, Timeout = TimeSpan.FromMinutes(5) };
        return await http.SendAsync(request);
    }
}
