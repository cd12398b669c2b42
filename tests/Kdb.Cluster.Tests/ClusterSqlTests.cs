using Kdb.Node.Admin.Wire;
using Kdb.Testing.Cluster;
using Npgsql;

namespace Kdb.Cluster.Tests;

/// <summary>Real node processes: groups, databases, SQL through pgwire on every node, isolation, backups, failover.</summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterSqlTests(ThreeNodeCluster cluster)
{
    private static readonly Random Seed = new();

    private static ulong NewGroupId() => (ulong)Seed.NextInt64(1, long.MaxValue);

    [Fact]
    public async Task Sql_works_on_every_node_followers_forward_and_report_the_leader()
    {
        var group = await cluster.CreateGroupAsync(NewGroupId());
        var leader = await cluster.LeaderOfAsync(group);
        var follower = cluster.Nodes.First(n => n != leader);
        var (db, _) = await cluster.CreateDatabaseAsync(group, follower);

        await using (var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(follower, db)))
        {
            await conn.OpenAsync();
            Assert.Equal(leader.NodeId, conn.PostgresParameters["kdb_leader"]);
            await using var cmd = conn.CreateCommand();
            cmd.CommandText = "CREATE TABLE t (id int PRIMARY KEY, v text)";
            await cmd.ExecuteNonQueryAsync();
            cmd.CommandText = "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g";
            Assert.Equal(100, await cmd.ExecuteNonQueryAsync());
            // Read-your-writes on the follower that forwarded the commit.
            cmd.CommandText = "SELECT count(*) FROM t";
            Assert.Equal(100L, await cmd.ExecuteScalarAsync());
        }
        foreach (var node in cluster.Nodes)
        {
            await using var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(node, db));
            await conn.OpenAsync();
            await using var cmd = conn.CreateCommand();
            cmd.CommandText = "UPDATE t SET v = 'n" + node.Index + "' WHERE id = " + node.Index;
            Assert.Equal(1, await cmd.ExecuteNonQueryAsync());
            cmd.CommandText = "SELECT string_agg(v, ',' ORDER BY id) FROM t WHERE id <= 3";
            var seen = (string)(await cmd.ExecuteScalarAsync())!;
            Assert.Contains("n" + node.Index, seen);
        }
        await using (var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(leader, db)))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT string_agg(v, ',' ORDER BY id) FROM t WHERE id <= 3", conn);
            Assert.Equal("n1,n2,n3", await cmd.ExecuteScalarAsync());
        }
    }

    [Fact]
    public async Task Concurrent_transfers_on_all_nodes_keep_the_bank_invariant()
    {
        var group = await cluster.CreateGroupAsync(NewGroupId());
        var (db, _) = await cluster.CreateDatabaseAsync(group, cluster.Nodes[0]);
        await using (var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(cluster.Nodes[0], db)))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("CREATE TABLE acct (id int PRIMARY KEY, bal bigint NOT NULL); INSERT INTO acct SELECT g, 1000 FROM generate_series(1, 10) g", conn);
            await cmd.ExecuteNonQueryAsync();
        }
        var committed = 0;
        var workers = cluster.Nodes.Select(node => Task.Run(async () =>
        {
            var random = new Random(node.Index);
            await using var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(node, db));
            await conn.OpenAsync();
            for (var i = 0; i < 40; i++)
            {
                var from = random.Next(1, 11);
                var to = random.Next(1, 11);
                try
                {
                    await using var tx = await conn.BeginTransactionAsync();
                    await using var cmd = new NpgsqlCommand($"UPDATE acct SET bal = bal - 7 WHERE id = {from}; UPDATE acct SET bal = bal + 7 WHERE id = {to}", conn, tx);
                    await cmd.ExecuteNonQueryAsync();
                    await tx.CommitAsync();
                    Interlocked.Increment(ref committed);
                }
                catch (PostgresException e) when (e.SqlState is "40001" or "40P01")
                {
                    // Serialization conflict, or a deadlock of row locks (transfers in random order): nothing applied.
                }
            }
        })).ToArray();
        await Task.WhenAll(workers);
        Assert.True(committed > 0);
        foreach (var node in cluster.Nodes)
        {
            await using var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(node, db));
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT sum(bal), count(*) FROM acct", conn);
            await using var reader = await cmd.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync());
            Assert.Equal(10_000m, reader.GetDecimal(0));
            Assert.Equal(10L, reader.GetInt64(1));
        }
    }

    [Fact]
    public async Task A_credential_of_one_database_opens_no_other_and_unknown_names_fail_alike()
    {
        var group = await cluster.CreateGroupAsync(NewGroupId());
        var (a, _) = await cluster.CreateDatabaseAsync(group, cluster.Nodes[0]);
        var (b, _) = await cluster.CreateDatabaseAsync(group, cluster.Nodes[0]);
        await using (var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(cluster.Nodes[1], b)))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("CREATE TABLE secret (x text); INSERT INTO secret VALUES ('b-only')", conn);
            await cmd.ExecuteNonQueryAsync();
        }
        // Same role name and password in A cannot reach B: B's verifier has its own salt, and the names below do not exist.
        var wrongPassword = await Assert.ThrowsAsync<PostgresException>(async () =>
        {
            await using var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(cluster.Nodes[1], b, password: "not-it"));
            await conn.OpenAsync();
        });
        var missing = await Assert.ThrowsAsync<PostgresException>(async () =>
        {
            await using var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(cluster.Nodes[1], "db_doesnotexist0000"));
            await conn.OpenAsync();
        });
        Assert.Equal("28P01", wrongPassword.SqlState);
        Assert.Equal(wrongPassword.SqlState, missing.SqlState);
        Assert.Equal(wrongPassword.MessageText, missing.MessageText);
        await using (var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(cluster.Nodes[2], a)))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'secret'", conn);
            Assert.Equal(0L, await cmd.ExecuteScalarAsync());
            cmd.CommandText = "SELECT * FROM secret";
            var e = await Assert.ThrowsAsync<PostgresException>(() => cmd.ExecuteScalarAsync());
            Assert.Equal("42P01", e.SqlState);
        }
    }

    [Fact]
    public async Task Admin_api_refuses_tenant_tokens_bad_bodies_and_unknown_groups()
    {
        var node = cluster.Nodes[0];
        var data = cluster.Issuer.MintDataToken("org_x", "db_x", "owner", TimeSpan.FromMinutes(5));
        using (var r = await cluster.SendAsync(node, HttpMethod.Get, "/internal/v1/status", token: data))
        {
            Assert.Equal(System.Net.HttpStatusCode.Unauthorized, r.StatusCode);
        }
        var proxy = cluster.Issuer.MintServiceToken("kdb-proxy", ["kdb.proxy"]);
        using (var r = await cluster.SendAsync(node, HttpMethod.Get, "/internal/v1/status", token: proxy))
        {
            Assert.Equal(System.Net.HttpStatusCode.Forbidden, r.StatusCode);
        }
        using (var r = await cluster.SendAsync(node, HttpMethod.Post, "/internal/v1/groups", new CreateGroupRequest()))
        {
            Assert.Equal(System.Net.HttpStatusCode.BadRequest, r.StatusCode);
            Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        }
        var random = new Random(3);
        for (var i = 0; i < 20; i++)
        {
            var bytes = new byte[random.Next(1, 200)];
            random.NextBytes(bytes);
            using var request = new HttpRequestMessage(HttpMethod.Post, node.InternalUrl + "/internal/v1/databases") { Content = new ByteArrayContent(bytes), Version = System.Net.HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
            request.Headers.Authorization = new("Bearer", cluster.OperatorToken);
            using var http = new HttpClient(new SocketsHttpHandler()) { DefaultRequestVersion = System.Net.HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
            using var response = await http.SendAsync(request);
            Assert.True((int)response.StatusCode is 400 or 404, $"random body gave {(int)response.StatusCode}");
        }
        using (var r = await cluster.SendAsync(node, HttpMethod.Get, "/internal/v1/groups/12345/databases"))
        {
            Assert.Equal(System.Net.HttpStatusCode.NotFound, r.StatusCode);
        }
        using (var r = await cluster.SendAsync(node, HttpMethod.Get, "/internal/v1/status"))
        {
            Assert.True(r.IsSuccessStatusCode);
        }
    }

    [Fact]
    public async Task Backup_export_imports_into_a_new_database_with_identical_results_and_a_corrupt_chunk_is_refused()
    {
        var group = await cluster.CreateGroupAsync(NewGroupId());
        var (source, _) = await cluster.CreateDatabaseAsync(group, cluster.Nodes[0]);
        await using (var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(cluster.Nodes[0], source)))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2)); CREATE INDEX ON items (name); INSERT INTO items SELECT g, 'item' || g, g * 1.25 FROM generate_series(1, 3000) g", conn);
            await cmd.ExecuteNonQueryAsync();
        }
        using var export = await cluster.SendAsync(cluster.Nodes[1], HttpMethod.Get, $"/internal/v1/databases/{source}/export");
        Assert.True(export.IsSuccessStatusCode);
        var backup = await export.Content.ReadAsByteArrayAsync();

        var (target, _) = await cluster.CreateDatabaseAsync(group, cluster.Nodes[2]);
        var corrupt = (byte[])backup.Clone();
        corrupt[corrupt.Length / 2] ^= 0x5A;
        using (var bad = await PostRawAsync(cluster.Nodes[2], $"/internal/v1/databases/{target}/import", corrupt))
        {
            Assert.Equal(422, (int)bad.StatusCode);
        }
        using (var truncated = await PostRawAsync(cluster.Nodes[2], $"/internal/v1/databases/{target}/import", backup.AsSpan(0, backup.Length - 10).ToArray()))
        {
            Assert.Equal(422, (int)truncated.StatusCode);
        }
        using (var ok = await PostRawAsync(cluster.Nodes[2], $"/internal/v1/databases/{target}/import", backup))
        {
            Assert.True(ok.IsSuccessStatusCode, await ok.Content.ReadAsStringAsync());
        }
        const string query = "SELECT count(*), sum(price), min(name), max(id) FROM items WHERE name LIKE 'item1%'";
        async Task<string> Run(string db)
        {
            await using var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(cluster.Nodes[0], db));
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand(query, conn);
            await using var reader = await cmd.ExecuteReaderAsync();
            await reader.ReadAsync();
            return string.Join("|", Enumerable.Range(0, reader.FieldCount).Select(i => Convert.ToString(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture)));
        }
        Assert.Equal(await Run(source), await Run(target));
        // The restored index points at the restored rows, not at the source's: delete in the source, read by index in the target.
        await using (var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(cluster.Nodes[0], source)))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("DELETE FROM items WHERE id <= 100", conn);
            Assert.Equal(100, await cmd.ExecuteNonQueryAsync());
        }
        await using (var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(cluster.Nodes[1], target)))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT count(*) FROM items WHERE name = 'item42'", conn);
            Assert.Equal(1L, await cmd.ExecuteScalarAsync());
            cmd.CommandText = "SELECT id, price FROM items WHERE name = 'item42'";
            await using var reader = await cmd.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync());
            Assert.Equal(42, reader.GetInt32(0));
        }
        // The owner of the target signs in with the target's own role (the backup carries data, not credentials).
        using (var again = await PostRawAsync(cluster.Nodes[2], $"/internal/v1/databases/{target}/import", backup))
        {
            Assert.Equal(409, (int)again.StatusCode);
        }
    }

    [Fact]
    public async Task Usage_counters_since_a_cursor_count_the_work_once()
    {
        var group = await cluster.CreateGroupAsync(NewGroupId());
        var node = cluster.Nodes[1];
        var (db, _) = await cluster.CreateDatabaseAsync(group, node);
        var before = await cluster.CallAsync(node, HttpMethod.Get, "/internal/v1/usage", null, UsageResponse.Parser);
        await using (var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(node, db)))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("CREATE TABLE u (id int PRIMARY KEY, pad text); INSERT INTO u SELECT g, repeat('x', 100) FROM generate_series(1, 500) g", conn);
            await cmd.ExecuteNonQueryAsync();
            cmd.CommandText = "SELECT count(*) FROM u";
            Assert.Equal(500L, await cmd.ExecuteScalarAsync());
        }
        // /metrics: the database is among the top writers (or ten databases wrote more), and the group's leader measured
        // commit latency.
        using (var http = new HttpClient())
        {
            var text = await http.GetStringAsync($"http://127.0.0.1:{node.ManagementPort}/metrics");
            var writers = text.Split('\n').Where(l => l.StartsWith("kdb_database_rows_written_total{database=", StringComparison.Ordinal)).ToList();
            Assert.InRange(writers.Count, 1, 10);
            Assert.True(writers.Any(l => l.Contains($"\"{db}\"", StringComparison.Ordinal))
                || (writers.Count == 10 && writers.All(l => long.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture) >= 500)), text);
            var leader = await cluster.LeaderOfAsync(group);
            text = await http.GetStringAsync($"http://127.0.0.1:{leader.ManagementPort}/metrics");
            Assert.Contains($"kdb_group_commit_latency_seconds_count{{group=\"{group}\"}}", text, StringComparison.Ordinal);
            Assert.Contains($"kdb_group_databases{{group=\"{group}\"}} 1\n", text, StringComparison.Ordinal);
        }
        var after = await cluster.CallAsync(node, HttpMethod.Get, $"/internal/v1/usage?since={before.Cursor}", null, UsageResponse.Parser);
        var mine = after.Records.Where(r => r.DatabaseId == db).ToList();
        Assert.NotEmpty(mine);
        Assert.True(mine.Sum(r => r.RowsWritten) >= 500);
        Assert.True(mine.Sum(r => r.RowsRead) >= 500);
        Assert.True(mine.Sum(r => r.BytesWritten) >= 500 * 100);
        Assert.True(mine.Sum(r => r.Connections) >= 1);
        Assert.True(mine.All(r => r.Sequence > before.Cursor));
        var again = await cluster.CallAsync(node, HttpMethod.Get, $"/internal/v1/usage?since={after.Cursor}", null, UsageResponse.Parser);
        Assert.DoesNotContain(again.Records, r => r.DatabaseId == db && r.RowsWritten > 0);
    }

    [Fact]
    public async Task A_transaction_larger_than_one_log_entry_is_staged_and_commits_atomically()
    {
        var group = await cluster.CreateGroupAsync(NewGroupId());
        var leader = await cluster.LeaderOfAsync(group);
        var follower = cluster.Nodes.First(n => n != leader);
        var (db, _) = await cluster.CreateDatabaseAsync(group, follower);
        await using var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(follower, db));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("CREATE TABLE big (id int PRIMARY KEY, pad text)", conn);
        await cmd.ExecuteNonQueryAsync();
        // About 20 MiB of rows: more than two 8 MiB log entries, so it must go through staged chunks.
        cmd.CommandText = "INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 100000) g";
        Assert.Equal(100_000, await cmd.ExecuteNonQueryAsync());
        foreach (var node in cluster.Nodes)
        {
            await using var other = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(node, db));
            await other.OpenAsync();
            await using var count = new NpgsqlCommand("SELECT count(*), sum(length(pad)) FROM big", other);
            await using var reader = await count.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync());
            Assert.Equal(100_000L, reader.GetInt64(0));
            Assert.Equal(20_000_000m, reader.GetDecimal(1));
        }
        // A large transaction that fails (duplicate keys) leaves nothing visible.
        cmd.CommandText = "INSERT INTO big SELECT g + 99999, repeat('y', 200) FROM generate_series(1, 60000) g";
        var e = await Assert.ThrowsAsync<PostgresException>(() => cmd.ExecuteNonQueryAsync());
        Assert.Equal("23505", e.SqlState);
        cmd.CommandText = "SELECT count(*) FROM big WHERE pad LIKE 'y%'";
        Assert.Equal(0L, await cmd.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Read_only_and_suspended_states_are_enforced_with_their_sqlstates()
    {
        var group = await cluster.CreateGroupAsync(NewGroupId());
        var (db, _) = await cluster.CreateDatabaseAsync(group, cluster.Nodes[0]);
        await using var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(cluster.Nodes[1], db));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("CREATE TABLE q (id int PRIMARY KEY); INSERT INTO q VALUES (1)", conn);
        await cmd.ExecuteNonQueryAsync();
        await cluster.Admin(cluster.Nodes[2]).SetStateAsync(db, Kdb.Node.Admin.Wire.DatabaseState.ReadOnly);
        cmd.CommandText = "INSERT INTO q VALUES (2)";
        var readOnly = await Assert.ThrowsAsync<PostgresException>(() => cmd.ExecuteNonQueryAsync());
        Assert.Equal("25006", readOnly.SqlState);
        cmd.CommandText = "SELECT count(*) FROM q";
        Assert.Equal(1L, await cmd.ExecuteScalarAsync());
        await cluster.Admin(cluster.Nodes[2]).SetStateAsync(db, Kdb.Node.Admin.Wire.DatabaseState.Suspended);
        var suspended = await Assert.ThrowsAsync<PostgresException>(() => cmd.ExecuteScalarAsync());
        Assert.Equal("53400", suspended.SqlState);
        var refused = await Assert.ThrowsAsync<PostgresException>(async () =>
        {
            await using var again = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(cluster.Nodes[0], db));
            await again.OpenAsync();
        });
        Assert.Equal("53400", refused.SqlState);
        await cluster.Admin(cluster.Nodes[2]).SetStateAsync(db, Kdb.Node.Admin.Wire.DatabaseState.Active);
        await using var back = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(cluster.Nodes[1], db));
        await back.OpenAsync();
        await using var insert = new NpgsqlCommand("INSERT INTO q VALUES (2)", back);
        Assert.Equal(1, await insert.ExecuteNonQueryAsync());
    }

    private async Task<HttpResponseMessage> PostRawAsync(ClusterNodeProcess node, string path, byte[] body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, node.InternalUrl + path) { Content = new ByteArrayContent(body), Version = System.Net.HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        request.Headers.Authorization = new("Bearer", cluster.OperatorToken);
        using var http = new HttpClient(new SocketsHttpHandler()) { DefaultRequestVersion = System.Net.HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        return await http.SendAsync(request);
    }

}
