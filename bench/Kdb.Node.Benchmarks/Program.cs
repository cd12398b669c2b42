using System.Diagnostics;
using Kdb.Bench.Common;
using Kdb.Node.Admin;
using Kdb.Node.Admin.Wire;
using Kdb.PgWire.Auth;
using Kdb.Testing.Cluster;
using Npgsql;

// The clustered node against PostgreSQL 15 in the same run: pgbench -S, -N and TPC-B at scale 1 (8 clients, prepared, retries) against a
// 3-replica group directly (no proxy; fsync on everywhere, TLS off), then failover time after SIGKILL of the leader,
// then tenant density (resident memory per idle database). `--quick` shortens every part.
var quick = args.Contains("--quick");
// --only pgbench: the pgbench figures alone (for iterating on the data path); --only density: the density figures alone.
var only = args.SkipWhile(a => a != "--only").Skip(1).FirstOrDefault();
var pgbenchOnly = only == "pgbench";
var densityOnly = only == "density";
// --seconds N: the length of each pgbench run (A/B comparisons on a loaded machine want longer quick runs).
var secondsArgument = args.SkipWhile(a => a != "--seconds").Skip(1).FirstOrDefault();
var seconds = secondsArgument is not null ? int.Parse(secondsArgument, System.Globalization.CultureInfo.InvariantCulture) : quick ? 5 : 30;
var scale = quick ? 1 : 10;
// The figure is a million databases on a node; --quick holds 20,000 (and says so in its figures' notes).
var densityDatabases = quick ? 20_000 : 1_000_000;
var work = Path.Combine(Path.GetTempPath(), "kdb-node-bench-" + Guid.NewGuid().ToString("N")[..8]);
Directory.CreateDirectory(work);
BenchPostgres? pg = null;
// Leader leases serve reads without a heartbeat round per statement (the issue allows it "when configured").
var cluster = new ThreeNodeCluster { ExtraArguments = ["--Cluster:ReadMode=lease"] };
try
{
    pg = BenchPostgres.Start(work);
    await cluster.InitializeAsync();
    var group = await cluster.CreateGroupAsync(1);
    var leader = await cluster.LeaderOfAsync(group);
    var (db, _) = await cluster.CreateDatabaseAsync(group, leader);
    var kdb = new PgTarget("kdb", leader.PgPort, "owner", ThreeNodeCluster.OwnerPassword, db);
    foreach (var target in densityOnly ? [] : new[] { pg.Target, kdb })
    {
        var init = Stopwatch.StartNew();
        BenchTools.Pgbench(target, TimeSpan.FromMinutes(60), "-i", "-s", scale.ToString(System.Globalization.CultureInfo.InvariantCulture), "-q");
        Console.Error.WriteLine($"# pgbench -i -s {scale} on {target.Name}: {init.Elapsed.TotalSeconds:F1} s");
    }
    // The CPU each replica spends per transaction (from /proc): on 2 shared cores the ratio is a contest for CPU between
    // pgbench, PostgreSQL's idle server and three nodes, and the machine's load swings it; the cost per transaction
    // does not swing as much and says where a change helped.
    var leaderPid = ProcessStats.FindHost(leader.ProcessId, "Kdb.Node.dll");
    var followerPids = cluster.Nodes.Where(n => n != leader).Select(n => ProcessStats.FindHost(n.ProcessId, "Kdb.Node.dll")).ToArray();
    if (!densityOnly)
    {
        var settled = ProcessStats.WaitIdle([leaderPid, .. followerPids], TimeSpan.FromSeconds(90));
        Console.Error.WriteLine($"# replicas idle after loading: {settled.TotalSeconds:F1} s");
    }

    foreach (var (script, figure) in densityOnly ? [] : new[] { ("-S", "select"), ("-N", "update") })
    {
        var postgres = BenchTools.PgbenchTps(pg.Target, script, seconds);
        var leaderCpu0 = ProcessStats.CpuSeconds(leaderPid);
        var followersCpu0 = followerPids.Sum(ProcessStats.CpuSeconds);
        var group3 = BenchTools.PgbenchTps(kdb, script, seconds);
        var transactions = group3 * seconds;
        BenchTools.Figure($"pgbench_{figure}_tps.postgres", postgres, "tps");
        BenchTools.Figure($"pgbench_{figure}_tps.group3", group3, "tps");
        BenchTools.Figure($"pgbench_{figure}_over_postgres.group3", group3 / postgres, "x");
        BenchTools.Figure($"node_cpu_us_per_tx.{figure}.leader", (ProcessStats.CpuSeconds(leaderPid) - leaderCpu0) * 1e6 / transactions, "us");
        BenchTools.Figure($"node_cpu_us_per_tx.{figure}.followers", (followerPids.Sum(ProcessStats.CpuSeconds) - followersCpu0) * 1e6 / transactions, "us");
    }
    if (!densityOnly)
    {
        // TPC-B at scale 1: every transaction updates the one branch row (and one of ten tellers), the hot-row case
        // that row locks queue instead of failing with 40001. The retried share says how many still conflicted.
        if (scale != 1)
        {
            foreach (var target in new[] { pg.Target, kdb })
            {
                BenchTools.Pgbench(target, TimeSpan.FromMinutes(10), "-i", "-s", "1", "-q");
            }
        }
        var postgres = PgbenchTpcb(pg.Target, seconds);
        var group3 = PgbenchTpcb(kdb, seconds);
        Console.Error.WriteLine($"# tpcb failed after 10 tries: postgres {postgres.FailedShare:0.###} %, group3 {group3.FailedShare:0.###} %");
        BenchTools.Figure("pgbench_tpcb_tps.postgres", postgres.Tps, "tps");
        BenchTools.Figure("pgbench_tpcb_tps.group3", group3.Tps, "tps");
        BenchTools.Figure("pgbench_tpcb_over_postgres.group3", group3.Tps / postgres.Tps, "x");
        BenchTools.Figure("pgbench_tpcb_retried_share.group3", group3.RetriedShare, "%");
    }
    if (pgbenchOnly)
    {
        return;
    }

    // Density: many databases on one group, then the growth of each replica's resident memory per database. The node's
    // own process is measured (the fixture's process id is its setsid/shell wrapper), after a settle period, so what
    // remains is what an idle database costs.
    var admin = cluster.Admin(leader);
    var nodePids = cluster.Nodes.Select(n => ProcessStats.FindHost(n.ProcessId, "Kdb.Node.dll")).ToArray();
    await Task.Delay(2000);
    var before = nodePids.Select(Memory).ToArray();
    var storageBefore = (await admin.StatusAsync()).Groups.Single(g => g.GroupId == group).StorageBytes;
    var verifier = ScramSha256Verifier.Create("density-pass", 4096).ToString();
    var created = 0;
    var clock = Stopwatch.StartNew();
    // Several HTTP/2 connections per node with many requests in flight: a Raft round carries every create that arrived
    // meanwhile (one batch entry), so the creation rate is the number in flight over the round time. A create is
    // idempotent (same id and tenant answer "exists"), so one whose outcome was lost to a leader change is sent again to
    // whichever node leads then, as a provisioning client does.
    var clients = cluster.Nodes.ToDictionary(n => n, n => Enumerable.Range(0, 4).Select(_ => new NodeAdminClient(NodeAdminClient.CreateHttpClient(),
        new Uri(n.InternalUrl), _ => ValueTask.FromResult(cluster.OperatorToken))).ToArray());
    var current = leader;
    var retried = 0;
    await Parallel.ForAsync(0, densityDatabases, new ParallelOptions { MaxDegreeOfParallelism = 256 }, async (i, ct) =>
    {
        var request = new CreateDatabaseRequest
        {
            GroupId = group,
            DatabaseId = "db_density" + i.ToString("D10", System.Globalization.CultureInfo.InvariantCulture),
            TenantId = 1_000_000UL + (ulong)i,
            Owner = new Role { Name = "owner", Kind = RoleKind.Owner, ScramVerifier = verifier },
        };
        for (var attempt = 0; ; attempt++)
        {
            var target = current;
            try
            {
                await clients[target][i % 4].CreateDatabaseAsync(request, ct);
                break;
            }
            catch (Exception e) when (e is NodeAdminException or HttpRequestException && attempt < 100)
            {
                Interlocked.Increment(ref retried);
                await Task.Delay(200, ct);
                if (current == target)
                {
                    current = await cluster.LeaderOfAsync(group);
                }
            }
        }
        var n = Interlocked.Increment(ref created);
        if (n % 100_000 == 0)
        {
            Console.Error.WriteLine($"# {n} databases after {clock.Elapsed.TotalSeconds:F0} s (retried {Volatile.Read(ref retried)})");
        }
    });
    var createSeconds = clock.Elapsed.TotalSeconds;
    Console.Error.WriteLine($"# created {created} databases in {createSeconds:F1} s ({retried} requests retried after a leader change)");
    await Task.Delay(quick ? 5000 : 15000);
    var after = nodePids.Select(Memory).ToArray();
    var status = (await admin.StatusAsync()).Groups.Single(g => g.GroupId == group);
    for (var i = 0; i < 3; i++)
    {
        Console.Error.WriteLine($"# node {i}: RSS {before[i].Rss / 1024} → {after[i].Rss / 1024} MiB (anonymous {before[i].Anon / 1024} → {after[i].Anon / 1024} MiB)");
    }
    var perDatabase = Enumerable.Range(0, 3).Average(i => (after[i].Rss - before[i].Rss) * 1024.0 / created);
    var perDatabaseAnon = Enumerable.Range(0, 3).Average(i => (after[i].Anon - before[i].Anon) * 1024.0 / created);
    // RSS growth per database on each replica (file-backed pages of the mapped segments included; the anonymous part
    // alone beside it), and the bytes each database's metadata takes in the engine (memtable and segments).
    BenchTools.Figure("idle_database_bytes", Math.Max(0, perDatabase), "B");
    BenchTools.Figure("idle_database_anon_bytes", Math.Max(0, perDatabaseAnon), "B");
    BenchTools.Figure("idle_database_storage_bytes", (status.StorageBytes - storageBefore) / (double)created, "B");
    BenchTools.Figure("databases_per_node", status.Databases, "databases");
    BenchTools.Figure("database_create_per_s", created / createSeconds, "op/s");
    if (densityOnly)
    {
        return;
    }

    // Failover: a client on a follower commits in a loop; SIGKILL the leader; the time until a commit that started
    // after the kill succeeds.
    leader = await cluster.LeaderOfAsync(group);
    var survivor = cluster.Nodes.First(n => n != leader);
    var failover = await MeasureFailoverAsync(cluster, leader, survivor, db);
    BenchTools.Figure("node_failover_s", failover.TotalSeconds, "s");
}
finally
{
    NpgsqlConnection.ClearAllPools();
    await cluster.DisposeAsync();
    pg?.Dispose();
    try
    {
        Directory.Delete(work, recursive: true);
    }
    catch (IOException)
    {
    }
}

