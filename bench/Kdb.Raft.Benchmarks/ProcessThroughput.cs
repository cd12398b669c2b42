using System.Diagnostics;
using System.Globalization;
using Kdb.Raft.TestHost;

namespace Kdb.Raft.Benchmarks;

/// <summary>Replicated writes against three node processes on loopback (fsync on): p proposers, each with one write in flight.</summary>
internal static class ProcessThroughput
{
    public static async Task<InProcessCluster.Result> RunAsync(string dir, string hostDll, int proposers, TimeSpan duration, string hostArgs)
    {
        var trace = hostArgs.Contains("--trace", StringComparison.Ordinal);
        using var cluster = new ProcessCluster(dir, hostDll, hostArgs);
        var wait = Stopwatch.StartNew();
        while (cluster.Leader < 0)
        {
            if (wait.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new TimeoutException("no leader among the node processes within 60 s");
            }
            await Task.Delay(10);
        }
        // Writes run from the start, but only those after the warm-up count: freshly started processes spend their first
        // seconds in the JIT (tier-up), which otherwise dominates the CPU per write of a short run.
        const double warmUpSeconds = 2;
        var warmUntil = Stopwatch.GetTimestamp() + (long)(warmUpSeconds * Stopwatch.Frequency);
        var endAt = warmUntil + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var latencies = new List<double>[proposers];
        var next = 0;
        var tasks = new Task[proposers];
        for (var p = 0; p < proposers; p++)
        {
            var mine = latencies[p] = new List<double>(100_000);
            tasks[p] = Task.Run(async () =>
            {
                while (Stopwatch.GetTimestamp() < endAt)
                {
                    var key = Interlocked.Increment(ref next);
                    var start = Stopwatch.GetTimestamp();
                    var current = cluster.Leader;
                    if (current < 0)
                    {
                        await Task.Delay(5);
                        continue;
                    }
                    var reply = await cluster.RequestAsync(current, "put", string.Create(CultureInfo.InvariantCulture, $"{key % 10_000} {key}"), TimeSpan.FromSeconds(10));
                    var end = Stopwatch.GetTimestamp();
                    if (!reply.StartsWith("ok", StringComparison.Ordinal))
                    {
                        await Task.Delay(5);
                    }
                    else if (start >= warmUntil && end <= endAt)
                    {
                        mine.Add((end - start) * 1000.0 / Stopwatch.Frequency);
                    }
                }
            });
        }
        var cpuAtWarm = TimeSpan.Zero;
        var cpuProbe = Task.Run(async () =>
        {
            await Task.Delay(TimeSpan.FromSeconds(warmUpSeconds));
            cpuAtWarm = cluster.CpuTime();
        });
        await Task.WhenAll(tasks);
        await cpuProbe;
        var cpuUsed = cluster.CpuTime() - cpuAtWarm;
        var all = latencies.SelectMany(l => l).OrderBy(x => x).ToArray();
        (double[], int)? stages = null;
        if (trace)
        {
            var (lines, client) = await cluster.CollectTraceAsync(TimeSpan.FromSeconds(60));
            stages = StageBreakdown.Analyse(lines, client);
        }
        return all.Length == 0
            ? new InProcessCluster.Result(0, 0, 0)
            : new InProcessCluster.Result(all.Length / duration.TotalSeconds, all[all.Length / 2], all[Math.Min(all.Length - 1, (int)(all.Length * 0.99))])
            {
                // CPU of the three node processes per acknowledged write: a figure the machine's other load barely moves.
                CpuUsPerOp = cpuUsed.TotalMicroseconds / all.Length,
                Stages = stages,
            };
    }
}
