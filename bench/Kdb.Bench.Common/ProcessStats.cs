using System.Globalization;

namespace Kdb.Bench.Common;

/// <summary>What a benchmark reads about the processes it measures, from /proc.</summary>
public static class ProcessStats
{
    /// <summary>
    /// The host process below <paramref name="root"/>: launchers start hosts under setsid and a watchdog shell, so the
    /// host is the descendant that dotnet itself runs with <paramref name="marker"/> (its assembly) on its command line.
    /// </summary>
    public static int FindHost(int root, string marker)
    {
        var pending = new Queue<int>([root]);
        while (pending.TryDequeue(out var pid))
        {
            var cmdline = File.Exists($"/proc/{pid}/cmdline") ? File.ReadAllText($"/proc/{pid}/cmdline") : string.Empty;
            // The wrapper shell's command line names the assembly too; the host is the process that dotnet itself runs.
            if (cmdline.Contains(marker, StringComparison.Ordinal) && cmdline.Split('\0')[0].EndsWith("dotnet", StringComparison.Ordinal))
            {
                return pid;
            }

            foreach (var task in Directory.Exists($"/proc/{pid}/task") ? Directory.GetDirectories($"/proc/{pid}/task") : [])
            {
                var children = Path.Combine(task, "children");
                foreach (var child in File.Exists(children) ? File.ReadAllText(children).Split(' ', StringSplitOptions.RemoveEmptyEntries) : [])
                {
                    pending.Enqueue(int.Parse(child, CultureInfo.InvariantCulture));
                }
            }
        }

        throw new InvalidOperationException($"no process running {marker} below pid {root}");
    }

    /// <summary>User plus system CPU seconds a process has used so far (10 ms ticks).</summary>
    public static double CpuSeconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
    }

    /// <summary>
    /// Waits until the processes together use less than <paramref name="busyFraction"/> of a core over a second (or
    /// <paramref name="limit"/> passes) and returns the time waited: work left over from loading data (compaction,
    /// snapshot packing, a follower catching up) would otherwise be charged to the next timed phase.
    /// </summary>
    public static TimeSpan WaitIdle(IReadOnlyList<int> pids, TimeSpan limit, double busyFraction = 0.05)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        var before = Total(pids);
        while (waited.Elapsed < limit)
        {
            Thread.Sleep(1000);
            var now = Total(pids);
            if (now - before < busyFraction)
            {
                break;
            }

            before = now;
        }

        return waited.Elapsed;
    }

    private static double Total(IReadOnlyList<int> pids)
    {
        var sum = 0.0;
        foreach (var pid in pids)
        {
            sum += CpuSeconds(pid);
        }

        return sum;
    }
}