static async Task<TimeSpan> MeasureFailoverAsync(ThreeNodeCluster cluster, ClusterNodeProcess leader, ClusterNodeProcess survivor, string db)
{
    var cs = ThreeNodeCluster.ConnectionString(survivor, db) + ";Timeout=5;Command Timeout=10";
    async Task<bool> TryCommitAsync()
    {
        var attempt = Stopwatch.StartNew();
        try
        {
            await using var conn = new NpgsqlConnection(cs);
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("UPDATE pgbench_branches SET bbalance = bbalance + 1 WHERE bid = 1", conn);
            await cmd.ExecuteNonQueryAsync();
            return true;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            Console.Error.WriteLine($"# failover attempt failed after {attempt.ElapsedMilliseconds} ms: {e.Message}");
            return false;
        }
    }
    if (!await TryCommitAsync())
    {
        throw new InvalidOperationException("no commit succeeded before the kill");
    }
    var clock = Stopwatch.StartNew();
    await leader.KillAsync();
    while (clock.Elapsed < TimeSpan.FromMinutes(2))
    {
        if (await TryCommitAsync())
        {
            var elapsed = clock.Elapsed;
            await cluster.RestartAsync(leader);
            return elapsed;
        }
        await Task.Delay(20);
    }
    throw new TimeoutException("no commit succeeded within 2 minutes of the kill");
}

