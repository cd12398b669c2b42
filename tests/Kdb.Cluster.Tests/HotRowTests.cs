using System.Collections.Concurrent;
using Kdb.Testing.Cluster;
using Npgsql;

namespace Kdb.Cluster.Tests;

/// <summary>
/// Row locks on a real three-node group through pgwire. The lock table is the node's: read-write sessions on the
/// leader (where the proxy sends them) queue on a hot row instead of failing with 40001; sessions on followers run
/// their transactions there and forward only the commit, so across nodes commit validation alone orders them.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class HotRowTests(ThreeNodeCluster cluster)
{
    [Fact]
    public async Task Transactions_updating_one_row_on_the_leader_wait_instead_of_failing_and_from_every_node_the_counter_matches_the_commits()
    {
        var group = await cluster.CreateGroupAsync((ulong)Random.Shared.NextInt64(1, long.MaxValue));
        var leader = await cluster.LeaderOfAsync(group);
        var (db, _) = await cluster.CreateDatabaseAsync(group, leader);
        await using (var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(cluster.Nodes[0], db)))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("CREATE TABLE branches (id int PRIMARY KEY, bal bigint NOT NULL); CREATE TABLE tellers (id int PRIMARY KEY, bal bigint NOT NULL); INSERT INTO branches VALUES (1, 0); INSERT INTO tellers SELECT g, 0 FROM generate_series(1, 10) g", conn);
            await cmd.ExecuteNonQueryAsync();
        }

        const int Clients = 8;
        const int PerClient = 15;
        var failures = new ConcurrentBag<string>();
        var committed = 0;
        var retried = 0;
        // First every client on the leader, where none may fail; then clients on every node, retrying 40001.
        Task[] Workers(bool onLeader) => Enumerable.Range(0, Clients).Select(client => Task.Run(async () =>
        {
            var random = new Random(client);
            await using var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(onLeader ? leader : cluster.Nodes[client % 3], db));
            await conn.OpenAsync();
            for (var i = 0; i < PerClient; i++)
            {
                try
                {
                    await using var tx = await conn.BeginTransactionAsync();
                    await using var cmd = new NpgsqlCommand($"UPDATE tellers SET bal = bal + 1 WHERE id = {random.Next(1, 11)}; UPDATE branches SET bal = bal + 1 WHERE id = 1", conn, tx);
                    await cmd.ExecuteNonQueryAsync();
                    await tx.CommitAsync();
                    Interlocked.Increment(ref committed);
                }
                catch (PostgresException e) when (!onLeader && e.SqlState == "40001")
                {
                    Interlocked.Increment(ref retried);
                    i--;
                }
                catch (PostgresException e)
                {
                    failures.Add(e.SqlState + " " + e.MessageText);
                }
            }
        })).ToArray();
        await Task.WhenAll(Workers(onLeader: true));
        Assert.Empty(failures);
        await Task.WhenAll(Workers(onLeader: false));

        Assert.Empty(failures);
        Assert.Equal(2 * Clients * PerClient, committed);
        await using var check = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(cluster.Nodes[1], db));
        await check.OpenAsync();
        await using var sum = new NpgsqlCommand("SELECT (SELECT bal FROM branches WHERE id = 1), (SELECT sum(bal) FROM tellers)", check);
        await using var reader = await sum.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal((long)committed, reader.GetInt64(0));
        Assert.Equal((decimal)committed, reader.GetDecimal(1));
    }
}
