using System.Diagnostics;
using Kdb.Raft.Storage;

namespace Kdb.Raft.Benchmarks;

/// <summary>Many groups' appends made durable: one fsync per group in turn (what a host looping over groups does with
/// <c>Append(sync: true)</c>) against one shared <see cref="RaftLogStore.SyncAll"/> per round. Real disk.</summary>
internal static class SharedLogSync
{
    public static (double SequentialPerS, double SharedPerS) Measure(string dir, int groups, TimeSpan duration)
    {
        var stores = new IRaftLogStore[groups];
        for (var g = 0; g < groups; g++)
        {
            stores[g] = RaftLogStore.Open(PhysicalRaftFileSystem.Instance, Path.Combine(dir, "g" + g));
        }
        try
        {
            ulong index = 0;
            var payload = new byte[100];
            double Run(bool shared)
            {
                var appended = 0L;
                var sw = Stopwatch.StartNew();
                while (sw.Elapsed < duration)
                {
                    index++;
                    var entry = new Entry(1, index, EntryType.Normal, payload);
                    foreach (var s in stores)
                    {
                        s.Append([entry], null, sync: !shared);
                    }
                    if (shared)
                    {
                        RaftLogStore.SyncAll(stores);
                    }
                    appended += groups;
                }
                return appended / sw.Elapsed.TotalSeconds;
            }
            // Alternate so that drifts of the machine's load hit both sides alike.
            double seq = 0, sharedRate = 0;
            for (var round = 0; round < 2; round++)
            {
                seq += Run(shared: false) / 2;
                sharedRate += Run(shared: true) / 2;
            }
            return (seq, sharedRate);
        }
        finally
        {
            foreach (var s in stores)
            {
                s.Dispose();
            }
        }
    }
}
