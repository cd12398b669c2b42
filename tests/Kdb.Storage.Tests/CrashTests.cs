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
            var acked = RunChildAndKill(dir.Path, r.Next(150, 900));
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

    private static ulong RunChildAndKill(string dir, int delayMs)
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
        psi.ArgumentList.Add("crash-writer");
        psi.ArgumentList.Add(dir);
        using var p = Process.Start(psi)!;
        ulong last = 0;
        var sawFirst = new ManualResetEventSlim();
        var reader = Task.Run(() =>
        {
            string? line;
            while ((line = p.StandardOutput.ReadLine()) is not null)
            {
                if (line.StartsWith("ack ", StringComparison.Ordinal))
                {
                    Volatile.Write(ref last, ulong.Parse(line.AsSpan(4)));
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
        return Volatile.Read(ref last);
    }
}
