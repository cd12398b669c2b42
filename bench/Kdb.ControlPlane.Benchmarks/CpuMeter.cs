using System.Diagnostics;
using System.Globalization;

namespace Kdb.ControlPlane.Benchmarks;

/// <summary>
/// CPU time used by this process (client and control plane) and its descendants (the private PostgreSQL):
/// what one operation costs in CPU does not depend on how many other programs share the cores, unlike a rate,
/// so it compares runs made under different loads. Linux only (reads /proc); elsewhere only this process.
/// </summary>
internal static class CpuMeter
{
    private static readonly double TicksPerSecond = 100; // USER_HZ on Linux

    /// <summary>CPU seconds so far.</summary>
    public static double Seconds()
    {
        var own = Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
        return own + DescendantTicks(Environment.ProcessId) / TicksPerSecond;
    }

    private static long DescendantTicks(int root)
    {
        if (!Directory.Exists("/proc"))
        {
            return 0;
        }

        var parents = new Dictionary<int, (int Parent, long Ticks)>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            try
            {
                // Fields after the parenthesised command name: state ppid ... utime(14) stime(15) (1-based).
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                var parent = int.Parse(fields[1], CultureInfo.InvariantCulture);
                var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
                parents[pid] = (parent, ticks);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
            {
                // The process ended while being read.
            }
        }

        long total = 0;
        foreach (var (pid, (_, ticks)) in parents)
        {
            if (pid != root && DescendsFrom(pid, root, parents))
            {
                total += ticks;
            }
        }

        return total;
    }

    private static bool DescendsFrom(int pid, int root, Dictionary<int, (int Parent, long Ticks)> parents)
    {
        for (var hops = 0; hops < 64 && parents.TryGetValue(pid, out var entry); hops++)
        {
            if (entry.Parent == root)
            {
                return true;
            }

            pid = entry.Parent;
        }

        return false;
    }
}
