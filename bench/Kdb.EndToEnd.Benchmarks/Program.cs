using System.Diagnostics;
using Kdb.Bench.Common;
using Kdb.Provisioning.Benchmarks;
using Kdb.Testing.EndToEnd;
using Npgsql;

// The whole service as a user meets it: the local cloud (private PostgreSQL for the control plane, control plane with
// embedded provisioning, three clustered nodes, the proxy; TLS off everywhere) and, as the baseline, a private
// PostgreSQL 15 with fsync on, in the same run. Figures go to stdout as `BENCH <name> <value> <unit>`; progress to stderr.
var quick = args.Contains("--quick");
// `--only create` stops after the creation figures (request → ready, and where its time goes).
var createOnly = args.SkipWhile(a => a != "--only").Skip(1).FirstOrDefault() == "create";
var seconds = quick ? 5 : 20;
var cloud = new EndToEndCloud();
var work = Directory.CreateTempSubdirectory("kdb-bench-e2e-");
BenchPostgres? postgres = null;
try
{
    Console.Error.WriteLine("# starting the local cloud and PostgreSQL 15");
    await cloud.InitializeAsync();
    postgres = BenchPostgres.Start(work.FullName);
    // API request → `ready`, one database after another, each in an org of its own (the free plan allows 3 per org).
    var created = new List<CloudDatabase>();
    var visible = new List<double>();
    var stagesBefore = await CreationStageReport.ScrapeAsync(cloud.Http, cloud.ControlPlaneUrl);
    for (var i = 0; i < (quick ? 5 : 20); i++)
    {
        var name = "bench" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var (userToken, userOrg) = await cloud.UserAsync(name);
        var database = await cloud.CreateReadyDatabaseAsync(userToken, userOrg, name);
        created.Add(database);
        // The client's figure minus the server's request-to-ready: its REST round trips and the status poll.
        var operationId = database.Created.GetProperty("operation").GetProperty("id").GetString();
        var (_, operation) = await cloud.SendAsync(HttpMethod.Get, $"/v1/operations/{operationId}", userToken);
        var server = operation.GetProperty("finishedAt").GetDateTimeOffset() - operation.GetProperty("createdAt").GetDateTimeOffset();
        visible.Add((database.CreateToReady - server).TotalMilliseconds);
    }
    var createSeconds = created.Select(d => d.CreateToReady.TotalSeconds).ToList();
    BenchTools.Figure("e2e_db_create_p50_s", Percentile(createSeconds, 0.50), "s");
    BenchTools.Figure("e2e_db_create_p95_s", Percentile(createSeconds, 0.95), "s");
    (await CreationStageReport.ScrapeAsync(cloud.Http, cloud.ControlPlaneUrl)).EmitSince(stagesBefore, "e2e_db_create_stage", BenchTools.Figure);
    BenchTools.Figure("e2e_db_create_stage_p50_ms.visible", Percentile(visible, 0.50), "ms");
    BenchTools.Figure("e2e_db_create_stage_p95_ms.visible", Percentile(visible, 0.95), "ms");
    if (createOnly)
    {
        return;
    }

    var db = created[0];
    var viaProxy = new PgTarget("proxy", cloud.ProxyPgPort, "owner", db.Password, db.Id);
    var direct = postgres.Target;
    Console.Error.WriteLine("# pgbench -i -s 1 through the proxy and on PostgreSQL 15");
    BenchTools.Pgbench(viaProxy, TimeSpan.FromMinutes(10), "-i", "-s", "1", "-q");
    BenchTools.Pgbench(direct, TimeSpan.FromMinutes(10), "-i", "-s", "1", "-q");
    // Where the gap is: the same database straight on its group's leader node, in the same cloud and minutes (the proxy's
    // share is the difference; the rest is the cloud's processes and the group's replication on the same cores).
    var leaderNode = (Kdb.Testing.Provisioning.CloudNode)await cloud.LeaderOfAsync(db.Id, db.Password);
    var onLeader = viaProxy with { Name = "leader", Port = leaderNode.PgPort };
    foreach (var (figure, script) in new[] { ("select", "-S"), ("update", "-N"), ("tpcb", "--builtin=tpcb-like") })
    {
        var postgresTps = BenchTools.PgbenchTps(direct, script, seconds);
        var proxyTps = BenchTools.PgbenchTps(viaProxy, script, seconds);
        var leaderTps = BenchTools.PgbenchTps(onLeader, script, seconds);
        BenchTools.Figure($"e2e_pgbench_{figure}_tps.postgres", postgresTps, "tps");
        BenchTools.Figure($"e2e_pgbench_{figure}_tps.kdb", proxyTps, "tps");
        BenchTools.Figure($"e2e_pgbench_{figure}_tps.kdb_on_leader", leaderTps, "tps");
        BenchTools.Figure($"e2e_pgbench_{figure}_over_postgres", proxyTps / postgresTps, "x");
        BenchTools.Figure($"e2e_pgbench_{figure}_over_postgres.on_leader", leaderTps / postgresTps, "x");
    }

    // Latency at a steady moderate rate (100 statements/s, half reads, half writes), not at saturation.
    var latencySeconds = quick ? 10 : 30;
    var (pgRead, pgWrite) = await SteadyLatencyAsync(Cs(direct), latencySeconds);
    var (kdbRead, kdbWrite) = await SteadyLatencyAsync(Cs(viaProxy), latencySeconds);
    BenchTools.Figure("e2e_read_p99_ms.postgres", pgRead, "ms");
    BenchTools.Figure("e2e_read_p99_ms", kdbRead, "ms");
    BenchTools.Figure("e2e_write_p99_ms.postgres", pgWrite, "ms");
    BenchTools.Figure("e2e_write_p99_ms", kdbWrite, "ms");

    // Bank workload in two orgs while the group's leader is SIGKILLed: failover time, lost writes, isolation.
    var (token, org) = await cloud.UserAsync("bank-a");
    var (otherToken, otherOrg) = await cloud.UserAsync("bank-b");
    List<CloudDatabase> bank = [await cloud.CreateReadyDatabaseAsync(token, org, "bank"), await cloud.CreateReadyDatabaseAsync(otherToken, otherOrg, "bank")];
    var workloads = bank.Select(d => new BankWorkload(cloud.ProxyConnectionString(d.Id, d.Password), d.Id)).ToList();
    foreach (var w in workloads)
    {
        await w.SetUpAsync();
    }
    using var stop = new CancellationTokenSource();
    var running = Task.WhenAll(workloads.Select(w => w.RunAsync(2, stop.Token)));
    var failovers = new List<double>();
    for (var round = 0; round < (quick ? 1 : 3); round++)
    {
        await Task.Delay(TimeSpan.FromSeconds(3));
        var leader = await cloud.LeaderOfAsync(bank[0].Id, bank[0].Password);
        Console.Error.WriteLine($"# SIGKILL of {leader.Name}, the group's leader");
        var killed = Stopwatch.GetTimestamp();
        await leader.KillAsync();
        await FirstWriteAsync(cloud.ProxyConnectionString(bank[0].Id, bank[0].Password));
        failovers.Add(Stopwatch.GetElapsedTime(killed).TotalSeconds);
        await leader.StartAsync();
    }
    await Task.Delay(TimeSpan.FromSeconds(3));
    await stop.CancelAsync();
    await running.WaitAsync(TimeSpan.FromSeconds(90));
    BenchTools.Figure("e2e_failover_s", Percentile(failovers, 0.5), "s");

    var lost = 0;
    foreach (var w in workloads)
    {
        var check = await w.VerifyAsync();
        Console.Error.WriteLine($"# {check}; {w.Ambiguous} ambiguous, {w.Retries} retries, unexpected: {string.Join("; ", w.UnexpectedErrors.Distinct().Take(5))}");
        // A transfer applied in part or a wrong total is a lost write too, even when every acknowledged id is there.
        lost += check.LostWrites + (check.Problems.Count > 0 && check.LostWrites == 0 ? 1 : 0);
    }
    var violations = await IsolationProbe.FindViolationsAsync(cloud, bank, BankWorkload.Tables);
    foreach (var v in violations)
    {
        Console.Error.WriteLine("# isolation: " + v);
    }
    BenchTools.Figure("e2e_lost_writes", lost, "writes");
    BenchTools.Figure("e2e_isolation_violations", violations.Count, "violations");
}
finally
{
    postgres?.Dispose();
    await cloud.DisposeAsync();
    try
    {
        work.Delete(recursive: true);
    }
    catch (IOException)
    {
    }
    catch (UnauthorizedAccessException)
    {
    }
}

