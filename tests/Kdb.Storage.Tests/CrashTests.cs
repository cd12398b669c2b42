using System.Diagnostics;

namespace Kdb.Storage.Tests;

/// <summary>A child process writing with fsync per batch is killed with SIGKILL at random moments;
/// after reopen every acknowledged batch must be present and no batch partially applied.</summary>
public sealed class CrashTests
{
    [Fact]
    public void Sigkill_DuringFsyncedWrites_LosesNoAcknowledgedBatch()
    {
        using var dir = new TestDir();
        var rounds = Environment.GetEnvironmentVariable("KDB_SOAK") == "1" ? 40 : 5;
        var seed = Environment.TickCount;
        var r = new Random(seed);
        ulong maxAcked = 0;
        for (var round = 0; round < rounds; round++)
        {
            ulong acked = 0;
            RunChildAndKill(dir.Path, "crash-writer", r.Next(150, 900), a => Volatile.Write(ref acked, ulong.Parse(a)));
            maxAcked = Math.Max(maxAcked, acked);
            using var e = KvEngine.Open(dir.Path);
            var counts = new Dictionary<ulong, int>();
            foreach (var kv in e.Scan([], null))
            {
                var id = ulong.Parse(Keys.S(kv.Key).AsSpan(1, 10));
                counts[id] = counts.GetValueOrDefault(id) + 1;
            }
            for (ulong id = 1; id <= maxAcked; id++)
            {
                Assert.True(counts.ContainsKey(id), $"seed={seed} round={round}: acknowledged batch {id} lost");
            }
            foreach (var (id, n) in counts)
            {
                Assert.True(n == CrashWriter.BatchSize(id), $"seed={seed} round={round}: batch {id} partially applied ({n} keys)");
            }
            Assert.True(e.LastAppliedIndex >= maxAcked);
        }
        Assert.True(maxAcked > 0, "the child never acknowledged a batch");
    }

    [Fact]
    public void Sigkill_DuringGroupCommitsOfConcurrentWriters_LosesNoAcknowledgedBatch()
    {
        using var dir = new TestDir();
        var rounds = Environment.GetEnvironmentVariable("KDB_SOAK") == "1" ? 20 : 3;
        var seed = Environment.TickCount;
        var r = new Random(seed);
        var maxAcked = new long[CrashWriter.Writers];
        for (var round = 0; round < rounds; round++)
        {
            RunChildAndKill(dir.Path, "crash-writers", r.Next(150, 900), a =>
            {
                var sp = a.IndexOf(' ', StringComparison.Ordinal);
                var w = int.Parse(a.AsSpan(0, sp));
                var n = long.Parse(a.AsSpan(sp + 1));
                lock (maxAcked)
                {
                    maxAcked[w] = Math.Max(maxAcked[w], n);
                }
            });
            using var e = KvEngine.Open(dir.Path);
            var counts = new Dictionary<(int, long), int>();
            foreach (var kv in e.Scan([], null))
            {
                var parts = Keys.S(kv.Key).Split('/');
                var key = (int.Parse(parts[0].AsSpan(1)), long.Parse(parts[1]));
                counts[key] = counts.GetValueOrDefault(key) + 1;
            }
            for (var w = 0; w < CrashWriter.Writers; w++)
            {
                for (long n = 1; n <= maxAcked[w]; n++)
                {
                    Assert.True(counts.ContainsKey((w, n)), $"seed={seed} round={round}: writer {w}'s acknowledged batch {n} lost");
                }
            }
            foreach (var ((w, n), c) in counts)
            {
                Assert.True(c == CrashWriter.BatchSize((ulong)n), $"seed={seed} round={round}: writer {w}'s batch {n} partially applied ({c} keys)");
            }
        }
        Assert.True(maxAcked.All(m => m > 0), "a child writer never acknowledged a batch");
    }

    private static void RunChildAndKill(string dir, string mode, int delayMs, Action<string> onAck)
    {
        var asm = typeof(CrashWriter).Assembly.Location;
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("exec");
        psi.ArgumentList.Add(asm);
        psi.ArgumentList.Add(mode);
        psi.ArgumentList.Add(dir);
        using var p = Process.Start(psi)!;
        var sawFirst = new ManualResetEventSlim();
        var reader = Task.Run(() =>
        {
            string? line;
            while ((line = p.StandardOutput.ReadLine()) is not null)
            {
                if (line.StartsWith("ack ", StringComparison.Ordinal))
                {
                    onAck(line[4..]);
                    sawFirst.Set();
                }
            }
        });
        var err = p.StandardError.ReadToEndAsync();
        // Kill at a random moment after the writer is running (startup time varies).
        sawFirst.Wait(TimeSpan.FromSeconds(30));
        Thread.Sleep(delayMs);
        p.Kill(); // SIGKILL on Unix
        p.WaitForExit();
        reader.Wait();
        Assert.True(sawFirst.IsSet, "child wrote nothing: " + err.Result);
    }
}
