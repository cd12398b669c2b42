using System.Net.Sockets;
using Kdb.Testing.Postgres;
using Npgsql;

namespace Kdb.Testing.Tests;

/// <summary>Starts and stops a server of its own (not the shared one) to check teardown.</summary>
public sealed class PostgresLifecycleTests
{
    [Fact]
    public async Task DisposeAsync_RunningServer_StopsItAndDeletesItsDirectory()
    {
        var fixture = new PostgresFixture();
        await fixture.InitializeAsync();
        var connectionString = fixture.ConnectionString;
        var dataDirectory = fixture.DataDirectory;
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("SELECT current_setting('data_directory')", connection);
            Assert.Equal(dataDirectory, (string)(await command.ExecuteScalarAsync())!);
        }

        var owner = File.ReadAllText(Path.Combine(dataDirectory, "postmaster.pid")).Split('\n')[0];
        var postmasterPid = int.Parse(owner, System.Globalization.CultureInfo.InvariantCulture);

        await fixture.DisposeAsync();

        Assert.False(Directory.Exists(dataDirectory));
        Assert.True(await ProcState.WaitDeadAsync(postmasterPid), $"postmaster {postmasterPid} survived dispose");
        await using var after = new NpgsqlConnection(connectionString);
        var error = await Assert.ThrowsAnyAsync<NpgsqlException>(() => after.OpenAsync());
        Assert.IsType<SocketException>(error.InnerException);
    }
}
