using System.Diagnostics;
using Kdb.Testing.Proxy;
using Npgsql;

namespace Kdb.Proxy.Tests;

/// <summary>Real clients (Npgsql, psql) through a real proxy to real node processes: every routing form, tokens, TLS and SNI.</summary>
[Collection(ProxyCollection.Name)]
public sealed class PgRoutingTests(ProxyTestBed bed)
{
    [Fact]
    public async Task Npgsql_EveryRoutingForm_ReachesTheDatabaseAndLearnsTheLeader()
    {
        var entry = await bed.CreateRoutedDatabaseAsync("pw-routing-1");
        var proxy = bed.Proxy;
        await using (var conn = new NpgsqlConnection(proxy.ConnectionString(entry.DatabaseId, "owner", "pw-routing-1")))
        {
            await conn.OpenAsync();
            Assert.Equal(entry.LeaderNodeId, conn.PostgresParameters["kdb_leader"]);
            await using var cmd = new NpgsqlCommand("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 50) g", conn);
            await cmd.ExecuteNonQueryAsync();
        }

        // options=--database=<id> and endpoint=<id> win over the database name the client sends.
        foreach (var options in new[] { "--database=" + entry.DatabaseId, "endpoint=" + entry.DatabaseId })
        {
            await using var conn = new NpgsqlConnection(proxy.ConnectionString("postgres", "owner", "pw-routing-1", "Options=" + options));
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT count(*) FROM t", conn);
            Assert.Equal(50L, await cmd.ExecuteScalarAsync());
        }
    }

    [Fact]
    public async Task Npgsql_DataTokenWithJwtOption_LogsInAndWrongTokensFailAlike()
    {
        var entry = await bed.CreateRoutedDatabaseAsync("pw-token-1");
        var other = await bed.CreateRoutedDatabaseAsync("pw-token-2");
        var token = bed.Cluster.Issuer.MintDataToken("org_test", entry.DatabaseId, "owner", TimeSpan.FromMinutes(10));
        await using (var conn = new NpgsqlConnection(bed.Proxy.ConnectionString(entry.DatabaseId, "owner", token, "Options=--kdb:jwt=true")))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT 41 + 1", conn);
            Assert.Equal(42, await cmd.ExecuteScalarAsync());
        }

