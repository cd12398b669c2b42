using System.Collections.Concurrent;
using System.Diagnostics;
using Kdb.Testing.Cluster;
using Npgsql;
using Xunit.Abstractions;

namespace Kdb.Cluster.Tests;

/// <summary>SIGKILL of a group's leader under a transfer workload: nothing acknowledged is lost, clients of the group
/// succeed again, and the restarted node catches up to the same state-machine hash.</summary>
[Collection(ClusterCollection.Name)]
public sealed class FailoverTests(ThreeNodeCluster cluster, ITestOutputHelper output)
{
    [Fact]
    public async Task Killing_the_leader_loses_no_acknowledged_transaction_and_the_restarted_node_catches_up()
    {
        var group = await cluster.CreateGroupAsync((ulong)Random.Shared.NextInt64(1, long.MaxValue));
        var leader = await cluster.LeaderOfAsync(group);
        var (db, _) = await cluster.CreateDatabaseAsync(group, leader);
        await using (var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(leader, db)))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand(
                "CREATE TABLE acct (id int PRIMARY KEY, bal bigint NOT NULL); INSERT INTO acct SELECT g, 1000 FROM generate_series(1, 20) g; " +
                "CREATE TABLE ledger (id bigint PRIMARY KEY, amount int)", conn);
            await cmd.ExecuteNonQueryAsync();
        }

        // A second group led by another node, with a client there: the kill takes one of its followers only, and its
        // client must see no error at all.
        var otherGroup = await cluster.CreateGroupAsync((ulong)Random.Shared.NextInt64(1, long.MaxValue));
        var otherLeader = await cluster.LeaderOfAsync(otherGroup);
        if (otherLeader == leader)
        {
            var target = cluster.Nodes.First(n => n != leader);
            await cluster.Admin(leader).TransferLeaderAsync(otherGroup, target.NodeId);
            var transferDeadline = DateTime.UtcNow.AddSeconds(30);
            while ((otherLeader = await cluster.LeaderOfAsync(otherGroup)) == leader)
            {
                Assert.True(DateTime.UtcNow < transferDeadline, "leadership of the second group did not move");
                await Task.Delay(100);
            }
        }
        var (otherDb, _) = await cluster.CreateDatabaseAsync(otherGroup, otherLeader);
        await using var otherConn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(otherLeader, otherDb) + ";Timeout=5;Command Timeout=30");
        await otherConn.OpenAsync();
        await using (var cmd = new NpgsqlCommand("CREATE TABLE tick (id bigint PRIMARY KEY)", otherConn))
        {
            await cmd.ExecuteNonQueryAsync();
        }
        var otherCommits = new List<long>();
        var acknowledged = new ConcurrentBag<long>();
        var errors = new ConcurrentBag<string>();
        long nextId = 0;
        var killedAt = 0L;
        var firstCommitAfterKill = 0L;
        var clock = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource();
        var workers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            var random = new Random(w);
            var target = w % 3;
            while (!stop.IsCancellationRequested)
            {
                var node = cluster.Nodes[target];
                if (!node.Running)
                {
                    target = (target + 1) % 3;
                    continue;
                }
                try
                {
                    await using var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(node, db) + ";Timeout=5;Command Timeout=15");
                    await conn.OpenAsync(stop.Token);
                    while (!stop.IsCancellationRequested)
                    {
                        var id = Interlocked.Increment(ref nextId);
                        var startedAt = clock.ElapsedMilliseconds;
                        var (from, to) = (random.Next(1, 21), random.Next(1, 21));
                        await using var tx = await conn.BeginTransactionAsync(stop.Token);
                        await using var cmd = new NpgsqlCommand(
                            $"UPDATE acct SET bal = bal - 3 WHERE id = {from}; UPDATE acct SET bal = bal + 3 WHERE id = {to}; INSERT INTO ledger VALUES ({id}, 3)", conn, tx);
                        try
                        {
                            await cmd.ExecuteNonQueryAsync(stop.Token);
                            await tx.CommitAsync(stop.Token);
                            acknowledged.Add(id);
                            var kill = Volatile.Read(ref killedAt);
                            if (kill != 0 && startedAt > kill)
                            {
                                Interlocked.CompareExchange(ref firstCommitAfterKill, clock.ElapsedMilliseconds, 0);
                            }
                        }
                        catch (PostgresException e) when (e.SqlState is "40001" or "40P01" or "08007")
                        {
                            // Retryable conflict (transfers in random order can deadlock on row locks), or an outcome unknown after the leader died: not acknowledged.
                        }
                    }
                }
                catch (Exception e) when (e is NpgsqlException or OperationCanceledException or IOException or TimeoutException)
                {
                    if (!stop.IsCancellationRequested)
                    {
                        errors.Add(e.GetType().Name + ": " + e.Message);
                        target = (target + 1) % 3;
                        await Task.Delay(50);
                    }
                }
            }
        })).ToArray();
        // Any exception fails the test: this group lost only a follower.
        var otherWorker = Task.Run(async () =>
        {
            for (long i = 1; !stop.IsCancellationRequested; i++)
            {
                await using var cmd = new NpgsqlCommand($"INSERT INTO tick VALUES ({i})", otherConn);
                await cmd.ExecuteNonQueryAsync();
                otherCommits.Add(clock.ElapsedMilliseconds);
            }
        });

        await Task.Delay(2000);
        var before = acknowledged.Count;
        Assert.True(before > 0, "no transfer committed before the kill: " + string.Join("; ", errors.Take(5)));
        Volatile.Write(ref killedAt, clock.ElapsedMilliseconds);
        await leader.KillAsync();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (Interlocked.Read(ref firstCommitAfterKill) == 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }
        await Task.Delay(1500);
        await stop.CancelAsync();
        await Task.WhenAll(workers);
        await otherWorker;
        Assert.Contains(otherCommits, at => at > killedAt);
        Assert.True(Interlocked.Read(ref firstCommitAfterKill) != 0, "no commit succeeded after the leader was killed: " + string.Join("; ", errors.Take(5)));
        output.WriteLine($"acknowledged {acknowledged.Count} ({before} before the kill); first commit {firstCommitAfterKill - killedAt} ms after the kill; {errors.Count} client errors");

        var survivor = cluster.Nodes.First(n => n.Running);
        await using (var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(survivor, db)))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT sum(bal) FROM acct", conn);
            Assert.Equal(20_000m, await cmd.ExecuteScalarAsync());
            cmd.CommandText = "SELECT id FROM ledger";
            var present = new HashSet<long>();
            await using (var reader = await cmd.ExecuteReaderAsync())
            {
                while (await reader.ReadAsync())
                {
                    present.Add(reader.GetInt64(0));
                }
            }
            Assert.All(acknowledged, id => Assert.Contains(id, present));
            cmd.CommandText = "SELECT count(*) * 3 FROM ledger";
            Assert.True((long)(await cmd.ExecuteScalarAsync())! >= acknowledged.Count * 3L);
        }

        await cluster.RestartAsync(leader);
        var hashDeadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var hashes = new List<(ulong Applied, string Hash)>();
            foreach (var n in cluster.Nodes)
            {
                var h = await cluster.Admin(n).StateHashAsync(group);
                hashes.Add((h.AppliedIndex, h.Sha256));
            }
            if (hashes.Select(h => h.Applied).Distinct().Count() == 1)
            {
                Assert.Single(hashes.Select(h => h.Hash).Distinct());
                break;
            }
            Assert.True(DateTime.UtcNow < hashDeadline, "the restarted node did not catch up: " + string.Join(", ", hashes.Select(h => h.Applied)));
            await Task.Delay(200);
        }
    }
}
