using System.Diagnostics;
using System.Globalization;
using Kdb.Raft.Benchmarks;
using Kdb.Raft.TestHost;
using Kdb.Raft.Tests.Simulation;

var quick = args.Contains("--quick");
var only = args.SkipWhile(a => a != "--only").Skip(1).FirstOrDefault();
static void Bench(string name, double value, string unit) =>
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"BENCH {name} {value:0.###} {unit}"));

if (only is null or "sim")
{
    // Simulator: seeds across every scenario, violations must be 0.
    // --seeds N (or KDB_RAFT_SEEDS=N, which also reaches through `./kdb bench raft`): a longer soak by hand (seeds per scenario).
    var seedsArg = args.SkipWhile(a => a != "--seeds").Skip(1).FirstOrDefault() ?? Environment.GetEnvironmentVariable("KDB_RAFT_SEEDS");
    var perScenario = seedsArg is not null ? int.Parse(seedsArg, CultureInfo.InvariantCulture) : quick ? 10 : 50;
    var seeds = 0;
    var violations = 0;
    var sw = Stopwatch.StartNew();
    foreach (var scenario in Scenario.All)
    {
        var failed = 0;
        Parallel.For(1, perScenario + 1, seed =>
        {
            try
            {
                new Simulator(scenario, seed).Run();
            }
            catch (Exception ex)
            {
                Interlocked.Increment(ref failed);
                Console.Error.WriteLine($"{scenario.Name} seed {seed}: {ex.Message}\n  replay: {Simulator.ReplayCommand(scenario.Name, seed)}");
            }
        });
        seeds += perScenario;
        violations += failed;
    }
    Bench("raft_sim_seeds", seeds, "seeds");
    Bench("raft_sim_violations", violations, "count");
    Bench("raft_sim_seeds_per_s", seeds / sw.Elapsed.TotalSeconds, "seeds/s");
}

// KDB_RAFT_PROPOSERS=64 (a comma list) narrows the commit runs by hand, e.g. for an A/B of one setting.
var proposerCounts = (Environment.GetEnvironmentVariable("KDB_RAFT_PROPOSERS") ?? "1,16,64").Split(',').Select(p => int.Parse(p, CultureInfo.InvariantCulture)).ToArray();

if (only is null or "commit" or "stages")
{
    // Where a commit's time goes across processes: traced runs (tracing costs a little, so these are not the throughput
    // figures), mean ms per stage; `.httpclient` is the transport's HttpClient sender, the baseline of the per-round flush.
    await InTempDir("stages", async dir =>
    {
        foreach (var (p, sender) in new[] { (1, ""), (64, ""), (64, "httpclient") })
        {
            var hostArgs = "--async-append --trace" + (sender.Length > 0 ? " --" + sender : "");
            var r = await ProcessThroughput.RunAsync(Path.Combine(dir, $"p{p}{sender}"), ProcessCluster.HostDll(), p, TimeSpan.FromSeconds(quick ? 2 : 5), hostArgs);
            var suffix = sender.Length > 0 ? "." + sender : "";
            if (r.Stages is { } st)
            {
                for (var i = 0; i < StageBreakdown.Stages.Length; i++)
                {
                    Bench($"raft_stage_ms.{StageBreakdown.Stages[i]}.{p}{suffix}", st.MeanMs[i], "ms");
                }
                Bench($"raft_stage_writes.{p}{suffix}", st.Writes, "count");
            }
        }
    });
}

