using Npgsql;

namespace Kdb.Node.Tests.Standalone;

/// <summary>Acknowledged data survives a restart of the node process on the same data directory.</summary>
[Collection(StandaloneCollection.Name)]
public sealed class RestartTests
{
    [Fact]
    public async Task Restart_CommittedRowsAndSchema_Survive()
    {
        await using var first = await StandaloneNode.StartAsync();
        await using (var c = await first.OpenAsync("Pooling=false"))
        {
            await using (var ddl = new NpgsqlCommand("CREATE TABLE kept (id int PRIMARY KEY, v text); CREATE INDEX kept_v ON kept (v)", c))
            {
                await ddl.ExecuteNonQueryAsync();
            }

            for (var i = 0; i < 20; i++)
            {
                await using var insert = new NpgsqlCommand("INSERT INTO kept VALUES ($1, $2)", c) { Parameters = { new() { Value = i }, new() { Value = "v" + i } } };
                await insert.ExecuteNonQueryAsync();
            }

            await using var tx = await c.BeginTransactionAsync();
            await using var uncommitted = new NpgsqlCommand("INSERT INTO kept VALUES (100, 'never')", c);
            await uncommitted.ExecuteNonQueryAsync();

            // The process stops with this transaction open: it must not appear after the restart.
            await first.StopAsync();
        }

        await using var second = await first.RestartOnSameDataAsync();
        await using var check = await second.OpenAsync("Pooling=false");
        await using var cmd = new NpgsqlCommand("SELECT count(*), max(id) FROM kept WHERE v LIKE 'v%'", check);
        await using var r = await cmd.ExecuteReaderAsync();
        Assert.True(await r.ReadAsync());
        Assert.Equal(20L, r.GetInt64(0));
        Assert.Equal(19, r.GetInt32(1));
    }
}
