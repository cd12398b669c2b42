using System.Runtime.InteropServices;

namespace Kdb.Storage.Benchmarks;

/// <summary>
/// The calling thread's CPU time. The benchmark machine is shared (load averages of 30–60 on 2 cores
/// are common), so wall time mostly measures how long the thread waited for a core; CPU time counts
/// only the time it ran. Cache pollution by other processes still shows, as it would in production.
/// </summary>
internal static partial class CpuClock
{
    private const int ClockThreadCpuTimeId = 3; // CLOCK_THREAD_CPUTIME_ID on Linux

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Sec;
        public long Nsec;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clockId, out Timespec ts);

    private static readonly bool Available = OperatingSystem.IsLinux() && TryRead(out _);

    private static bool TryRead(out long ns)
    {
        ns = 0;
        try
        {
            if (ClockGetTime(ClockThreadCpuTimeId, out var ts) != 0)
            {
                return false;
            }
            ns = (ts.Sec * 1_000_000_000L) + ts.Nsec;
            return true;
        }
        catch (DllNotFoundException)
        {
            return false;
        }
        catch (EntryPointNotFoundException)
        {
            return false;
        }
    }

    /// <summary>Whether figures are CPU time ("cpu") or, off Linux, wall time ("wall").</summary>
    public static string Kind => Available ? "cpu" : "wall";

    /// <summary>Nanoseconds of this thread's CPU time (wall-clock nanoseconds where unavailable).</summary>
    public static long NowNs()
    {
        if (Available && TryRead(out var ns))
        {
            return ns;
        }
        return (long)(System.Diagnostics.Stopwatch.GetTimestamp() * (1e9 / System.Diagnostics.Stopwatch.Frequency));
    }
}
