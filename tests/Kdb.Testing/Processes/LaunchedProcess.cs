using System.Diagnostics;
using Xunit.Abstractions;

namespace Kdb.Testing.Processes;

/// <summary>A started process, its captured output, and the tree-wide stop used on dispose.</summary>
internal sealed class LaunchedProcess : ILaunchedProcess
{
    private const string SetSid = "/usr/bin/setsid";

    // Bounds the final wait for the output pipes to close; a grandchild that escaped the tree (a daemon that
    // started a session of its own) could otherwise hold them open for ever.
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(3);

    private readonly Process _process;
    private readonly ProcessLog _log;
    private readonly TimeSpan _grace;
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _disposed;

    private LaunchedProcess(Process process, ProcessLog log, string name, TimeSpan grace)
    {
        _process = process;
        _log = log;
        _grace = grace;
        Name = name;
        ProcessId = process.Id;
        process.Exited += (_, _) => _exited.TrySetResult();
        if (process.HasExited)
        {
            _exited.TrySetResult();
        }
    }

    public string Name { get; }

    public int ProcessId { get; }

    public bool HasExited => _process.HasExited;

    public int? ExitCode => _process.HasExited ? _process.ExitCode : null;

    public string StandardOutput => _log.Render(errorStream: false);

    public string StandardError => _log.Render(errorStream: true);

    public string Log => _log.Render(errorStream: null);

    public bool LogContains(string text) => _log.Contains(text);

    public string Tail(int lines) => _log.Tail(lines);

    public void WriteLogTo(ITestOutputHelper output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var state = HasExited ? $"exited with code {ExitCode}" : "running";
        output.WriteLine($"===== {Name} (pid {ProcessId}, {state}) =====\n{Log}===== end of {Name} =====");
    }

    public async Task<int> WaitForExitAsync(CancellationToken cancellationToken = default)
    {
        // Not Process.WaitForExitAsync: that also waits for EOF on stdout/stderr, which never comes while a child
        // that inherited them lives on. The launched process itself is what this waits for.
        await _exited.Task.WaitAsync(cancellationToken);
        // The exit can be seen before the last lines are read: wait for EOF on both streams, but only briefly,
        // since a grandchild that inherited them may keep them open.
        await Task.WhenAny(Task.WhenAll(_log.OutputClosed.Task, _log.ErrorClosed.Task), Task.Delay(TimeSpan.FromSeconds(2), cancellationToken));
        return _process.ExitCode;
    }

    public static LaunchedProcess Start(ProcessSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var name = spec.Name ?? Path.GetFileName(spec.FileName);
        var environment = ResolveEnvironment(spec);
        var (fileName, arguments) = Privileges.Wrap(spec.FileName, spec.Arguments, spec.RunAsUser, environment, !spec.InheritEnvironment);

        var info = new ProcessStartInfo
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = spec.WorkingDirectory ?? Environment.CurrentDirectory,
        };

        // A new session makes the process the leader of its own session and group, so dispose can find
        // everything it started even after intermediate parents have died. Inside it a small shell runs the
        // command and a watchdog that kills the group once the test process is gone, so an aborted test run
        // (Ctrl+C, a crashed test host: no dispose ever runs) leaves no servers behind.
        if (File.Exists(SetSid) && File.Exists("/bin/sh"))
        {
            info.FileName = SetSid;
            info.ArgumentList.Add("/bin/sh");
            info.ArgumentList.Add("-c");
            info.ArgumentList.Add(WatchdogScript(spec.WatchProcessId ?? Environment.ProcessId));
            info.ArgumentList.Add("kdb-watchdog");
            info.ArgumentList.Add(fileName);
        }
        else
        {
            info.FileName = fileName;
        }

        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        if (!spec.InheritEnvironment)
        {
            info.Environment.Clear();
        }