// pgbench's built-in TPC-B-like script (8 clients, prepared, up to 10 tries): TPS, and the shares of transactions
// retried and failed (pgbench prints both as a percentage of all transactions).
static (double Tps, double RetriedShare, double FailedShare) PgbenchTpcb(PgTarget target, int seconds)
{
    var output = BenchTools.Pgbench(target, TimeSpan.FromSeconds(seconds + 180), "-b", "tpcb-like", "-c", "8", "-j", "2", "-M", "prepared", "--max-tries=10",
        "-T", seconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
    double Number(string prefix, char open, char close)
    {
        var line = output.Split('\n').FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal));
        if (line is null)
        {
            return 0;
        }
        var start = open == ' ' ? prefix.Length : line.IndexOf(open, prefix.Length) + 1;
        var end = line.IndexOf(close, start);
        return double.Parse(line[start..end].Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }
    return (Number("tps = ", ' ', '('), Number("number of transactions retried:", '(', '%'), Number("number of failed transactions:", '(', '%'));
}

// Resident set and its anonymous part, in KiB.
static (long Rss, long Anon) Memory(int pid)
{
    long rss = 0, anon = 0;
    try
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                rss = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
            }
            else if (line.StartsWith("RssAnon:", StringComparison.Ordinal))
            {
                anon = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
            }
        }
    }
    catch (IOException)
    {
    }
    return (rss, anon);
}
