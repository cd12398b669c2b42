using System.Diagnostics;
using Kdb.Bench.Common;
using Kdb.Testing.Cluster;
using Kdb.Testing.Proxy;
using Npgsql;

// Three clustered nodes and a proxy in front of them (TLS off on both paths). Every figure is measured through the
// proxy and directly against the group's leader in the same run, the direct one being the baseline.
// pgbench (libpq) would otherwise prefer TLS, which the proxy offers and the nodes do not: both paths in clear.
Environment.SetEnvironmentVariable("PGSSLMODE", "disable");
var quick = args.Contains("--quick");
// `--only connect` measures session set-up alone, with the proxy's own per-step breakdown.
var only = args.SkipWhile(a => a != "--only").Skip(1).FirstOrDefault();
var seconds = quick ? 5 : 20;
// Each idle session also holds one on a node; read-only sessions spread over the three replicas, whose session limit
// is raised for the full run. The issue asks for 10,000; the proxy holds two sockets per session and this machine's
// hard limit is 20,000 open files per process, so the full run opens 9,000.
var idleSessions = quick ? 600 : 9_000;
// Lease reads, as the local cloud runs its nodes (infra/Kdb.Launcher/Topology.cs): the direct and proxied runs measure the
// same node configuration tenants get.
var bed = new ProxyTestBed { NodeArguments = ["--Node:MaxConnections=4000", "--Cluster:ReadMode=lease"] };
await bed.InitializeAsync();
try
{
    var entry = await bed.CreateRoutedDatabaseAsync(ThreeNodeCluster.OwnerPassword, maxConnections: 10_000);
    var leader = await bed.Cluster.LeaderOfAsync(bed.GroupId);
    var viaProxy = new PgTarget("proxy", bed.Proxy.PgPort, "owner", ThreeNodeCluster.OwnerPassword, entry.DatabaseId);
    var direct = new PgTarget("direct", leader.PgPort, "owner", ThreeNodeCluster.OwnerPassword, entry.DatabaseId);
    if (only == "connect")
    {
        await ConnectFiguresAsync(bed.Proxy.ManagementPort, direct, viaProxy);
        await using var defaults = await ProxyProcess.StartAsync(bed.Routes.BaseAddress, bed.Cluster.Issuer, new Dictionary<string, string> { ["Proxy:InlineScheduling"] = "false" });
        var viaDefaults = viaProxy with { Port = defaults.PgPort };
        double[] inlineConnects = new double[3], poolConnects = new double[3];
        for (var round = 0; round < 3; round++)
        {
            inlineConnects[round] = await ConnectP50MsAsync(viaProxy);
            poolConnects[round] = await ConnectP50MsAsync(viaDefaults);
        }

        Array.Sort(inlineConnects);
        Array.Sort(poolConnects);
        BenchTools.Figure("proxy_connect_p50_ms.inline_scheduling", inlineConnects[1], "ms");
        BenchTools.Figure("proxy_connect_p50_ms.pool_scheduling", poolConnects[1], "ms");
        return;
    }

    if (only == "idle")
    {
        // The same measurement on a proxy with workstation GC, for comparison with the configured one.
        await using var workstation = await ProxyProcess.StartAsync(bed.Routes.BaseAddress, bed.Cluster.Issuer, environment: new Dictionary<string, string> { ["DOTNET_gcServer"] = "0" });
        var viaWorkstation = viaProxy with { Port = workstation.PgPort };
        var (m1, o1) = await IdleKbAsync(viaProxy, ProcessStats.FindHost(bed.Proxy.ProcessId, "Kdb.Proxy.dll"), idleSessions);
        var (m2, o2) = await IdleKbAsync(viaWorkstation, ProcessStats.FindHost(workstation.ProcessId, "Kdb.Proxy.dll"), idleSessions);
        BenchTools.Figure("proxy_idle_conn_kb", m1, "KB");
        BenchTools.Figure("proxy_idle_conn_kb.with_first_half", o1, "KB");
        BenchTools.Figure("proxy_idle_conn_kb.workstation_gc", m2, "KB");
        BenchTools.Figure("proxy_idle_conn_kb.workstation_gc_with_first_half", o2, "KB");
        return;
    }

    if (only == "select")
    {
        // The select ratio alone, three alternated rounds (the machine's load drifts hit both sides alike).
        LoadPgbench(viaProxy);
        for (var round = 0; round < 3; round++)
        {
            SelectFigures(bed, leader, direct, viaProxy, seconds);
        }

        return;
    }

    // First, before any load has grown the proxy's heap: RSS growth per idle session is only meaningful then.
    var (marginalKb, overallKb) = await IdleKbAsync(viaProxy, ProcessStats.FindHost(bed.Proxy.ProcessId, "Kdb.Proxy.dll"), idleSessions);
    BenchTools.Figure("proxy_idle_conn_kb", marginalKb, "KB");
    BenchTools.Figure("proxy_idle_conn_kb.with_first_half", overallKb, "KB");

    LoadPgbench(viaProxy);
    SelectFigures(bed, leader, direct, viaProxy, seconds);

    var directP50 = await RoundTripP50UsAsync(direct);
    var proxyP50 = await RoundTripP50UsAsync(viaProxy);
    BenchTools.Figure("proxy_round_trip_p50_us.direct", directP50, "us");
    BenchTools.Figure("proxy_round_trip_p50_us.proxy", proxyP50, "us");
    BenchTools.Figure("proxy_added_p50_us", proxyP50 - directP50, "us");

    await ConnectFiguresAsync(bed.Proxy.ManagementPort, direct, viaProxy);

    // The same proxy with Kestrel's thread-pool scheduling (the default before inline scheduling), alternated with
    // the inline one so the machine's load drifts hit both alike: the added latency of each, against the same direct runs.
    await using var pooled = await ProxyProcess.StartAsync(bed.Routes.BaseAddress, bed.Cluster.Issuer, new Dictionary<string, string> { ["Proxy:InlineScheduling"] = "false" }); // both inline pipe scheduling and inline socket completions off
    var viaPooled = viaProxy with { Port = pooled.PgPort };
    double[] inlineRuns = new double[3], poolRuns = new double[3], directRuns = new double[3];
    for (var round = 0; round < 3; round++)
    {
        directRuns[round] = await RoundTripP50UsAsync(direct);
        inlineRuns[round] = await RoundTripP50UsAsync(viaProxy);
        poolRuns[round] = await RoundTripP50UsAsync(viaPooled);
    }

    Array.Sort(inlineRuns);
    Array.Sort(poolRuns);
    Array.Sort(directRuns);
    BenchTools.Figure("proxy_added_p50_us.inline_scheduling", inlineRuns[1] - directRuns[1], "us");
    BenchTools.Figure("proxy_added_p50_us.pool_scheduling", poolRuns[1] - directRuns[1], "us");
}
finally
{
    await bed.DisposeAsync();
}

