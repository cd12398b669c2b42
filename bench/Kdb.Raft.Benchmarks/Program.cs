using System.Diagnostics;
using System.Globalization;
using Kdb.Raft.Benchmarks;
using Kdb.Raft.Tests.Simulation;

if (args.Length > 0 && args[0] == "node")
{
    return await NodeHost.RunAsync(args);
}

var quick = args.Contains("--quick");
var only = args.SkipWhile(a => a != "--only").Skip(1).FirstOrDefault();
static void Bench(string name, double value, string unit) =>
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"BENCH {name} {value:0.###} {unit}"));

if (only is null or "sim")
{
    // Simulator: seeds across every scenario, violations must be 0.
    // --seeds N: a longer soak by hand (seeds per scenario).
    var seedsArg = args.SkipWhile(a => a != "--seeds").Skip(1).FirstOrDefault();
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

if (only is null or "commit")
{
    var dir = Path.Combine(Path.GetTempPath(), "kdb-raft-bench-" + Environment.ProcessId);
    try
    {
        Bench("raft_baseline_fsync_per_s", InProcessCluster.MeasureFsyncRate(dir, quick ? 1 : 3), "ops/s");
        foreach (var p in new[] { 1, 16, 64 })
        {
            // Three node processes over the HTTP/2 transport on loopback, fsync on.
            var r = await ProcessThroughput.RunAsync(Path.Combine(dir, "proc-p" + p), typeof(NodeHost).Assembly.Location, p, TimeSpan.FromSeconds(quick ? 3 : 10));
            Bench($"raft_commit_per_s.{p}", r.CommitsPerSecond, "ops/s");
            Bench($"raft_commit_p50_ms.{p}", r.P50Ms, "ms");
            Bench($"raft_commit_p99_ms.{p}", r.P99Ms, "ms");
        }
        foreach (var p in new[] { 1, 16, 64 })
        {
            // Same, with the three replicas as threads of this process and no transport: the consensus + log ceiling.
            var r = await InProcessCluster.RunAsync(Path.Combine(dir, "p" + p), p, TimeSpan.FromSeconds(quick ? 3 : 10));
            Bench($"raft_inproc_commit_per_s.{p}", r.CommitsPerSecond, "ops/s");
            Bench($"raft_inproc_commit_p50_ms.{p}", r.P50Ms, "ms");
            Bench($"raft_inproc_commit_p99_ms.{p}", r.P99Ms, "ms");
        }
    }
    finally
    {
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}

if (only is null or "failover")
{
    var dir = Path.Combine(Path.GetTempPath(), "kdb-raft-failover-" + Environment.ProcessId);
    try
    {
        var rounds = quick ? 2 : 5;
        var total = 0.0;
        for (var r = 0; r < rounds; r++)
        {
            total += await Failover.MeasureAsync(Path.Combine(dir, "r" + r), typeof(NodeHost).Assembly.Location);
        }
        Bench("raft_failover_s", total / rounds, "s");
    }
    finally
    {
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}

if (only is null or "idle")
{
    var (cpu, mb) = IdleGroups.Measure(10_000, TimeSpan.FromSeconds(quick ? 5 : 15));
    Bench("raft_idle_groups_cpu_pct", cpu, "%");
    Bench("raft_idle_groups_mb", mb, "MB");
}

return 0;
