using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Kdb.Raft.TestHost;
using Xunit.Abstractions;

namespace Kdb.Raft.Tests;

/// <summary>Three node processes (KV over the real transport and fsynced log) on loopback; SIGKILL the leader under a write load.</summary>
public sealed class RealProcessTests(ITestOutputHelper output)
{
    private static async Task<int> WaitForLeaderAsync(ProcessCluster cluster, int notThis)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < TimeSpan.FromSeconds(120))
        {
            var l = cluster.Leader;
            if (l >= 0 && l != notThis)
            {
                return l;
            }
            await Task.Delay(10);
        }
        throw new TimeoutException("no leader within 120 s");
    }

    [Fact]
    public async Task SigkillLeader_UnderWriteLoad_EveryAcknowledgedWriteReadableFromNewLeader()
    {
        var dll = ProcessCluster.HostDll();
        Assert.True(File.Exists(dll), $"node host not built at {dll}");
        var dir = Path.Combine(Path.GetTempPath(), "kdb-raft-procs-" + Guid.NewGuid().ToString("N"));
        try
        {
            // The leader fsyncs in parallel with replication (AsyncLeaderAppend): the mode whose crash safety matters most here.
            using var cluster = new ProcessCluster(dir, dll, "--async-append");
            var first = await WaitForLeaderAsync(cluster, -1);
            var acked = new ConcurrentDictionary<int, int>();
            var next = 0;
            var stopAt = Stopwatch.StartNew();
            var killed = false;
            long killedAtMs = -1;
            async Task WriterAsync()
            {
                // Writers run until a second after the kill (or a generous bound), however slow the machine:
                // the test asserts what was acknowledged, never how fast.
                while (!(Volatile.Read(ref killedAtMs) is var k && k >= 0 && stopAt.ElapsedMilliseconds > k + 1000) && stopAt.Elapsed < TimeSpan.FromSeconds(180))
                {
                    var key = Interlocked.Increment(ref next);
                    var leader = cluster.Leader;
                    if (leader < 0)
                    {
                        await Task.Delay(5);
                        continue;
                    }
                    var reply = await cluster.RequestAsync(leader, "put", string.Create(CultureInfo.InvariantCulture, $"{key} {key * 7}"), TimeSpan.FromSeconds(5));
                    if (reply.StartsWith("ok", StringComparison.Ordinal))
                    {
                        acked[key] = key * 7;
                    }
                }
            }
            var writers = Enumerable.Range(0, 4).Select(_ => Task.Run(WriterAsync)).ToArray();
            while (acked.Count < 50 && stopAt.Elapsed < TimeSpan.FromSeconds(120))
            {
                await Task.Delay(5);
            }
            cluster.Kill(first);
            killed = true;
            Volatile.Write(ref killedAtMs, stopAt.ElapsedMilliseconds);
            await Task.WhenAll(writers);
            var leaderNow = await WaitForLeaderAsync(cluster, first);
            output.WriteLine($"killed node {first + 1}; {acked.Count} writes acknowledged; new leader node {leaderNow + 1}");
            Assert.True(killed);
            Assert.True(acked.Count >= 50);
            foreach (var (key, value) in acked)
            {
                string reply;
                var sw = Stopwatch.StartNew();
                do
                {
                    reply = await cluster.RequestAsync(cluster.Leader < 0 ? leaderNow : cluster.Leader, "get", key.ToString(CultureInfo.InvariantCulture), TimeSpan.FromSeconds(5));
                }
                while (!reply.StartsWith("val", StringComparison.Ordinal) && sw.Elapsed < TimeSpan.FromSeconds(60));
                Assert.Equal($"val {reply.Split(' ')[1]} {value}", reply);
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
}
