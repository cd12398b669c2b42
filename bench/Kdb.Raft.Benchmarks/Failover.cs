using System.Diagnostics;
using Kdb.Raft.TestHost;

namespace Kdb.Raft.Benchmarks;

/// <summary>Time from SIGKILL of the leader process to the first write acknowledged by a new leader.</summary>
internal static class Failover
{
    public static async Task<double> MeasureAsync(string dir, string hostDll)
    {
        using var cluster = new ProcessCluster(dir, hostDll);
        var sw = Stopwatch.StartNew();
        while (cluster.Leader < 0)
        {
            if (sw.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new TimeoutException("no leader among the node processes within 60 s");
            }
            await Task.Delay(10);
        }
        var leader = cluster.Leader;
        for (var i = 0; i < 50; i++)
        {
            await cluster.RequestAsync(leader, "put", $"{i} {i}", TimeSpan.FromSeconds(10));
        }
        cluster.Kill(leader);
        var killed = Stopwatch.StartNew();
        while (killed.Elapsed < TimeSpan.FromSeconds(60))
        {
            var l = cluster.Leader;
            if (l >= 0 && l != leader && (await cluster.RequestAsync(l, "put", "1000 1", TimeSpan.FromSeconds(2))).StartsWith("ok", StringComparison.Ordinal))
            {
                return killed.Elapsed.TotalSeconds;
            }
            await Task.Delay(5);
        }
        throw new TimeoutException("no write acknowledged within 60 s of killing the leader");
    }
}
