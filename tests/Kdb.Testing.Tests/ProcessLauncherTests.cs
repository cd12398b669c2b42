using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Kdb.Testing.Hosting;
using Kdb.Testing.Ports;
using Kdb.Testing.Processes;
using Xunit.Abstractions;

namespace Kdb.Testing.Tests;

public sealed class ProcessLauncherTests(ITestOutputHelper output)
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false });

    [Fact]
    public async Task StartAsync_ShellPrintsAndSleeps_CapturesStdoutAndStderrSeparately()
    {
        var spec = ProcessSpec.Shell("echo hello-out; echo hello-err >&2; exec sleep 300") with
        {
            Readiness = Readiness.All(Readiness.LogContains("hello-out"), Readiness.LogContains("hello-err")),
        };

        await using var process = await ProcessLauncher.StartAsync(spec);

        Assert.False(process.HasExited);
        Assert.Null(process.ExitCode);
        Assert.Equal("hello-out\n", process.StandardOutput);
        Assert.Equal("hello-err\n", process.StandardError);
        Assert.Contains("out| hello-out", process.Log, StringComparison.Ordinal);
        Assert.Contains("err| hello-err", process.Log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StartAsync_HttpReadiness_ReturnsOnlyOnceTheServerAnswers200()
    {
        var port = FreePorts.Allocate();
        var spec = HelperServer(port, delayMs: 1500, status: 200) with { Readiness = Readiness.Http($"http://127.0.0.1:{port}/ready") };

        await using var process = await ProcessLauncher.StartAsync(spec);

        // Readiness must have waited past the helper's delay: it has logged that it listens and served the probe.
        Assert.True(await LogWait.ContainsAsync(process, $"helper listening on {port}"));
        Assert.True(await LogWait.ContainsAsync(process, "helper served GET /ready HTTP/1.1"));
        Assert.True(await LogWait.ContainsAsync(process, "helper says hello on stderr"));
        Assert.Contains("helper says hello on stderr", process.StandardError, StringComparison.Ordinal);
        using var response = await Http.GetAsync(new Uri($"http://127.0.0.1:{port}/again"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("ok", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task StartAsync_TcpReadiness_ReturnsOnceThePortAccepts()
    {
        var port = FreePorts.Allocate();
        var spec = HelperServer(port, delayMs: 1000, status: 200) with { Readiness = Readiness.Tcp(port) };

        await using var process = await ProcessLauncher.StartAsync(spec);

        Assert.True(await LogWait.ContainsAsync(process, $"helper listening on {port}"));
    }

    [Fact]
    public async Task StartAsync_HttpAnswersNon200_FailsWhenTheTimeoutPassesAndKillsTheProcess()
    {
        var port = FreePorts.Allocate();
        var spec = HelperServer(port, delayMs: 0, status: 503) with
        {
            Readiness = Readiness.Http($"http://127.0.0.1:{port}/"),
            ReadyTimeout = TimeSpan.FromSeconds(4),
        };

        var error = await Assert.ThrowsAsync<ProcessLaunchException>(() => ProcessLauncher.StartAsync(spec));

        Assert.Contains("was not ready", error.Message, StringComparison.Ordinal);
        Assert.Contains($"HTTP 200 from http://127.0.0.1:{port}/", error.Message, StringComparison.Ordinal);
        Assert.NotNull(error.ProcessId);
        Assert.True(await ProcState.WaitDeadAsync(error.ProcessId.Value), $"process {error.ProcessId} still alive");
    }

    [Fact]
    public async Task StartAsync_ProcessExitsBeforeReady_ThrowsWithExitCodeAndOutput()
    {
        var spec = ProcessSpec.Shell("echo about-to-fail; echo reason-on-stderr >&2; exit 3") with
        {
            Readiness = Readiness.Tcp(FreePorts.Allocate()),
        };

        var error = await Assert.ThrowsAsync<ProcessLaunchException>(() => ProcessLauncher.StartAsync(spec));

        Assert.Contains("exited with code 3 before it was ready", error.Message, StringComparison.Ordinal);
        Assert.Contains("out| about-to-fail", error.Message, StringComparison.Ordinal);
        Assert.Contains("err| reason-on-stderr", error.Log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StartAsync_MissingExecutable_ThrowsProcessLaunchException()
    {
        var spec = new ProcessSpec("/nonexistent/kdb-binary", ["--flag"]) { Readiness = Readiness.Tcp(FreePorts.Allocate()) };

        var error = await Assert.ThrowsAsync<ProcessLaunchException>(() => ProcessLauncher.StartAsync(spec));

        Assert.Contains("kdb-binary", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DisposeAsync_ProcessWithChildAndGrandchild_KillsTheWholeTree()
    {
        // The outer shell ignores SIGTERM, so dispose has to escalate to SIGKILL after the grace period.
        var script = "trap '' TERM; sh -c 'sleep 300 & echo grandchild=$!; wait' & echo child=$!; wait";
        var spec = ProcessSpec.Shell(script) with
        {
            Readiness = Readiness.All(Readiness.LogContains("child="), Readiness.LogContains("grandchild=")),
            StopGracePeriod = TimeSpan.FromMilliseconds(300),
        };
        var process = await ProcessLauncher.StartAsync(spec);
        int[] pids = [process.ProcessId, PidFrom(process.Log, "out| child="), PidFrom(process.Log, "grandchild=")];
        Assert.All(pids, pid => Assert.True(ProcState.IsAlive(pid)));

        await process.DisposeAsync();

        foreach (var pid in pids)
        {
            Assert.True(await ProcState.WaitDeadAsync(pid), $"process {pid} survived dispose");
        }
    }

    [Fact]
    public async Task DisposeAsync_ParentExitedButChildLivesOn_KillsTheOrphan()
    {
        var spec = ProcessSpec.Shell("sleep 300 & echo orphan=$!; exit 0") with { Readiness = Readiness.LogContains("orphan=") };
        var process = await ProcessLauncher.StartAsync(spec);
        var orphan = PidFrom(process.Log, "orphan=");
        Assert.Equal(0, await process.WaitForExitAsync());
        Assert.True(ProcState.IsAlive(orphan));

        await process.DisposeAsync();

        Assert.True(await ProcState.WaitDeadAsync(orphan), $"orphan {orphan} survived dispose");
    }

    [Fact]
    public async Task Watchdog_WatchedProcessDies_KillsTheTreeWithoutAnyDispose()
    {
        // Stands in for the test host: when it dies (an aborted run), nothing is disposed, yet the tree must go.
        var standIn = await ProcessLauncher.StartAsync(ProcessSpec.Shell("exec sleep 300"));
        var spec = ProcessSpec.Shell("sleep 300 & echo child=$!; wait") with
        {
            WatchProcessId = standIn.ProcessId,
            Readiness = Readiness.LogContains("child="),
        };
        await using var watched = await ProcessLauncher.StartAsync(spec);
        var child = PidFrom(watched.Log, "child=");
        Assert.True(ProcState.IsAlive(child));

        await standIn.DisposeAsync();

        Assert.True(await ProcState.WaitDeadAsync(child), $"child {child} outlived the watched process");
        Assert.True(await ProcState.WaitDeadAsync(watched.ProcessId), $"root {watched.ProcessId} outlived the watched process");
    }

    [Fact]
    public async Task StartAsync_Command_KeepsDefaultInterruptAndQuitSignals()
    {
        await using var process = await ProcessLauncher.StartAsync(ProcessSpec.Shell("exec grep SigIgn /proc/self/status"));
        Assert.Equal(0, await process.WaitForExitAsync());
        Assert.True(await LogWait.ContainsAsync(process, "SigIgn:"));

        var mask = ulong.Parse(process.StandardOutput.Split(':')[1].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);

        // Bit n-1 is signal n: SIGINT (2) and SIGQUIT (3) must not be ignored, or servers could not be interrupted.
        Assert.Equal(0UL, mask & 0b110);
    }

    [Fact]
    public async Task StartAsync_WithoutInheritedEnvironment_SeesOnlySpecVariables()
    {
        Environment.SetEnvironmentVariable("KDB_TESTING_RUNNER_ONLY", "leak");
        var spec = ProcessSpec.Shell("echo \"runner=[$KDB_TESTING_RUNNER_ONLY] spec=[$KDB_TESTING_SPEC]\"") with
        {
            InheritEnvironment = false,
            Environment = new Dictionary<string, string?> { ["KDB_TESTING_SPEC"] = "given" },
        };

        await using var process = await ProcessLauncher.StartAsync(spec);
        Assert.Equal(0, await process.WaitForExitAsync());

        Assert.Equal("runner=[] spec=[given]\n", process.StandardOutput);
    }

    [Fact]
    public async Task StartAsync_RunAsUser_RunsAsThatUserWhenRoot()
    {
        var spec = new ProcessSpec("/usr/bin/id", ["-un"]) { RunAsUser = "nobody" };

        await using var process = await ProcessLauncher.StartAsync(spec);
        Assert.Equal(0, await process.WaitForExitAsync());

        var expected = Environment.UserName == "root" ? "nobody" : Environment.UserName;
        Assert.Equal(expected + "\n", process.StandardOutput);
    }

    [Fact]
    public async Task WriteLogsOnFailureAsync_BodyThrows_WritesEveryProcessLogAndRethrows()
    {
        var recording = new RecordingOutput(output);
        await using var first = await ProcessLauncher.StartAsync(
            ProcessSpec.Shell("echo first-line; exec sleep 300") with { Name = "first", Readiness = Readiness.LogContains("first-line") });
        await using var second = await ProcessLauncher.StartAsync(
            ProcessSpec.Shell("echo second-line >&2; exec sleep 300") with { Name = "second", Readiness = Readiness.LogContains("second-line") });

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => ProcessLauncher.WriteLogsOnFailureAsync(
            recording,
            () => throw new InvalidOperationException("the assertion that failed"),
            first,
            second));

        Assert.Equal("the assertion that failed", error.Message);
        Assert.Contains("===== first (pid", recording.Text, StringComparison.Ordinal);
        Assert.Contains("out| first-line", recording.Text, StringComparison.Ordinal);
        Assert.Contains("===== second (pid", recording.Text, StringComparison.Ordinal);
        Assert.Contains("err| second-line", recording.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WriteLogsOnFailureAsync_BodySucceeds_WritesNothing()
    {
        var recording = new RecordingOutput(output);
        await using var process = await ProcessLauncher.StartAsync(
            ProcessSpec.Shell("echo quiet; exec sleep 300") with { Readiness = Readiness.LogContains("quiet") });

        await ProcessLauncher.WriteLogsOnFailureAsync(recording, () => Task.CompletedTask, process);

        Assert.Equal(string.Empty, recording.Text);
    }

    [Fact]
    public async Task StartAsync_LiveOutput_StreamsLinesToTheTestOutput()
    {
        var recording = new RecordingOutput(output);
        var spec = ProcessSpec.Shell("echo streamed-line; exec sleep 300") with
        {
            Name = "streamer",
            Output = recording,
            Readiness = Readiness.LogContains("streamed-line"),
        };

        await using var process = await ProcessLauncher.StartAsync(spec);

        Assert.Contains("[streamer] out| streamed-line", recording.Text, StringComparison.Ordinal);
    }

    [Fact]
    public void RepoPaths_BuiltAssembly_FindsTheHarnessBuildOutput()
    {
        var path = RepoPaths.BuiltAssembly("tests/Kdb.Testing");

        Assert.True(File.Exists(path));
        Assert.EndsWith(Path.Combine("tests", "Kdb.Testing", "bin", RepoPaths.Configuration, "net10.0", "Kdb.Testing.dll"), path, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(RepoPaths.Root, "global.json")));
    }

    [Fact]
    public void RepoPaths_BuiltAssembly_ProjectNotBuilt_ThrowsWithBuildHint()
    {
        var error = Assert.Throws<FileNotFoundException>(() => RepoPaths.BuiltAssembly("nowhere/Kdb.NotAProject"));

        Assert.Contains("dotnet build nowhere/Kdb.NotAProject", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DotNet_MissingAssembly_ThrowsFileNotFound() =>
        Assert.Throws<FileNotFoundException>(() => ProcessSpec.DotNet("/nonexistent/Kdb.Missing.dll"));

    private static ProcessSpec HelperServer(int port, int delayMs, int status) =>
        ProcessSpec.DotNet(
            typeof(ProcessLauncherTests).Assembly.Location,
            "serve-http",
            port.ToString(CultureInfo.InvariantCulture),
            delayMs.ToString(CultureInfo.InvariantCulture),
            status.ToString(CultureInfo.InvariantCulture));

    private static int PidFrom(string log, string marker)
    {
        var match = Regex.Match(log, Regex.Escape(marker) + "(\\d+)");
        Assert.True(match.Success, $"'{marker}' not found in:\n{log}");
        return int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
    }
}