// pgbench -i -s 1 through the proxy.
static void LoadPgbench(PgTarget viaProxy)
{
    Console.Error.WriteLine("# pgbench -i -s 1 through the proxy");
    for (var attempt = 1; ; attempt++)
    {
        try
        {
            BenchTools.Pgbench(viaProxy, TimeSpan.FromMinutes(10), "-i", "-s", "1", "-q");
            break;
        }
        catch (InvalidOperationException e) when (attempt < 3)
        {
            // On a loaded machine a leader change can end the load with an unknown outcome: load again, from scratch.
            Console.Error.WriteLine($"# pgbench -i failed (attempt {attempt}), again: {e.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]}");
        }
    }
}

// pgbench -S directly, then through the proxy: TPS of each and the CPU each process spends per transaction.
static void SelectFigures(ProxyTestBed bed, ClusterNodeProcess leader, PgTarget direct, PgTarget viaProxy, int seconds)
{
    var proxyPid = ProcessStats.FindHost(bed.Proxy.ProcessId, "Kdb.Proxy.dll");
    var leaderPid = ProcessStats.FindHost(leader.ProcessId, "Kdb.Node.dll");
    var leaderCpu0 = ProcessStats.CpuSeconds(leaderPid);
    var directTps = BenchTools.PgbenchTps(direct, "-S", seconds);
    var leaderCpu1 = ProcessStats.CpuSeconds(leaderPid);
    var proxyCpu0 = ProcessStats.CpuSeconds(proxyPid);
    var nodeCpu0 = ProcessStats.CpuSeconds(leaderPid);
    var proxyTps = BenchTools.PgbenchTps(viaProxy, "-S", seconds);
    var proxyCpu1 = ProcessStats.CpuSeconds(proxyPid);
    var nodeCpu1 = ProcessStats.CpuSeconds(leaderPid);

    // CPU per transaction (from /proc, 10 ms ticks): on 2 shared cores the select ratio is a contest for CPU between
    // pgbench, the node and the proxy, so the proxy's own cost per statement is the figure that explains it.
    BenchTools.Figure("proxy_cpu_us_per_tx.proxy", (proxyCpu1 - proxyCpu0) * 1e6 / (proxyTps * seconds), "us");
    BenchTools.Figure("proxy_cpu_us_per_tx.node_direct", (leaderCpu1 - leaderCpu0) * 1e6 / (directTps * seconds), "us");
    BenchTools.Figure("proxy_cpu_us_per_tx.node_via_proxy", (nodeCpu1 - nodeCpu0) * 1e6 / (proxyTps * seconds), "us");
    BenchTools.Figure("proxy_select_tps.direct", directTps, "tps");
    BenchTools.Figure("proxy_select_tps.proxy", proxyTps, "tps");
    BenchTools.Figure("proxy_over_direct_select", proxyTps / directTps, "x");
}

