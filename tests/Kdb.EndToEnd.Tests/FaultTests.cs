using System.Diagnostics;
using System.Net;
using Kdb.Testing.EndToEnd;
using Xunit.Abstractions;

namespace Kdb.EndToEnd.Tests;

/// <summary>
/// A bank workload over several databases through the proxy while services die, stall and restart. Checks
/// correctness only (never timing): every acknowledged transfer is there, no transfer is there in part, tenants stay
/// isolated, single-key histories are linearizable, every database is <c>ready</c> again and every client finishes
/// within its deadline.
/// </summary>
[Collection(CloudCollection.Name)]
public sealed class FaultTests(EndToEndCloud cloud, ITestOutputHelper output)
{
    private static readonly SemaphoreSlim SharedGate = new(1, 1);
    private static List<CloudDatabase>? _shared;
    private static int _nextKey;

    [Fact]
    public async Task Chaos_NodeProxyAndControlPlaneKilledNodeStalled_NoAcknowledgedTransferLostHistoriesLinearizable()
    {
        var databases = await DatabasesAsync();
        await RunUnderLoadAsync(databases, clients: 2, async () =>
        {
            var rounds = CloudCollection.Soak ? 6 : 1;
            for (var round = 0; round < rounds; round++)
            {
                output.WriteLine($"fault round {round + 1} of {rounds}");
                var leader = await cloud.LeaderOfAsync(databases[0].Id, databases[0].Password);
                await leader.KillAsync();
                await Task.Delay(TimeSpan.FromSeconds(3));
                await leader.StartAsync();
                await Task.Delay(TimeSpan.FromSeconds(2));

                await cloud.Proxy.KillAsync();
                await cloud.Proxy.StartAsync();
                await Task.Delay(TimeSpan.FromSeconds(2));

                // Past the leader's lease and the election timeout (1 s): the others elect, then the stalled one wakes as a stale leader.
                var stalled = await cloud.LeaderOfAsync(databases[0].Id, databases[0].Password);
                await stalled.PauseAsync();
                await Task.Delay(TimeSpan.FromSeconds(4));
                await stalled.ResumeAsync();

                // The data plane keeps serving without the control plane; heartbeats and usage resume when it is back.
                await cloud.ControlPlane.KillAsync();
                await cloud.ControlPlane.StartAsync();

                if (CloudCollection.Soak)
                {
                    var follower = cloud.Nodes[round % cloud.Nodes.Count];
                    await follower.KillAsync();
                    await follower.StartAsync();
                }
            }
        });
    }

    [Fact]
    public async Task RollingRestart_EachServiceInTurn_ClientsSeeOnlyReconnects()
    {
        var databases = await DatabasesAsync();
        await RunUnderLoadAsync(databases, clients: 1, async () =>
        {
            foreach (var service in cloud.Services.ToList())
            {
                var started = Stopwatch.GetTimestamp();
                await service.StopAsync();
                var stopped = Stopwatch.GetElapsedTime(started);
                await service.StartAsync();
                var restarted = Stopwatch.GetElapsedTime(started) - stopped;
                output.WriteLine($"{service.Name} stopped in {stopped.TotalSeconds:0.0} s, restarted in {restarted.TotalSeconds:0.0} s");
                if (restarted > TimeSpan.FromSeconds(20))
                {
                    // Not a failure (tests never fail on timing), but worth the log: what the service did while starting.
                    output.WriteLine(service.Log.Length > 3000 ? service.Log[^3000..] : service.Log);
                }
                if (cloud.Nodes.Contains(service))
                {
                    await cloud.WaitForAliveNodesAsync(cloud.Nodes.Count);
                }
                await Task.Delay(TimeSpan.FromSeconds(1));
            }
        });
    }

    /// <summary>
    /// Three databases in two orgs, set up for the bank workload through the proxy; created once and shared by the fault
    /// tests (each checks the whole ledger, so the other test's transfers are checked again).
    /// </summary>
    private async Task<List<CloudDatabase>> DatabasesAsync()
    {
        await SharedGate.WaitAsync();
        try
        {
            if (_shared is null)
            {
                var first = await cloud.UserAsync("bank-a");
                var second = await cloud.UserAsync("bank-b");
                _shared =
                [
                    await cloud.CreateReadyDatabaseAsync(first.Token, first.OrgId, "bank1"),
                    await cloud.CreateReadyDatabaseAsync(first.Token, first.OrgId, "bank2"),
                    await cloud.CreateReadyDatabaseAsync(second.Token, second.OrgId, "bank3"),
                ];
            }
            return _shared;
        }
        finally
        {
            SharedGate.Release();
        }
    }