if (only is null or "commit")
{
    await InTempDir("bench", async dir =>
    {
        Bench("raft_baseline_fsync_per_s", InProcessCluster.MeasureFsyncRate(dir, quick ? 1 : 3), "ops/s");
        foreach (var p in proposerCounts)
        {
            // Three node processes over the HTTP/2 transport on loopback, fsync on. The headline figures use AsyncLeaderAppend
            // (the leader's appends leave before its own fsync) and flush each loop round's messages on the loop thread
            // (CallerFlushes). Baselines, run alternately so load drifts hit all alike: `_syncappend` persists before sending
            // anything; `_httpclient` sends through the transport's HttpClient tasks (the sender before CallerFlushes).
            foreach (var variant in new[] { "syncappend", "httpclient", "" })
            {
                var hostArgs = variant switch
                {
                    "syncappend" => "",
                    "httpclient" => "--async-append --httpclient",
                    _ => "--async-append",
                };
                var r = await ProcessThroughput.RunAsync(Path.Combine(dir, $"proc-p{p}-{variant}"), ProcessCluster.HostDll(), p, TimeSpan.FromSeconds(quick ? 3 : 10), hostArgs);
                var prefix = variant.Length > 0 ? "raft_commit_" + variant : "raft_commit";
                Bench($"{prefix}_per_s.{p}", r.CommitsPerSecond, "ops/s");
                Bench($"{prefix}_p50_ms.{p}", r.P50Ms, "ms");
                Bench($"{prefix}_p99_ms.{p}", r.P99Ms, "ms");
                Bench($"{prefix}_cpu_us_per_op.{p}", r.CpuUsPerOp, "us");
            }
        }
        foreach (var p in proposerCounts)
        {
            // Same, with the three replicas as threads of this process and no transport: the consensus + log ceiling.
            foreach (var asyncAppend in new[] { false, true })
            {
                var r = await InProcessCluster.RunAsync(Path.Combine(dir, $"p{p}-{asyncAppend}"), p, TimeSpan.FromSeconds(quick ? 3 : 10), asyncAppend);
                var prefix = asyncAppend ? "raft_inproc_commit" : "raft_inproc_commit_syncappend";
                Bench($"{prefix}_per_s.{p}", r.CommitsPerSecond, "ops/s");
                Bench($"{prefix}_p50_ms.{p}", r.P50Ms, "ms");
                Bench($"{prefix}_p99_ms.{p}", r.P99Ms, "ms");
            }
        }
    });
}

if (only is null or "logsync")
{
    await InTempDir("logsync", dir =>
    {
        // 32 groups each appending one entry per round: their fsyncs in turn, or one shared durability point.
        var (seq, shared) = SharedLogSync.Measure(dir, 32, TimeSpan.FromSeconds(quick ? 1 : 3));
        Bench("raft_log_group_appends_per_s.fsync_each", seq, "ops/s");
        Bench("raft_log_group_appends_per_s.sync_all", shared, "ops/s");
        return Task.CompletedTask;
    });
}

if (only is null or "failover")
{
    await InTempDir("failover", async dir =>
    {
        var rounds = quick ? 2 : 5;
        var total = 0.0;
        for (var r = 0; r < rounds; r++)
        {
            total += await Failover.MeasureAsync(Path.Combine(dir, "r" + r), ProcessCluster.HostDll());
        }
        Bench("raft_failover_s", total / rounds, "s");
    });
}

if (only is null or "idle")
{
    // 10,000 three-voter groups per node; the baseline (no quiescence: a heartbeat round per group per tick) runs first.
    var (cpu0, mb0) = IdleGroups.Measure(10_000, TimeSpan.FromSeconds(quick ? 5 : 15), quiesce: false);
    Bench("raft_idle_groups_noquiesce_cpu_pct", cpu0, "%");
    Bench("raft_idle_groups_noquiesce_mb", mb0, "MB");
    var (cpu, mb) = IdleGroups.Measure(10_000, TimeSpan.FromSeconds(quick ? 5 : 15), quiesce: true);
    Bench("raft_idle_groups_cpu_pct", cpu, "%");
    Bench("raft_idle_groups_mb", mb, "MB");
}

return 0;

// A scratch directory for one part of the run, removed afterwards whatever happens.
static async Task InTempDir(string name, Func<string, Task> body)
{
    var dir = Path.Combine(Path.GetTempPath(), $"kdb-raft-{name}-{Environment.ProcessId}");
    try
    {
        await body(dir);
    }
    finally
    {
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
