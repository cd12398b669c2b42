using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Kdb.Testing.Proxy;
using Npgsql;

namespace Kdb.Proxy.Tests;

/// <summary>
/// Graceful drain of a real proxy process on SIGTERM: the port refuses new connections at once, idle sessions end
/// with 57P01 at once, a session in a transaction can commit it and then ends, one still in its transaction at the
/// drain timeout ends with 57P01 (its work rolled back), and the process exits.
/// </summary>
[Collection(ProxyCollection.Name)]
public sealed class DrainTests(ProxyTestBed bed)
{
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Sigterm_RefusesNew_EndsIdleAt57P01_LetsTransactionFinish_CutsTheRestAtTimeout_Exits()
    {
        var entry = await bed.CreateRoutedDatabaseAsync("pw-drain");
        await using var proxy = await ProxyProcess.StartAsync(bed.Routes.BaseAddress, bed.Cluster.Issuer, new Dictionary<string, string>
        {
            ["Proxy:DrainTimeout"] = DrainTimeout.ToString("c", CultureInfo.InvariantCulture),
        });
        var cs = proxy.ConnectionString(entry.DatabaseId, "owner", "pw-drain");
        await using (var setup = await OpenAsync(cs))
        {
            await ExecuteAsync(setup, "CREATE TABLE drained (id int PRIMARY KEY)");
        }

        await using var finishing = await OpenAsync(cs);
        await ExecuteAsync(finishing, "BEGIN");
        await ExecuteAsync(finishing, "INSERT INTO drained VALUES (1)");
        await using var lingering = await OpenAsync(cs);
        await ExecuteAsync(lingering, "BEGIN");
        await ExecuteAsync(lingering, "INSERT INTO drained VALUES (100)");
        await using var idle = await OpenAsync(cs);

        var host = HostProcess(proxy.ProcessId);
        var signalled = Stopwatch.StartNew();
        Signal(host, "TERM");

        // New connections are refused by the operating system once the listener is closed.
        var refused = false;
        for (var attempt = 0; attempt < 100 && !refused; attempt++)
        {
            try
            {
                await using var late = await OpenAsync(cs);
                await Task.Delay(50); // accepted before the listener closed: it is drained like the others
            }
            catch (NpgsqlException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused })
            {
                refused = true;
            }
            catch (PostgresException e) when (e.SqlState == "57P01")
            {
                await Task.Delay(50);
            }
            catch (NpgsqlException e) when (e is not PostgresException && e.InnerException is IOException)
            {
                // Left in the accept backlog when the listener closed: the kernel resets it. Try again.
                await Task.Delay(50);
            }
        }

        Assert.True(refused, "the PostgreSQL port kept accepting after SIGTERM");

        // The idle session ends without waiting for the timeout.
        var idleEnd = await Assert.ThrowsAsync<PostgresException>(() => idle.WaitAsync(DrainTimeout));
        Assert.Equal("57P01", idleEnd.SqlState);

        // The session in a transaction finishes it, then ends.
        await ExecuteAsync(finishing, "INSERT INTO drained VALUES (2)");
        await ExecuteAsync(finishing, "COMMIT");
        var finishedEnd = await Assert.ThrowsAsync<PostgresException>(() => finishing.WaitAsync(DrainTimeout));
        Assert.Equal("57P01", finishedEnd.SqlState);

        // The one still in its transaction is ended at the timeout, not before.
        var cut = await Assert.ThrowsAsync<PostgresException>(() => lingering.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal("57P01", cut.SqlState);
        Assert.True(signalled.Elapsed >= DrainTimeout - TimeSpan.FromSeconds(1), $"cut after {signalled.Elapsed}");

        for (var i = 0; i < 600 && ProcessAlive(host); i++)
        {
            await Task.Delay(50);
        }

        Assert.False(ProcessAlive(host), "the proxy did not exit after the drain");

        // Through the cloud's own proxy: the finished transaction is there, the cut one is not.
        await using var check = await OpenAsync(bed.Proxy.ConnectionString(entry.DatabaseId, "owner", "pw-drain"));
        await using var select = new NpgsqlCommand("SELECT id FROM drained ORDER BY id", check);
        var ids = new List<int>();
        await using (var reader = await select.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                ids.Add(reader.GetInt32(0));
            }
        }

        Assert.Equal([1, 2], ids);
    }

    private static async Task<NpgsqlConnection> OpenAsync(string cs)
    {
        var conn = new NpgsqlConnection(cs);
        try
        {
            await conn.OpenAsync();
            return conn;
        }
        catch
        {
            await conn.DisposeAsync();
            throw;
        }
    }

    private static async Task ExecuteAsync(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync();
    }

    // The launcher runs the proxy under a small watchdog shell: the signal goes to the dotnet host itself.
    private static int HostProcess(int root)
    {
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0');
                if (fields[1] == root.ToString(CultureInfo.InvariantCulture) && cmdline[0].EndsWith("dotnet", StringComparison.Ordinal))
                {
                    return pid;
                }
            }
            catch (IOException)
            {
                // The process ended while being read.
            }
        }

        throw new InvalidOperationException($"no dotnet process below {root}");
    }

    private static bool ProcessAlive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[stat.LastIndexOf(')') + 2] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static void Signal(int pid, string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-" + signal, pid.ToString(CultureInfo.InvariantCulture)]) { UseShellExecute = false })!;
        kill.WaitForExit();
        Assert.Equal(0, kill.ExitCode);
    }
}
