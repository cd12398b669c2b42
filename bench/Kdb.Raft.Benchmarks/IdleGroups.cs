using System.Diagnostics;

namespace Kdb.Raft.Benchmarks;

/// <summary>What idle groups cost: three member nodes in this process, each holding one replica of every group (three voters per group),
/// ticked every 100 ms; messages pass through an in-memory queue (no transport), Readies are drained (nothing to persist when idle).
/// The figures are per node: CPU time and managed memory of all three divided by three.</summary>
internal static class IdleGroups
{
    private const int Members = 3;

    public static (double CpuPct, double Mb) Measure(int groups, TimeSpan duration, bool quiesce)
    {
        GC.Collect();
        var baseMem = GC.GetTotalMemory(forceFullCollection: true);
        var nodes = new IRaftNode[Members, groups];
        for (var g = 0; g < groups; g++)
        {
            for (var m = 0; m < Members; m++)
            {
                nodes[m, g] = RaftNodeFactory.Create(new RaftConfig
                {
                    Id = (ulong)m + 1,
                    GroupId = (ulong)g + 1,
                    BootstrapVoters = [1, 2, 3],
                    RandomSeed = (ulong)g,
                    QuiesceAfterTicks = quiesce ? 10 : 0,
                });
            }
        }
        var queue = new Queue<Message>();
        for (var g = 0; g < groups; g++)
        {
            nodes[g % Members, g].Campaign();
        }
        Pump(nodes, queue);
        // Let every group commit its leader's first entry and (when on) go quiet, so the measured phase is steady state.
        for (var t = 0; t < 15; t++)
        {
            TickAll(nodes, queue);
        }
        var proc = Process.GetCurrentProcess();
        var cpu0 = proc.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        var next = TimeSpan.Zero;
        while (sw.Elapsed < duration)
        {
            TickAll(nodes, queue);
            next += TimeSpan.FromMilliseconds(100);
            var wait = next - sw.Elapsed;
            if (wait > TimeSpan.Zero)
            {
                Thread.Sleep(wait);
            }
        }
        proc.Refresh();
        var cpu = (proc.TotalProcessorTime - cpu0).TotalMilliseconds / sw.Elapsed.TotalMilliseconds * 100 / Members;
        var mem = GC.GetTotalMemory(forceFullCollection: true) - baseMem;
        GC.KeepAlive(nodes);
        return (cpu, mem / (1024.0 * 1024.0) / Members);
    }

    private static void TickAll(IRaftNode[,] nodes, Queue<Message> queue)
    {
        var touched = new List<IRaftNode>();
        foreach (var n in nodes)
        {
            // A quiesced replica's tick does nothing: the host skips it, and looks for output only where it gave input.
            if (!n.IsQuiesced)
            {
                n.Tick();
                touched.Add(n);
            }
        }
        Pump(nodes, queue, touched);
    }

    private static void Pump(IRaftNode[,] nodes, Queue<Message> queue, List<IRaftNode>? touched = null)
    {
        if (touched is null)
        {
            touched = [];
            foreach (var n in nodes)
            {
                touched.Add(n);
            }
        }
        while (touched.Count > 0)
        {
            foreach (var n in touched)
            {
                while (n.HasReady)
                {
                    var rd = n.GetReady();
                    foreach (var m in rd.Messages)
                    {
                        queue.Enqueue(m);
                    }
                    n.Advance(rd);
                }
            }
            touched.Clear();
            while (queue.TryDequeue(out var m))
            {
                var target = nodes[(int)m.To - 1, (int)m.GroupId - 1];
                target.Step(m);
                touched.Add(target);
            }
        }
    }
}