    /// <summary>
    /// Runs the bank workload and the single-key register workload on every database while <paramref name="faults"/>
    /// runs, waits until each database acknowledges transfers again after the last fault, stops the clients (they must
    /// all end within a deadline), then checks every promise: ledgers, linearizable histories, isolation, readiness,
    /// and no client error beyond reconnects (a fault never gives a wrong answer such as a refused correct password).
    /// </summary>
    private async Task RunUnderLoadAsync(List<CloudDatabase> databases, int clients, Func<Task> faults)
    {
        var workloads = databases.Select(d => new BankWorkload(cloud.ProxyConnectionString(d.Id, d.Password), d.Id)).ToList();
        var registers = databases.Select(d => new RegisterWorkload(cloud.ProxyConnectionString(d.Id, d.Password), d.Id, Interlocked.Add(ref _nextKey, RegisterWorkload.Keys))).ToList();
        foreach (var w in workloads)
        {
            await w.SetUpAsync();
        }
        foreach (var r in registers)
        {
            await r.SetUpAsync();
        }
        using var stop = new CancellationTokenSource();
        var running = Task.WhenAll(workloads.Select(w => w.RunAsync(clients, stop.Token)).Concat(registers.Select(r => r.RunAsync(2, stop.Token))));
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(2));
            await faults();
            // Every database makes progress again after the faults.
            var after = workloads.Select(w => w.Acknowledged).ToList();
            var deadline = DateTime.UtcNow.AddSeconds(90);
            while (workloads.Select((w, i) => w.Acknowledged > after[i] + 2).Any(progressed => !progressed))
            {
                Assert.True(DateTime.UtcNow < deadline, "no progress after the faults: " + string.Join(", ", workloads.Select(w => $"{w.DatabaseId} {w.Acknowledged} acked, {w.Retries} retries")) + "\n" + cloud.Logs);
                await Task.Delay(200);
            }
        }
        finally
        {
            await stop.CancelAsync();
            // Nothing stuck: every client ends within a command timeout (30 s) plus a reconnect.
            await running.WaitAsync(TimeSpan.FromSeconds(90));
        }

        var checks = new List<BankCheck>();
        foreach (var w in workloads)
        {
            checks.Add(await w.VerifyAsync());
            output.WriteLine($"{checks[^1]}; {w.Ambiguous} ambiguous, {w.Retries} retries; unexpected: {string.Join("; ", w.UnexpectedErrors.Distinct().Take(5))}");
        }
        Assert.True(checks.All(c => c.Problems.Count == 0 && c.Acknowledged > 0), string.Join("\n", checks));

        foreach (var r in registers)
        {
            var started = Stopwatch.GetTimestamp();
            var result = r.Check();
            output.WriteLine($"{r.DatabaseId}: {r.Operations} register operations ({r.UnknownOutcomes} unknown outcomes, {r.Exercised.Swapped} swaps, {r.Exercised.ReadsOfWrites} reads of writes) checked in {Stopwatch.GetElapsedTime(started).TotalSeconds:0.00} s: {(result.Ok ? "linearizable" : result.Detail)}");
            Assert.True(r.Exercised.Swapped > 0 && r.Exercised.ReadsOfWrites > 0, $"{r.DatabaseId}: the register workload did not get going ({r.Operations} operations)");
            Assert.True(result.Ok, $"{r.DatabaseId}: key {result.FailedKey}: {result.Detail}");
        }

        var unexpected = workloads.SelectMany(w => w.UnexpectedErrors).Concat(registers.SelectMany(r => r.UnexpectedErrors)).ToList();
        Assert.True(unexpected.Count == 0, "clients saw more than reconnects: " + string.Join("; ", unexpected.Distinct().Take(20)));

        var violations = await IsolationProbe.FindViolationsAsync(cloud, databases, [.. BankWorkload.Tables, RegisterWorkload.Table]);
        Assert.True(violations.Count == 0, string.Join("\n", violations));
        foreach (var d in databases)
        {
            var database = await cloud.WaitForAsync($"/v1/databases/{d.Id}", d.Token, x => x.GetProperty("status").GetString() == "ready");
            Assert.Equal("ready", database.GetProperty("status").GetString());
        }
        var (status, _) = await cloud.SendAsync(HttpMethod.Get, $"/v1/databases/{databases[2].Id}", databases[0].Token);
        Assert.Equal(HttpStatusCode.NotFound, status);
        output.WriteLine($"{violations.Count} isolation violations; all {databases.Count} databases ready again");
    }
}