static string Cs(PgTarget t) => t.ConnectionString + ";Pooling=false;SSL Mode=Disable;Gss Encryption Mode=Disable";

// One connection, simple SELECTs one after another: the median round trip.
static async Task<double> RoundTripP50UsAsync(PgTarget target)
{
    await using var conn = new NpgsqlConnection(Cs(target));
    await conn.OpenAsync();
    await using var cmd = new NpgsqlCommand("SELECT 1", conn);
    await cmd.PrepareAsync();
    var samples = new double[3000];
    for (var i = -300; i < samples.Length; i++)
    {
        var start = Stopwatch.GetTimestamp();
        await cmd.ExecuteScalarAsync();
        if (i >= 0)
        {
            samples[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        }
    }

    Array.Sort(samples);
    return samples[samples.Length / 2];
}

static async Task ConnectFiguresAsync(int managementPort, PgTarget direct, PgTarget viaProxy)
{
    BenchTools.Figure("proxy_connect_p50_ms.direct", await ConnectP50MsAsync(direct), "ms");
    var before = await StartupPhasesAsync(managementPort);
    BenchTools.Figure("proxy_connect_p50_ms", await ConnectP50MsAsync(viaProxy), "ms");
    var after = await StartupPhasesAsync(managementPort);
    foreach (var (phase, (sum, count)) in after)
    {
        var (sum0, count0) = before.GetValueOrDefault(phase);
        if (count > count0)
        {
            BenchTools.Figure("proxy_connect_phase_mean_ms." + phase, (sum - sum0) / (count - count0) * 1000, "ms");
        }
    }
}

// The proxy's kdb_proxy_startup_phase histogram: seconds summed and sessions counted per phase.
static async Task<Dictionary<string, (double Sum, double Count)>> StartupPhasesAsync(int managementPort)
{
    using var http = new HttpClient();
    var text = await http.GetStringAsync($"http://127.0.0.1:{managementPort}/metrics");
    var phases = new Dictionary<string, (double Sum, double Count)>();
    foreach (var line in text.Split('\n'))
    {
        var sum = line.StartsWith("kdb_proxy_startup_phase_seconds_sum{", StringComparison.Ordinal);
        if (!sum && !line.StartsWith("kdb_proxy_startup_phase_seconds_count{", StringComparison.Ordinal))
        {
            continue;
        }

        var start = line.IndexOf("phase=\"", StringComparison.Ordinal) + 7;
        var phase = line[start..line.IndexOf('"', start)];
        var value = double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        var (s, c) = phases.GetValueOrDefault(phase);
        phases[phase] = sum ? (value, c) : (s, value);
    }

    return phases;
}

// New connections one after another (the route is cached after the first): the median OpenAsync, SCRAM included.
static async Task<double> ConnectP50MsAsync(PgTarget target)
{
    var samples = new double[200];
    for (var i = -10; i < samples.Length; i++)
    {
        var start = Stopwatch.GetTimestamp();
        await using var conn = new NpgsqlConnection(Cs(target));
        await conn.OpenAsync();
        if (i >= 0)
        {
            samples[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }
    }

    Array.Sort(samples);
    return samples[samples.Length / 2];
}

// Opens idle read-only sessions through the proxy in two halves. The figure is the second half's resident-set growth
// per session: what one more idle session costs once the process has grown its thread pool and GC budgets (the
// first half pays those once); the growth over both halves is printed beside it.
static async Task<(double Marginal, double Overall)> IdleKbAsync(PgTarget target, int proxyPid, int count)
{
    var readOnly = Cs(target) + ";Options=-c default_transaction_read_only=on";

    // One session first, so the code paths are compiled before the baseline is read.
    await using (var warm = new NpgsqlConnection(readOnly))
    {
        await warm.OpenAsync();
    }

    await Task.Delay(1000);
    var before = BenchTools.RssKb(proxyPid);
    var open = new List<NpgsqlConnection>();
    try
    {
        var half = count / 2;
        long middle = 0;
        for (var i = 0; i < half * 2; i++)
        {
            if (i == half)
            {
                await Task.Delay(2000);
                middle = BenchTools.RssKb(proxyPid);
            }

            var c = new NpgsqlConnection(readOnly);
            await c.OpenAsync();
            open.Add(c);
        }

        await Task.Delay(2000);
        var after = BenchTools.RssKb(proxyPid);
        return ((after - middle) / (double)half, (after - before) / (double)(half * 2));
    }
    finally
    {
        foreach (var c in open)
        {
            await c.DisposeAsync();
        }
    }
}