        // A token of another database, and one for another role: the same 28P01 as any failed login.
        var foreign = await Assert.ThrowsAsync<PostgresException>(() => OpenAsync(bed.Proxy.ConnectionString(other.DatabaseId, "owner", token, "Options=--kdb:jwt=true")));
        Assert.Equal("28P01", foreign.SqlState);
        var wrongRole = bed.Cluster.Issuer.MintDataToken("org_test", entry.DatabaseId, "reader", TimeSpan.FromMinutes(10));
        var role = await Assert.ThrowsAsync<PostgresException>(() => OpenAsync(bed.Proxy.ConnectionString(entry.DatabaseId, "owner", wrongRole, "Options=--kdb:jwt=true")));
        Assert.Equal("28P01", role.SqlState);
        Assert.Equal(foreign.MessageText, role.MessageText);
    }

    [Fact]
    public async Task Npgsql_Tls_IsOfferedWithTheConfiguredCertificate()
    {
        var entry = await bed.CreateRoutedDatabaseAsync("pw-tls-1");
        var cs = bed.Proxy.ConnectionString(entry.DatabaseId, "owner", "pw-tls-1").Replace("SSL Mode=Disable", "SSL Mode=VerifyCA;Root Certificate=" + bed.CertificatePath, StringComparison.Ordinal);
        await using var conn = new NpgsqlConnection(cs);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT 7", conn);
        Assert.Equal(7, await cmd.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Psql_SniHostName_RoutesToTheDatabase()
    {
        var entry = await bed.CreateRoutedDatabaseAsync("pw-sni-1");
        var sniHost = entry.DatabaseId.Replace('_', '-') + ".kdb.localhost";

        // libpq's hostaddr connects to loopback while host= supplies the SNI name; dbname names nothing that exists.
        var (exit, stdout, stderr) = await PsqlAsync(
            $"host={sniHost} hostaddr=127.0.0.1 port={bed.Proxy.PgPort} dbname=whatever user=owner sslmode=require",
            "pw-sni-1",
            "SELECT 'sni-ok'");
        Assert.True(exit == 0, stderr);
        Assert.Contains("sni-ok", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Psql_PlainDatabaseName_RunsStatementsAndCatalogCommands()
    {
        var entry = await bed.CreateRoutedDatabaseAsync("pw-psql-1");
        var (exit, stdout, stderr) = await PsqlAsync(
            $"host=127.0.0.1 port={bed.Proxy.PgPort} dbname={entry.DatabaseId} user=owner sslmode=disable",
            "pw-psql-1",
            "CREATE TABLE p (id int PRIMARY KEY); INSERT INTO p VALUES (1), (2); SELECT count(*) AS n FROM p;");
        Assert.True(exit == 0, stderr);
        Assert.Contains("2", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Egress_IsReportedToUsageIngestion()
    {
        var entry = await bed.CreateRoutedDatabaseAsync("pw-usage-1");
        await using (var conn = new NpgsqlConnection(bed.Proxy.ConnectionString(entry.DatabaseId, "owner", "pw-usage-1")))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT repeat('x', 20000)", conn);
            Assert.Equal(20000, ((string)(await cmd.ExecuteScalarAsync())!).Length);
        }

        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (bed.Routes.Usage.Where(u => u.DatabaseId == entry.DatabaseId).Sum(u => u.EgressBytes) < 20000)
        {
            Assert.True(DateTime.UtcNow < deadline, "no egress reported for the database");
            await Task.Delay(200);
        }

        var records = bed.Routes.Usage.Where(u => u.DatabaseId == entry.DatabaseId).ToList();
        Assert.Equal(1, records.Sum(u => u.Connections));
        Assert.All(records, u => Assert.Equal("test-proxy", u.Source));
        Assert.Equal(records.Count, records.Select(u => u.Sequence).Distinct().Count());
    }

    [Fact]
    public async Task ReadOnlySessions_AreSpreadOverTheReplicas_AndStayReadOnly()
    {
        var entry = await bed.CreateRoutedDatabaseAsync("pw-readonly");
        await using (var setup = new NpgsqlConnection(bed.Proxy.ConnectionString(entry.DatabaseId, "owner", "pw-readonly")))
        {
            await setup.OpenAsync();
            await using var cmd = new NpgsqlCommand("CREATE TABLE facts (id int PRIMARY KEY, v text); INSERT INTO facts VALUES (1, 'written before')", setup);
            await cmd.ExecuteNonQueryAsync();
        }

        var readOnly = bed.Proxy.ConnectionString(entry.DatabaseId, "owner", "pw-readonly", "Options=-c default_transaction_read_only=on");
        for (var i = 0; i < 6; i++)
        {
            await using var conn = new NpgsqlConnection(readOnly);
            await conn.OpenAsync();

            // Whichever replica serves it, a read-only session sees every acknowledged write (followers use ReadIndex).
            await using (var read = new NpgsqlCommand("SELECT v FROM facts WHERE id = 1", conn))
            {
                Assert.Equal("written before", await read.ExecuteScalarAsync());
            }

            await using var write = new NpgsqlCommand("INSERT INTO facts VALUES (2, 'refused')", conn);
            var refused = await Assert.ThrowsAsync<PostgresException>(() => write.ExecuteNonQueryAsync());
            Assert.Equal("25006", refused.SqlState);
        }

        using var http = new HttpClient();
        var metrics = await http.GetStringAsync($"http://127.0.0.1:{bed.Proxy.ManagementPort}/metrics");
        var nodes = metrics.Split('\n')
            .Where(l => l.StartsWith("kdb_proxy_connections", StringComparison.Ordinal) && l.Contains("access=\"read_only\"", StringComparison.Ordinal))
            .Select(l => System.Text.RegularExpressions.Regex.Match(l, "node=\"([^\"]+)\"").Groups[1].Value)
            .ToHashSet();
        Assert.True(nodes.Count >= 2, "read-only sessions all went to " + string.Join(",", nodes) + "\n" + metrics);
    }

    [Fact]
    public async Task RouteMissingFromCache_IsFetchedSynchronously()
    {
        var entry = await bed.CreateRoutedDatabaseAsync("pw-fetch-1", publish: false);
        var before = bed.Routes.SingleFetches;
        await using var conn = new NpgsqlConnection(bed.Proxy.ConnectionString(entry.DatabaseId, "owner", "pw-fetch-1"));
        await conn.OpenAsync();
        Assert.True(bed.Routes.SingleFetches > before);
    }

    [Fact]
    public async Task CancelRequest_IsForwardedToTheRightBackend()
    {
        var entry = await bed.CreateRoutedDatabaseAsync("pw-cancel-1");

        // Npgsql gives up on a cancelled statement after 2 s by default; on a loaded machine the node may take longer.
        await using var conn = new NpgsqlConnection(bed.Proxy.ConnectionString(entry.DatabaseId, "owner", "pw-cancel-1", "Cancellation Timeout=0"));
        await conn.OpenAsync();

        // A cancel that arrives before the statement runs does nothing (as in PostgreSQL): warm the node's code path
        // first, so the long statement is surely running when the cancel comes.
        await using (var warm = new NpgsqlCommand("SELECT count(*) FROM generate_series(1, 100000) a", conn))
        {
            await warm.ExecuteScalarAsync();
        }

        await using var cmd = new NpgsqlCommand("SELECT count(*) FROM generate_series(1, 200000000) a", conn);
        var watch = Stopwatch.StartNew();
        var running = cmd.ExecuteScalarAsync();
        await Task.Delay(1500);
        cmd.Cancel();
        var e = await Assert.ThrowsAnyAsync<Exception>(() => running);
        var pg = e as PostgresException ?? e.InnerException as PostgresException;
        Assert.True(pg is { SqlState: "57014" }, e.ToString());
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30));

        // The session survives its cancelled statement.
        await using var again = new NpgsqlCommand("SELECT 1", conn);
        Assert.Equal(1, await again.ExecuteScalarAsync());
    }

    private static async Task OpenAsync(string connectionString)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync();
    }

    internal static async Task<(int Exit, string Stdout, string Stderr)> PsqlAsync(string conninfo, string password, string sql)
    {
        var start = new ProcessStartInfo("psql", ["-X", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", sql])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["PGPASSWORD"] = password;
        start.Environment["PGCONNECT_TIMEOUT"] = "20";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout, await stderr);
    }
}
