using Kdb.Testing.Cluster;
using Npgsql;

namespace Kdb.Cluster.Tests;

/// <summary>Leader leases (<c>Cluster:ReadMode=lease</c>): the leader serves reads from its lease on the session's own thread,
/// without a round through the Raft loop. Its own cluster, since the shared one runs the default ReadIndex mode.</summary>
public sealed class LeaseReadTests : IAsyncLifetime
{
    private readonly ThreeNodeCluster _cluster = new() { ExtraArguments = ["--Cluster:ReadMode=lease"] };

    public Task InitializeAsync() => _cluster.InitializeAsync();

    public Task DisposeAsync() => _cluster.DisposeAsync();

    [Fact]
    public async Task Every_node_reads_each_acknowledged_commit_at_once_also_across_a_leadership_transfer()
    {
        var group = await _cluster.CreateGroupAsync(0x1EA5E);
        var leader = await _cluster.LeaderOfAsync(group);
        var (db, _) = await _cluster.CreateDatabaseAsync(group, leader);
        var connections = new List<NpgsqlConnection>();
        try
        {
            foreach (var node in _cluster.Nodes)
            {
                var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(node, db));
                await conn.OpenAsync();
                connections.Add(conn);
            }
            await using (var create = new NpgsqlCommand("CREATE TABLE reg (id int PRIMARY KEY, n bigint NOT NULL); INSERT INTO reg VALUES (1, 0)", connections[0]))
            {
                await create.ExecuteNonQueryAsync();
            }
            const int Writes = 45;
            var reads = 0;
            for (var i = 1; i <= Writes; i++)
            {
                if (i == Writes / 2)
                {
                    // Leadership moves while reads keep coming: the old leader's lease ends before the new one serves.
                    var target = _cluster.Nodes.First(n => n != leader);
                    await _cluster.Admin(leader).TransferLeaderAsync(group, target.NodeId);
                    leader = await _cluster.LeaderOfAsync(group, notThis: leader);
                }
                await using (var write = new NpgsqlCommand($"UPDATE reg SET n = {i} WHERE id = 1", connections[i % 3]))
                {
                    Assert.Equal(1, await write.ExecuteNonQueryAsync());
                }
                // The write is acknowledged: a read started now on any node (leader by lease, followers by ReadIndex) sees it.
                foreach (var conn in connections)
                {
                    Assert.Equal((long)i, await ReadAsync(conn));
                    reads++;
                }
            }
            Assert.Equal(Writes * 3, reads);
        }
        finally
        {
            foreach (var conn in connections)
            {
                await conn.DisposeAsync();
            }
        }
    }

    private static async Task<long> ReadAsync(NpgsqlConnection conn)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await using var read = new NpgsqlCommand("SELECT n FROM reg WHERE id = 1", conn);
                return (long)(await read.ExecuteScalarAsync())!;
            }
            catch (PostgresException e) when (e.SqlState == "40001" && attempt < 20)
            {
                // No leader for a moment during the transfer: retry, as a client would.
                await Task.Delay(50);
            }
        }
    }
}