        foreach (var key in spec.Environment.Keys)
        {
            info.Environment.Remove(key);
        }

        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }

        var log = new ProcessLog(name, spec.Output);
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                log.Append(isError: false, e.Data);
            }
            else
            {
                log.OutputClosed.TrySetResult();
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                log.Append(isError: true, e.Data);
            }
            else
            {
                log.ErrorClosed.TrySetResult();
            }
        };

        try
        {
            process.Start();
        }
        catch (Exception ex)
        {
            process.Dispose();
            throw new ProcessLaunchException($"Could not start {name} ({spec.FileName}): {ex.Message}", ex);
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        // Nothing is ever typed into a test process; EOF on stdin keeps interactive programs from waiting.
        process.StandardInput.Close();
        return new LaunchedProcess(process, log, name, spec.StopGracePeriod);
    }

    public async Task WaitUntilReadyAsync(ProcessSpec spec, CancellationToken cancellationToken)
    {
        var probe = spec.Readiness;
        if (probe is null)
        {
            return;
        }

        var clock = Stopwatch.StartNew();
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (await probe.IsReadyAsync(this, cancellationToken))
            {
                return;
            }

            if (HasExited)
            {
                await DrainAsync();
                throw Failure($"{Name} exited with code {ExitCode} before it was ready ({probe.Description}).");
            }

            if (clock.Elapsed > spec.ReadyTimeout)
            {
                throw Failure($"{Name} was not ready after {spec.ReadyTimeout.TotalSeconds:0} s (waiting for {probe.Description}).");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        var members = ProcessTree.Members(ProcessId);
        if (_grace > TimeSpan.Zero && members.Count > 0)
        {
            ProcessTree.Terminate(members);
            await WaitGoneAsync(members, _grace);
        }

        // Several rounds: a dying parent may have forked once more between the snapshot and the signal.
        for (var round = 0; round < 5; round++)
        {
            members.UnionWith(ProcessTree.Members(ProcessId));
            members.RemoveWhere(pid => !ProcessTree.IsAlive(pid));
            if (members.Count == 0)
            {
                break;
            }

            ProcessTree.Kill(members);
            await WaitGoneAsync(members, TimeSpan.FromSeconds(2));
        }

        await DrainAsync();
        _process.Dispose();
    }

    private ProcessLaunchException Failure(string message) =>
        new($"{message}\n--- last output of {Name} ---\n{_log.Tail(60)}--- end ---", Log, ProcessId);

    private async Task DrainAsync()
    {
        // Process.WaitForExitAsync also waits for the redirected streams to reach EOF, so every line is captured.
        using var timeout = new CancellationTokenSource(DrainTimeout);
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static async Task WaitGoneAsync(HashSet<int> pids, TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < limit)
        {
            var anyAlive = false;
            foreach (var pid in pids)
            {
                if (ProcessTree.IsAlive(pid))
                {
                    anyAlive = true;
                    break;
                }
            }

            if (!anyAlive)
            {
                return;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(25));
        }
    }

    // "$@" is the command. It runs in the foreground: a background job of a non-interactive shell would start with
    // SIGINT and SIGQUIT ignored, which changes how servers (pg_ctl's SIGQUIT, a host's Ctrl+C) react to signals.
    // The watcher's output goes to /dev/null so that it never holds the captured pipes open; the shell exits with
    // the command's exit code.
    private static string WatchdogScript(int watchedProcessId) => string.Create(
        System.Globalization.CultureInfo.InvariantCulture,
        $"""
        ( while kill -0 {watchedProcessId} 2>/dev/null; do sleep 1; done; kill -KILL 0 ) </dev/null >/dev/null 2>&1 &
        watcher=$!
        "$@"
        code=$?
        kill $watcher 2>/dev/null
        exit $code
        """);

    private static Dictionary<string, string> ResolveEnvironment(ProcessSpec spec)
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!spec.InheritEnvironment)
        {
            environment["PATH"] = Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/bin:/usr/bin:/bin";
            environment["LANG"] = "C.UTF-8";
        }

        foreach (var (key, value) in spec.Environment)
        {
            if (value is null)
            {
                environment.Remove(key);
            }
            else
            {
                environment[key] = value;
            }
        }

        return environment;
    }
}