static string Cs(PgTarget t) => t.ConnectionString + ";Pooling=false;SSL Mode=Disable;Gss Encryption Mode=Disable";

static double Percentile(List<double> samples, double p)
{
    var sorted = samples.Order().ToList();
    return sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
}

// Four sessions, each paced at 25 statements a second, alternating a point read and a single-row update.
static async Task<(double ReadP99, double WriteP99)> SteadyLatencyAsync(string connectionString, int seconds)
{
    var reads = new List<double>();
    var writes = new List<double>();
    await Task.WhenAll(Enumerable.Range(0, 4).Select(async session =>
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync();
        await using var read = new NpgsqlCommand("SELECT abalance FROM pgbench_accounts WHERE aid = $1", conn) { Parameters = { new() { Value = 0 } } };
        await using var write = new NpgsqlCommand("UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = $1", conn) { Parameters = { new() { Value = 0 } } };
        await read.PrepareAsync();
        await write.PrepareAsync();
        var random = new Random(session);
        var interval = TimeSpan.FromMilliseconds(40);
        var next = Stopwatch.GetTimestamp();
        var end = next + (long)(seconds * Stopwatch.Frequency);
        for (var i = 0; Stopwatch.GetTimestamp() < end; i++)
        {
            var command = i % 2 == 0 ? read : write;
            command.Parameters[0].Value = random.Next(1, 100_001);
            var started = Stopwatch.GetTimestamp();
            await command.ExecuteNonQueryAsync();
            var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            lock (reads)
            {
                (command == read ? reads : writes).Add(ms);
            }
            next += (long)(interval.TotalSeconds * Stopwatch.Frequency);
            var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), next);
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait);
            }
        }
    }));
    return (Percentile(reads, 0.99), Percentile(writes, 0.99));
}

// Polls with a fresh session and short timeouts until a single-row write commits.
static async Task FirstWriteAsync(string connectionString)
{
    var builder = new NpgsqlConnectionStringBuilder(connectionString) { Timeout = 2, CommandTimeout = 2 };
    var deadline = DateTime.UtcNow.AddSeconds(120);
    while (true)
    {
        try
        {
            await using var conn = new NpgsqlConnection(builder.ConnectionString);
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("UPDATE accounts SET balance = balance WHERE id = 1", conn);
            await cmd.ExecuteNonQueryAsync();
            return;
        }
        catch (Exception e) when (BankWorkload.IsTransient(e) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }
    }
}
