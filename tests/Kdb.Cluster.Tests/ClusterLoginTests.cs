using Kdb.Testing.Cluster;
using Npgsql;

namespace Kdb.Cluster.Tests;

/// <summary>
/// A database is ready once its group's leader applied its creation. A client that connects straight to a follower
/// right then must still log in: a follower that has not applied the creation yet catches up before it refuses.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterLoginTests(ThreeNodeCluster cluster)
{
    [Fact]
    public async Task Logins_on_followers_right_after_the_leader_created_the_database_succeed()
    {
        var group = await cluster.CreateGroupAsync((ulong)Random.Shared.NextInt64(1, long.MaxValue));
        var leader = await cluster.LeaderOfAsync(group);
        var followers = cluster.Nodes.Where(n => n != leader).ToArray();
        for (var i = 0; i < 10; i++)
        {
            var (db, _) = await cluster.CreateDatabaseAsync(group, leader, waitForEveryMember: false);
            var answers = await Task.WhenAll(followers.Select(async follower =>
            {
                await using var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(follower, db));
                await conn.OpenAsync();
                await using var cmd = conn.CreateCommand();
                cmd.CommandText = "SELECT current_user";
                return (string?)await cmd.ExecuteScalarAsync();
            }));
            Assert.All(answers, user => Assert.Equal("owner", user));
        }

        // A follower that was down while the database was created knows nothing of it when it comes back.
        var late = followers[0];
        await late.KillAsync();
        var (created, _) = await cluster.CreateDatabaseAsync(group, leader, waitForEveryMember: false);
        await cluster.RestartAsync(late);
        await using (var conn = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(late, created)))
        {
            await conn.OpenAsync();
            await using var cmd = conn.CreateCommand();
            cmd.CommandText = "SELECT current_user";
            Assert.Equal("owner", await cmd.ExecuteScalarAsync());
        }

        // A database that exists nowhere is still refused like a wrong password, after the bounded catch-up.
        await using var missing = new NpgsqlConnection(ThreeNodeCluster.ConnectionString(followers[0], "db_doesnotexist0000"));
        var refused = await Assert.ThrowsAsync<PostgresException>(() => missing.OpenAsync());
        Assert.Equal("28P01", refused.SqlState);
    }
}
