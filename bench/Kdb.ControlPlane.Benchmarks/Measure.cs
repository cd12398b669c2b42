using System.Diagnostics;

namespace Kdb.ControlPlane.Benchmarks;

/// <summary>Latency percentiles and closed-loop throughput; every timed operation checks its own answer.</summary>
internal static class Measure
{
    /// <summary>Runs <paramref name="warmup"/> untimed then <paramref name="count"/> timed calls one after another; returns milliseconds per call.</summary>
    public static async Task<double[]> LatenciesAsync(int warmup, int count, Func<int, Task> operation)
    {
        for (var i = 0; i < warmup; i++)
        {
            await operation(i);
        }

        var samples = new double[count];
        for (var i = 0; i < count; i++)
        {
            var start = Stopwatch.GetTimestamp();
            await operation(warmup + i);
            samples[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }

        return samples;
    }

    /// <summary>Nearest-rank percentile.</summary>
    public static double Percentile(IReadOnlyList<double> samples, double p)
    {
        var sorted = new double[samples.Count];
        for (var i = 0; i < sorted.Length; i++)
        {
            sorted[i] = samples[i];
        }

        Array.Sort(sorted);
        var rank = (int)Math.Ceiling(p / 100.0 * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }

    /// <summary>
    /// <paramref name="workers"/> closed loops, each calling <paramref name="operation"/> (which returns how many
    /// units it completed) for <paramref name="warmup"/> untimed and then <paramref name="duration"/> timed;
    /// returns units per second over the timed window, and the CPU milliseconds (this process and the private
    /// PostgreSQL, see <see cref="CpuMeter"/>) spent per unit in it.
    /// </summary>
    public static async Task<Throughput> ThroughputAsync(int workers, TimeSpan warmup, TimeSpan duration, Func<int, Task<int>> operation)
    {
        long units = 0;
        var timing = false;
        var stop = false;
        async Task LoopAsync(int worker)
        {
            while (!Volatile.Read(ref stop))
            {
                var done = await operation(worker);
                if (Volatile.Read(ref timing))
                {
                    Interlocked.Add(ref units, done);
                }
            }
        }

        var loops = new Task[workers];
        for (var w = 0; w < workers; w++)
        {
            var worker = w;
            loops[w] = Task.Run(() => LoopAsync(worker));
        }

        await Task.Delay(warmup);
        var cpuStart = CpuMeter.Seconds();
        Volatile.Write(ref timing, true);
        var start = Stopwatch.GetTimestamp();
        await Task.Delay(duration);
        Volatile.Write(ref timing, false);
        var elapsed = Stopwatch.GetElapsedTime(start).TotalSeconds;
        var cpu = CpuMeter.Seconds() - cpuStart;
        var counted = Interlocked.Read(ref units);
        Volatile.Write(ref stop, true);
        await Task.WhenAll(loops);
        return new Throughput(counted / elapsed, counted == 0 ? double.NaN : cpu * 1000 / counted);
    }
}

/// <summary>Units per second, and CPU milliseconds per unit (client, control plane and PostgreSQL together).</summary>
internal readonly record struct Throughput(double PerSecond, double CpuMsPerUnit);
