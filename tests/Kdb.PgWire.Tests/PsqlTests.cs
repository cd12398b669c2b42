using System.Diagnostics;
using Kdb.PgWire.Tests.Support;

namespace Kdb.PgWire.Tests;

/// <summary>The PostgreSQL 15 command-line client against the test server.</summary>
public sealed class PsqlTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public Task InitializeAsync()
    {
        _server = new TestServer();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static string PsqlPath => File.Exists("/usr/lib/postgresql/15/bin/psql") ? "/usr/lib/postgresql/15/bin/psql" : "/usr/bin/psql";

    private Process Start(params string[] commands)
    {
        var info = new ProcessStartInfo(PsqlPath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in new[] { "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", _server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", TestServer.User, "-d", TestServer.DatabaseName })
        {
            info.ArgumentList.Add(a);
        }

        foreach (string c in commands)
        {
            info.ArgumentList.Add("-c");
            info.ArgumentList.Add(c);
        }

        info.Environment["PGPASSWORD"] = TestServer.Password;
        info.Environment["PGCONNECT_TIMEOUT"] = "10";
        info.Environment["PGAPPNAME"] = "psql-test";
        return Process.Start(info)!;
    }

    private async Task<(int ExitCode, string Out, string Err)> RunAsync(params string[] commands)
    {
        using Process p = Start(commands);
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return (p.ExitCode, (await stdout).Trim(), (await stderr).Trim());
    }

    [Fact]
    public async Task SimpleQuery_SelectLiteral_PrintsValue()
    {
        (int code, string output, string err) = await RunAsync("SELECT 42, 'hello'");
        Assert.True(code == 0, err);
        Assert.Equal("42|hello", output);
        Assert.Equal("psql-test", _server.Database.LastStartup!.Parameters["application_name"]);
    }

    [Fact]
    public async Task MultiStatement_OneQueryMessage_AllResultsPrinted()
    {
        _server.Database.Clear();
        (int code, string output, string err) = await RunAsync("INSERT INTO items VALUES (1, 'a'); INSERT INTO items VALUES (2, 'b'); SELECT id, name FROM items");
        Assert.True(code == 0, err);
        Assert.EndsWith("1|a\n2|b", output.ReplaceLineEndings("\n"));
    }

    [Fact]
    public async Task MultiStatement_ErrorInMiddle_StopsAndReportsError()
    {
        (int code, string output, string err) = await RunAsync("SELECT 1; SELECT raise_error(); SELECT 3");
        Assert.Equal(1, code);
        Assert.Contains("ERROR:  division by zero", err);
        Assert.Contains("DETAIL:  the detail", err);
        Assert.Contains("HINT:  the hint", err);
        Assert.DoesNotContain("3", output);
    }

    [Fact]
    public async Task Copy_BothWays_MovesRows()
    {
        _server.Database.Clear();
        string input = Path.GetTempFileName();
        string output = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(input, "10\tten\n11\televen\n12\t\\N\n");
            (int code, _, string err) = await RunAsync($"\\copy items from '{input}'");
            Assert.True(code == 0, err);
            Assert.Equal([10, 11, 12], _server.Database.Snapshot().Select(i => i.Id));
            Assert.Null(_server.Database.Snapshot()[2].Name);
            (code, _, err) = await RunAsync($"\\copy items to '{output}'");
            Assert.True(code == 0, err);
            Assert.Equal("10\tten\n11\televen\n12\t\\N\n", await File.ReadAllTextAsync(output));
        }
        finally
        {
            File.Delete(input);
            File.Delete(output);
        }
    }

    [Fact]
    public async Task Cancel_SigintDuringLongStatement_SendsCancelRequest()
    {
        using Process p = Start("SELECT pg_sleep(60)");
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        Assert.True(await _server.Database.SleepStarted.WaitAsync(TimeSpan.FromSeconds(30)));
        using (Process kill = Process.Start("kill", ["-INT", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        _ = await stdout;
        Assert.Contains("ERROR:  canceling statement due to user request", await stderr);
        Assert.Equal(1, p.ExitCode);
    }

    [Fact]
    public async Task WrongPassword_PsqlReports28P01Message()
    {
        var info = new ProcessStartInfo(PsqlPath, ["-X", "-h", "127.0.0.1", "-p", _server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", "nobody", "-d", "nodb", "-c", "SELECT 1"])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        info.Environment["PGPASSWORD"] = "x";
        using Process bad = Process.Start(info)!;
        string err = await bad.StandardError.ReadToEndAsync();
        await bad.WaitForExitAsync();
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("password authentication failed for user \"nobody\"", err);
    }
}
