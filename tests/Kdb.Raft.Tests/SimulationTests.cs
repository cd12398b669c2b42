using System.Collections.Concurrent;
using System.Globalization;
using Kdb.Raft.Tests.Simulation;
using Xunit.Abstractions;

namespace Kdb.Raft.Tests;

/// <summary>Every named fault scenario over many seeds. Seeds per scenario: KDB_RAFT_SEEDS, or 2,000 with KDB_SOAK=1, else 150 (2,100 in all).
/// A failure prints the one-line command that replays its seed.</summary>
public sealed class SimulationTests(ITestOutputHelper output)
{
    public static TheoryData<string> Scenarios()
    {
        var data = new TheoryData<string>();
        foreach (var s in Scenario.All)
        {
            data.Add(s.Name);
        }
        return data;
    }

    internal static int SeedsPerScenario()
    {
        var env = Environment.GetEnvironmentVariable("KDB_RAFT_SEEDS");
        if (!string.IsNullOrEmpty(env))
        {
            return int.Parse(env, CultureInfo.InvariantCulture);
        }
        return Environment.GetEnvironmentVariable("KDB_SOAK") == "1" ? 2000 : 150;
    }

    [Theory]
    [MemberData(nameof(Scenarios))]
    public void Scenario_ManySeeds_NoSafetyOrLinearizabilityViolation(string name)
    {
        var scenario = Scenario.Get(name);
        var seeds = SeedsPerScenario();
        var failures = new ConcurrentBag<string>();
        var results = new ConcurrentBag<SimResult>();
        Parallel.For(1, seeds + 1, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount) }, seed =>
        {
            try
            {
                results.Add(new Simulator(scenario, seed).Run());
            }
            catch (Exception ex)
            {
                failures.Add($"seed {seed}: {ex.GetType().Name}: {ex.Message}\n  replay: {Simulator.ReplayCommand(name, seed)}\n{ex.StackTrace}");
            }
        });
        long ops = 0, completed = 0, messages = 0, checks = 0, crashes = 0, snapshots = 0, confChanges = 0, leaders = 0, reads = 0, stalls = 0, quiescedMs = 0;
        long promotions = 0, leaderRemovals = 0, midChangeCrashes = 0;
        ulong maxTerm = 0;
        foreach (var r in results)
        {
            ops += r.Operations;
            completed += r.Completed;
            messages += r.Messages;
            checks += r.Checks;
            crashes += r.Crashes;
            snapshots += r.SnapshotsInstalled;
            confChanges += r.ConfChangesApplied;
            leaders += r.LeaderChanges;
            reads += r.ReadsServed;
            stalls += r.Stalls;
            quiescedMs += r.QuiescedNodeMs;
            promotions += r.Promotions;
            leaderRemovals += r.LeaderRemovals;
            midChangeCrashes += r.MidChangeCrashes;
            maxTerm = Math.Max(maxTerm, r.MaxTerm);
        }
        output.WriteLine($"{name}: {seeds} seeds, {ops} ops ({completed} completed), {messages} messages, {checks} invariant checks, {crashes} crashes, " +
            $"max term {maxTerm}, {leaders} terms with a leader, {snapshots} snapshots installed, {confChanges} membership changes, {reads} reads served, " +
            $"{stalls} leader fsync stalls with appends out (async append), {quiescedMs} quiesced node-ms, " +
            $"{promotions} learner promotions, {leaderRemovals} removals of the leader, {midChangeCrashes} crashes mid-change");
        var sorted = failures.OrderBy(f => f, StringComparer.Ordinal).ToList();
        foreach (var f in sorted.Take(5))
        {
            output.WriteLine(f);
        }
        Assert.True(sorted.Count == 0, $"{sorted.Count} of {seeds} seeds failed; first: {sorted.FirstOrDefault()}");
        // Progress: the runs did real work (a stalled cluster would also be "safe").
        Assert.True(completed > seeds, $"only {completed} operations completed over {seeds} seeds");
        Assert.True(reads > 0, "no read was served");
        // Each scenario must exercise what it is named after.
        if (scenario.FarBehind)
        {
            Assert.True(snapshots >= seeds / 2, $"only {snapshots} snapshot installs over {seeds} seeds");
        }
        if (scenario.Membership)
        {
            Assert.True(confChanges >= seeds, $"only {confChanges} membership changes over {seeds} seeds");
            // Add (learner, then promotion once caught up), remove, replace the leader, each with crashes in the middle.
            Assert.True(promotions >= seeds / 2, $"only {promotions} learner promotions over {seeds} seeds");
            Assert.True(leaderRemovals >= seeds / 10, $"only {leaderRemovals} removals of the leader over {seeds} seeds");
            Assert.True(midChangeCrashes >= seeds / 4, $"only {midChangeCrashes} crashes mid-change over {seeds} seeds");
        }
        if (scenario.CrashLeader || scenario.CrashAny || scenario.CrashPointRate > 0)
        {
            Assert.True(crashes >= seeds, $"only {crashes} crashes over {seeds} seeds");
        }
        // Every scenario runs async append and quiescence on part of its seeds (all of them for the dedicated scenarios): both must really happen.
        if (seeds >= 4)
        {
            Assert.True(stalls >= seeds / 4, $"only {stalls} async-append fsync stalls over {seeds} seeds");
            Assert.True(quiescedMs >= seeds, $"only {quiescedMs} quiesced node-ms over {seeds} seeds");
        }
        if (scenario.Transfers || scenario.CrashLeader || scenario.Partitions == PartitionMode.LeaderMinority)
        {
            Assert.True(leaders >= 2 * seeds, $"only {leaders} leader terms over {seeds} seeds");
        }
    }

    /// <summary>Replays one seed: KDB_RAFT_SCENARIO=name KDB_RAFT_SEED=n. Without them it replays seed 1 of the first scenario.</summary>
    [Fact]
    public void Replay_OneSeed_FromEnvironment()
    {
        var name = Environment.GetEnvironmentVariable("KDB_RAFT_SCENARIO") ?? Scenario.All[0].Name;
        var seed = int.Parse(Environment.GetEnvironmentVariable("KDB_RAFT_SEED") ?? "1", CultureInfo.InvariantCulture);
        var r = new Simulator(Scenario.Get(name), seed).Run();
        output.WriteLine(r.ToString());
        Assert.True(r.Completed > 0);
    }

    [Fact]
    public void Run_SameSeedTwice_IdenticalOutcome()
    {
        var s = Scenario.Get("lossy-network");
        var a = new Simulator(s, 42).Run();
        var b = new Simulator(s, 42).Run();
        Assert.Equal(a, b);
    }
}

