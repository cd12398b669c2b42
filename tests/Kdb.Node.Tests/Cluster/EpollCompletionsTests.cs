using System.Globalization;
using System.Net.Http.Headers;
using Kdb.Node.Tests.Standalone;
using Kdb.Testing.Cluster;
using Npgsql;
using Xunit.Abstractions;

namespace Kdb.Node.Tests.Cluster;

/// <summary>Three clustered nodes whose socket completions run on the runtime's epoll threads.</summary>
public sealed class EpollCompletionsCluster() : IAsyncLifetime
{
    public ThreeNodeCluster Cluster { get; } = new() { ExtraArguments = ["--Node:EpollSocketCompletions=true"] };

    public Task InitializeAsync() => Cluster.InitializeAsync();

    public Task DisposeAsync() => Cluster.DisposeAsync();
}

/// <summary>
/// With socket completions on the epoll threads, a thread that blocks on a Raft round trip can stall the very socket
/// that brings the answer: <c>pgbench -i</c> used to hang (sequence blocks and the catalog were waited for
/// synchronously). Now every store call on the statement path is awaited: the COPY load, serial inserts from several
/// connections and pgbench's scripts all complete, and the engine metrics of the group move on <c>/metrics</c>.
/// </summary>
[Collection(StandaloneCollection.Name)] // real processes: one such class at a time on this machine's two cores
public sealed class EpollCompletionsTests(EpollCompletionsCluster fixture, ITestOutputHelper output) : IClassFixture<EpollCompletionsCluster>
{
    private ThreeNodeCluster Cluster => fixture.Cluster;

    [Fact]
    public async Task Pgbench_and_serial_inserts_complete_with_epoll_completions_and_engine_metrics_move()
    {
        var group = await Cluster.CreateGroupAsync(71);
        var leader = await Cluster.LeaderOfAsync(group);
        var (db, _) = await Cluster.CreateDatabaseAsync(group, leader);

        // A follower forwards to the leader: the load goes through both hops.
        var follower = Cluster.Nodes.First(n => n != leader);
        var init = await PgbenchAsync(follower, db, TimeSpan.FromMinutes(5), "-i", "-s", "1");
        Assert.True(init.ExitCode == 0, Tools.Describe(init));
        var run = await PgbenchAsync(leader, db, TimeSpan.FromMinutes(2), "-N", "-T", "3", "-c", "4", "-j", "2", "--max-tries=10", "-M", "prepared");
        output.WriteLine(run.Output);
        Assert.True(run.ExitCode == 0, Tools.Describe(run));
        Assert.Contains("number of failed transactions: 0 ", run.Output, StringComparison.Ordinal);

        // Serial columns from several connections at once (each draws sequence blocks: commits of their own), and one
        // statement that needs many blocks (it is undone and re-run with a larger block each time it runs out).
        await using (var setup = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(leader, db)))
        {
            await setup.OpenAsync();
            await Exec(setup, "CREATE TABLE t (id serial PRIMARY KEY, writer int, v int)");
        }

