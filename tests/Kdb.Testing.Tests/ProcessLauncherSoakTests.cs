using System.Globalization;
using System.Text.RegularExpressions;
using Kdb.Testing.Processes;

namespace Kdb.Testing.Tests;

/// <summary>Start/stop cycles: a few in every run, many with KDB_SOAK=1 (<c>./kdb test --soak</c>).</summary>
public sealed class ProcessLauncherSoakTests
{
    private static int Cycles => Environment.GetEnvironmentVariable("KDB_SOAK") == "1" ? 200 : 5;

    [Fact]
    public async Task StartAndDispose_RepeatedCycles_LeaveNoProcessBehind()
    {
        var survivors = new List<int>();
        for (var cycle = 0; cycle < Cycles; cycle++)
        {
            var process = await ProcessLauncher.StartAsync(
                ProcessSpec.Shell("sleep 300 & echo a=$!; sh -c 'sleep 300 & echo b=$!; wait' & wait") with
                {
                    Readiness = Readiness.All(Readiness.LogContains("a="), Readiness.LogContains("b=")),
                    StopGracePeriod = TimeSpan.FromMilliseconds(200),
                });
            var pids = Regex.Matches(process.Log, @"[ab]=(\d+)").Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToList();
            pids.Add(process.ProcessId);
            Assert.Equal(3, pids.Count);

            await process.DisposeAsync();

            foreach (var pid in pids)
            {
                if (!await ProcState.WaitDeadAsync(pid))
                {
                    survivors.Add(pid);
                }
            }
        }

        Assert.Empty(survivors);
    }
}