/// <summary>The checkers are only worth something if they catch bugs: inject known bugs into the system under test and expect failures.</summary>
public sealed class SimulationSelfTests(ITestOutputHelper output)
{
    private int CountFailures(Scenario scenario, int seeds)
    {
        var failures = 0;
        string? first = null;
        for (var seed = 1; seed <= seeds; seed++)
        {
            try
            {
                new Simulator(scenario, seed).Run();
            }
            catch (SafetyViolationException ex)
            {
                failures++;
                first ??= $"seed {seed}: {ex.Message}";
            }
        }
        output.WriteLine($"{scenario.Name}: {failures}/{seeds} seeds caught; first: {first}");
        return failures;
    }

    [Fact]
    public void Simulator_HostSkipsFsync_ViolationDetected()
    {
        var s = Scenario.Get("crash-torn-tail") with { Name = "unsafe-no-fsync", UnsafeSkipFsync = true, FaultEveryMs = 150 };
        Assert.True(CountFailures(s, 8) > 0);
    }

    [Fact]
    public void Simulator_HostSendsEveryMessageBeforePersisting_ViolationDetected()
    {
        // Only a leader's appends may precede its fsync; acknowledgements and votes sent early are caught.
        var s = Scenario.Get("async-append-leader-crash") with { Name = "unsafe-all-early", UnsafeSendAllEarly = true, CrashLeader = false, CrashAny = true, StallCrashRate = 0.1 };
        Assert.True(CountFailures(s, 12) > 0);
    }

    [Fact]
    public void Simulator_LeaseLongerThanElectionTimeout_StaleReadDetected()
    {
        var s = Scenario.Get("lease-read-paused-leader") with { Name = "unsafe-lease", UnsafeLeaseExtraMs = 2000 };
        Assert.True(CountFailures(s, 12) > 0);
    }
}
