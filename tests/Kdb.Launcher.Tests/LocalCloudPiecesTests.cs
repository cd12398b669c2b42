using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;

namespace Kdb.Launcher.Tests;

public sealed class LocalCloudPiecesTests
{
    [Fact]
    public void Secrets_LoadOrCreate_GeneratesOncePrivatelyAndKeepsThem()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "secrets.env");

        var first = Secrets.LoadOrCreate(path);
        var second = Secrets.LoadOrCreate(path);

        foreach (var key in Secrets.Keys)
        {
            Assert.True(first[key].Length >= 40);
            Assert.Equal(first[key], second[key]);
        }

        Assert.NotEqual(first["KDB_CLIENT_PROXY_SECRET"], first["KDB_CLIENT_NODE_SECRET"]);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
    }

    [Fact]
    public void Secrets_MalformedFile_IsAClearError()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "secrets.env");
        File.WriteAllText(path, "this line has no equals sign\n");

        var ex = Assert.Throws<InvalidDataException>(() => Secrets.LoadOrCreate(path));

        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DevCertificates_ServerCertificate_ChainsToTheCaWithTheLocalCloudNames()
    {
        using var dir = new TempDir();
        var certs = new DevCertificates(dir.Path);
        certs.EnsureCreated(TimeProvider.System);
        var caBefore = File.ReadAllText(certs.CaCertificatePath);
        certs.EnsureCreated(TimeProvider.System);

        using var ca = X509Certificate2.CreateFromPem(File.ReadAllText(certs.CaCertificatePath));
        using var server = X509Certificate2.CreateFromPemFile(certs.ServerCertificatePath, certs.ServerKeyPath);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;

        Assert.Equal(caBefore, File.ReadAllText(certs.CaCertificatePath));
        Assert.True(server.HasPrivateKey);
        Assert.True(chain.Build(server), string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation)));
        Assert.True(server.MatchesHostname("localhost"));
        Assert.True(server.MatchesHostname("db-0123456789abcdef.kdb.localhost"));
        Assert.True(server.MatchesHostname("127.0.0.1"));
        Assert.False(server.MatchesHostname("example.com"));
    }

    [Fact]
    public void PortProbe_PortHeldByThisProcess_IsNotFreeAndNamesTheHolder()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;

        Assert.False(PortProbe.IsFree(port));
        Assert.StartsWith($"pid {Environment.ProcessId} ", PortProbe.DescribeOwner(port), StringComparison.Ordinal);
        listener.Stop();
        Assert.True(PortProbe.IsFree(port));
    }

    [Fact]
    public async Task Up_PortTakenByAForeignProcess_ExitsNonZeroNamingThePortBeforeStartingAnything()
    {
        using var dir = new TempDir();
        var paths = new KdbPaths(dir.Path, Path.Combine(dir.Path, ".kdb"));
        // The control plane's port is held; whichever port up checks first, it must refuse to start.
        using var blocker = TryListen(5100);
        using var output = new StringWriter();
        var console = Spectre.Console.AnsiConsole.Create(new Spectre.Console.AnsiConsoleSettings { Out = new Spectre.Console.AnsiConsoleOutput(output), Ansi = Spectre.Console.AnsiSupport.No });

        var ex = await Assert.ThrowsAsync<LauncherException>(() => new UpCommand(paths, console).RunAsync(1, null, detach: true, build: false, CancellationToken.None));

        Assert.Equal(4, ex.ExitCode);
        Assert.Matches(@"port \d+, needed by \w+, is taken by ", ex.Message);
        Assert.DoesNotContain("starting", output.ToString(), StringComparison.Ordinal);
        Assert.False(Directory.Exists(paths.PostgresData) && File.Exists(Path.Combine(paths.PostgresData, "PG_VERSION")));
    }

    [Fact]
    public async Task ProcessControl_StartDetached_LogsToFileAndStopsTheWholeGroup()
    {
        using var dir = new TempDir();
        var log = Path.Combine(dir.Path, "svc.log");
        var handle = ProcessControl.StartDetached("/bin/sh", ["-c", "echo started; sleep 300 & wait"], new Dictionary<string, string>(), dir.Path, log);

        Assert.True(ProcessControl.IsAlive(handle));
        await WaitForAsync(() => File.Exists(log) && File.ReadAllText(log).Contains("started", StringComparison.Ordinal));
        var pidFile = Path.Combine(dir.Path, "svc.pid");
        ProcessControl.WritePidFile(pidFile, handle);
        Assert.Equal(handle, ProcessControl.ReadPidFile(pidFile));

        await ProcessControl.StopAsync(handle, TimeSpan.FromSeconds(5));

        Assert.False(ProcessControl.IsAlive(handle));
        Assert.False(ProcessControl.GroupAlive(handle.Pid));
    }

    [Fact]
    public void IsAlive_ReusedPidWithAnotherStartTime_IsNotAlive()
    {
        var self = new ProcessHandle(Environment.ProcessId, ProcessControl.ReadStartTicks(Environment.ProcessId)!.Value);

        Assert.True(ProcessControl.IsAlive(self));
        Assert.False(ProcessControl.IsAlive(self with { StartTicks = self.StartTicks + 1 }));
    }

    private static IDisposable? TryListen(int port)
    {
        try
        {
            var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return listener;
        }
        catch (SocketException)
        {
            return null; // already held by someone else: just as good for this test
        }
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        for (var i = 0; i < 100 && !condition(); i++)
        {
            await Task.Delay(50);
        }

        Assert.True(condition());
    }
}
