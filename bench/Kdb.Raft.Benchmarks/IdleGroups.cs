using System.Diagnostics;

namespace Kdb.Raft.Benchmarks;

/// <summary>One host ticking many idle single-voter groups at 100 ms: what idle groups cost in CPU and memory.</summary>
internal static class IdleGroups
{
    public static (double CpuPct, double Mb) Measure(int groups, TimeSpan duration)
    {
        GC.Collect();
        var baseMem = GC.GetTotalMemory(forceFullCollection: true);
        var nodes = new IRaftNode[groups];
        for (var g = 0; g < groups; g++)
        {
            nodes[g] = RaftNodeFactory.Create(new RaftConfig { Id = 1, GroupId = (ulong)g + 1, BootstrapVoters = [1], RandomSeed = (ulong)g });
        }
        // Elect every group and drain its first Ready so the measured phase is steady state.
        for (var t = 0; t < 25; t++)
        {
            foreach (var n in nodes)
            {
                n.Tick();
                if (n.HasReady)
                {
                    n.Advance(n.GetReady());
                }
            }
        }
        var proc = Process.GetCurrentProcess();
        var cpu0 = proc.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        var next = TimeSpan.Zero;
        while (sw.Elapsed < duration)
        {
            foreach (var n in nodes)
            {
                n.Tick();
                if (n.HasReady)
                {
                    n.Advance(n.GetReady());
                }
            }
            next += TimeSpan.FromMilliseconds(100);
            var wait = next - sw.Elapsed;
            if (wait > TimeSpan.Zero)
            {
                Thread.Sleep(wait);
            }
        }
        proc.Refresh();
        var cpu = (proc.TotalProcessorTime - cpu0).TotalMilliseconds / sw.Elapsed.TotalMilliseconds * 100;
        var mem = GC.GetTotalMemory(forceFullCollection: true) - baseMem;
        GC.KeepAlive(nodes);
        return (cpu, mem / (1024.0 * 1024.0));
    }
}
