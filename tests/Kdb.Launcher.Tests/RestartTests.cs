using System.Net;
using System.Net.Sockets;
using Spectre.Console;

namespace Kdb.Launcher.Tests;

/// <summary>
/// The operator's restart path on a real local cloud (every service a process, the Debug builds this project makes),
/// shifted off DESIGN.md's ports so it runs beside a developer's <c>./kdb up</c>.
/// </summary>
public sealed class RestartTests
{
    private const string Psql = PostgresService.Bin + "/psql";

    [Fact]
    public async Task UpDetached_AfterANodeWasKilled_BringsItBackOnItsPortsAndDataAndLeavesTheOthersRunning()
    {
        using var dir = new TempDir();
        var paths = new KdbPaths(KdbPaths.Discover().Root, Path.Combine(dir.Path, ".kdb")) { PortOffset = FreeOffset(), Configuration = "Debug" };
        try
        {
            var (code, output, error) = await RunAsync(paths, "up", "-d", "--no-build");
            Assert.True(code == 0, $"up failed ({code}): {error}\n{output}\n{LogTails(paths)}");
            var demo = DemoUri(paths);
            await PsqlAsync(demo, "CREATE TABLE restart_check (id int PRIMARY KEY, note text); INSERT INTO restart_check VALUES (1, 'before the kill')");
            var before = await new StatusCommand(paths, PlainConsole.Into(new StringWriter())).CollectAsync(CancellationToken.None);
            Assert.All(before, row => Assert.True(row.Ready, $"{row.Service} is not ready after up"));
            var nodeId = await File.ReadAllTextAsync(Path.Combine(paths.Nodes, "2", "node-id"));

            var victim = before.Single(r => r.Service == "node2");
            Assert.Equal(0, Native.Kill(victim.Pid!.Value, Native.SigKill));
            var afterKill = await WaitForAsync(paths, rows => rows.Single(r => r.Service == "node2").Pid is null);
            Assert.All(afterKill.Where(r => r.Service != "node2"), row => Assert.Equal(before.Single(b => b.Service == row.Service).Pid, row.Pid));

            // No --nodes: the running cloud's size is kept.
            (code, output, error) = await RunAsync(paths, "up", "-d", "--no-build");
            Assert.True(code == 0, $"second up failed ({code}): {error}\n{output}\n{LogTails(paths)}");
            Assert.Contains("starting node2", output, StringComparison.Ordinal);
            Assert.DoesNotContain("starting node1", output, StringComparison.Ordinal);
            Assert.Contains("controlplane already running", output, StringComparison.Ordinal);

            var after = await new StatusCommand(paths, PlainConsole.Into(new StringWriter())).CollectAsync(CancellationToken.None);
            Assert.Equal(before.Select(r => (r.Service, r.Url)), after.Select(r => (r.Service, r.Url)));
            Assert.All(after, row => Assert.True(row.Ready, $"{row.Service} is not ready after the second up"));
            Assert.All(after.Where(r => r.Service != "node2"), row => Assert.Equal(before.Single(b => b.Service == row.Service).Pid, row.Pid));
            Assert.NotEqual(victim.Pid, after.Single(r => r.Service == "node2").Pid);
            Assert.True(IsListening(paths.Port(7002)), "node2 is not back on its PostgreSQL port");
            Assert.Equal(nodeId, await File.ReadAllTextAsync(Path.Combine(paths.Nodes, "2", "node-id")));
            Assert.Equal(3, Directory.GetDirectories(paths.Nodes).Length);
            Assert.Contains("before the kill", await PsqlAsync(demo, "SELECT note FROM restart_check WHERE id = 1"), StringComparison.Ordinal);

            // status prints every service, the restarted one included.
            var status = new StringWriter();
            Assert.Equal(0, await new StatusCommand(paths, PlainConsole.Into(status)).RunAsync(json: false, CancellationToken.None));
            foreach (var row in after)
            {
                Assert.Contains(row.Service, status.ToString(), StringComparison.Ordinal);
            }
        }
        finally
        {
            await new DownCommand(paths, PlainConsole.Into(new StringWriter())).RunAsync();
        }
    }

    /// <summary>A shift that puts every port of the local cloud (5100…7309 and 54320) on a free one.</summary>
    private static int FreeOffset()
    {
        int[] design = [CloudOptions.PostgresPort, CloudOptions.ControlPlanePort, CloudOptions.PortalPort, CloudOptions.ProxyPgPort, CloudOptions.ProxyHttpPort, CloudOptions.ProxyManagementPort, 7001, 7002, 7003, 7101, 7102, 7103, 7201, 7202, 7203, 7301, 7302, 7303];
        for (var attempt = 0; attempt < 50; attempt++)
        {
            var offset = Random.Shared.Next(100, 1100) * 10; // ≤ 11,090 keeps 54320 + offset under 65536
            if (design.All(p => PortProbe.IsFree(p + offset)))
            {
                return offset;
            }
        }

        throw new InvalidOperationException("no free set of ports for a second local cloud");
    }

    private static string LogTails(KdbPaths paths) => string.Join("\n", Directory.GetFiles(paths.Logs).Order(StringComparer.Ordinal).Select(f =>
        $"==== {Path.GetFileName(f)}\n{Prerequisites.Tail(File.ReadAllText(f), 30)}"));

    private static string DemoUri(KdbPaths paths)
    {
        var line = File.ReadAllLines(paths.DemoEnvFile).Single(l => l.StartsWith("KDB_DEMO_URI=", StringComparison.Ordinal));
        return line["KDB_DEMO_URI=".Length..].Trim('\'');
    }

    private static async Task<string> PsqlAsync(string uri, string sql)
    {
        var (code, output) = await ProcessControl.RunAsync(Psql, [uri, "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql], timeout: TimeSpan.FromSeconds(60));
        Assert.True(code == 0, $"psql failed ({code}): {output}");
        return output;
    }

    private static async Task<IReadOnlyList<StatusCommand.Row>> WaitForAsync(KdbPaths paths, Func<IReadOnlyList<StatusCommand.Row>, bool> done)
    {
        var status = new StatusCommand(paths, PlainConsole.Into(new StringWriter()));
        for (var i = 0; ; i++)
        {
            var rows = await status.CollectAsync(CancellationToken.None);
            if (done(rows) || i == 100)
            {
                return rows;
            }

            await Task.Delay(100);
        }
    }

    private static async Task<(int Code, string Output, string Error)> RunAsync(KdbPaths paths, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await KdbCli.RunAsync(args, paths, PlainConsole.Into(output), error);
        return (code, output.ToString(), error.ToString());
    }

    private static bool IsListening(int port)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Connect(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