        await Task.WhenAll(Enumerable.Range(0, 4).Select(async writer =>
        {
            await using var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(Cluster.Nodes[writer % 3], db));
            await conn.OpenAsync();
            for (var i = 0; i < 40; i++)
            {
                await using var insert = new NpgsqlCommand("INSERT INTO t (writer, v) VALUES ($1, $2)", conn) { Parameters = { new() { Value = writer }, new() { Value = i } } };
                await insert.ExecuteNonQueryAsync();
            }
        }));
        await using (var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(leader, db)))
        {
            await conn.OpenAsync();
            Assert.Equal(5000, await Exec(conn, "INSERT INTO t (writer, v) SELECT 9, g FROM generate_series(1, 5000) g"));
            await using (var check = new NpgsqlCommand("SELECT count(*), count(DISTINCT id) FROM t", conn))
            await using (var reader = await check.ExecuteReaderAsync())
            {
                Assert.True(await reader.ReadAsync());
                Assert.Equal(5160L, reader.GetInt64(0));
                Assert.Equal(5160L, reader.GetInt64(1));
            }

            await using var sum = new NpgsqlCommand("SELECT sum(v) FROM t WHERE writer = 9", conn);
            Assert.Equal(5000L * 5001 / 2, Convert.ToInt64(await sum.ExecuteScalarAsync(), CultureInfo.InvariantCulture));
        }

        // Flush and compact the leader's engines (operator endpoints), then read: the learned index answers lookups.
        var label = $"group=\"{group.ToString(CultureInfo.InvariantCulture)}\"";
        var before = await ScrapeAsync(leader);
        using (var http = new HttpClient())
        {
            foreach (var path in new[] { "/v1/admin/snapshot", "/v1/admin/rmi/build" })
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{leader.HttpPort}{path}") { Content = new StringContent("{}", System.Text.Encoding.UTF8, "application/json") };
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Cluster.OperatorToken);
                using var response = await http.SendAsync(request);
                Assert.True(response.IsSuccessStatusCode, $"{path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            }
        }

        var select = await PgbenchAsync(leader, db, TimeSpan.FromMinutes(2), "-S", "-T", "2", "-c", "2", "-M", "prepared");
        Assert.True(select.ExitCode == 0, Tools.Describe(select));
        var after = await ScrapeAsync(leader);
        output.WriteLine(string.Join('\n', after.Split('\n').Where(l => l.Contains(label, StringComparison.Ordinal) && (l.StartsWith("kdb_rmi", StringComparison.Ordinal) || l.StartsWith("kdb_engine_compaction", StringComparison.Ordinal)))));

        var lookups = Value(after, "kdb_rmi_probe_length_count", label);
        Assert.True(lookups > Value(before, "kdb_rmi_probe_length_count", label, orZero: true), "probe-length histogram did not move");
        Assert.Equal(lookups, Value(after, "kdb_rmi_probe_length_bucket", label + ",le=\"+Inf\""));
        Assert.True(Value(after, "kdb_rmi_probe_length_sum", label) >= lookups);
        Assert.True(Value(after, "kdb_rmi_probe_length_bucket", label + ",le=\"1\"") <= Value(after, "kdb_rmi_probe_length_bucket", label + ",le=\"128\""));
        Assert.True(Value(after, "kdb_rmi_mispredicts_total", label) >= 0);
        Assert.True(Value(after, "kdb_rmi_build_seconds_count", label) > Value(before, "kdb_rmi_build_seconds_count", label, orZero: true));
        Assert.True(Value(after, "kdb_engine_compaction_seconds_count", label) >= 1);
        Assert.True(Value(after, "kdb_engine_compaction_written_bytes_total", label) > 0);
        Assert.True(Value(after, "kdb_group_commit_latency_seconds_count", label) > 0);
        Assert.Contains($"kdb_group_apply_lag{{{label}}}", after, StringComparison.Ordinal);
        Assert.Contains($"kdb_group_leader_changes_total{{{label}}}", after, StringComparison.Ordinal);

        // Both followers' streams to the leader (their acknowledgements) were read straight off the connection.
        Assert.True(Value(after, "kdb_raft_direct_connections_total", "") >= 2, "the followers' peer streams did not bypass Kestrel's HTTP/2 server");
        Assert.True(Value(after, "kdb_raft_messages_received_total", "") > 0);
        Assert.Equal(0, Value(after, "kdb_raft_malformed_frames_total", ""));
    }

    private static async Task<int> Exec(NpgsqlConnection conn, string sql)
    {
        await using var command = new NpgsqlCommand(sql, conn);
        return await command.ExecuteNonQueryAsync();
    }

    private static Task<Tools.Result> PgbenchAsync(ClusterNodeProcess node, string db, TimeSpan timeout, params string[] arguments) =>
        Tools.RunAsync("pgbench", ["-h", "127.0.0.1", "-p", node.PgPort.ToString(CultureInfo.InvariantCulture), "-U", "owner", .. arguments, db], ThreeNodeCluster.OwnerPassword, timeout: timeout);

    private static async Task<string> ScrapeAsync(ClusterNodeProcess node)
    {
        using var http = new HttpClient();
        return await http.GetStringAsync($"http://127.0.0.1:{node.ManagementPort}/metrics");
    }

    /// <summary>The value of series <paramref name="name"/>{<paramref name="labels"/>} in an exposition.</summary>
    internal static double Value(string exposition, string name, string labels, bool orZero = false)
    {
        var prefix = labels.Length == 0 ? name + " " : name + "{" + labels + "} ";
        foreach (var line in exposition.Split('\n'))
        {
            if (line.StartsWith(prefix, StringComparison.Ordinal))
            {
                return double.Parse(line[prefix.Length..], CultureInfo.InvariantCulture);
            }
        }

        return orZero ? 0 : throw new Xunit.Sdk.XunitException($"no series {prefix.Trim()} in:\n{exposition}");
    }
}
