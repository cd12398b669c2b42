using System.Diagnostics;
using Kdb.Testing.Processes;

namespace Kdb.Testing.EndToEnd;

/// <summary>
/// One service of the local cloud that a fault test can stop, SIGKILL, pause (SIGSTOP) and start again with the
/// same spec: same ports, same data directory, as <c>./kdb up -d</c> brings a dead service back.
/// </summary>
public class ServiceProcess(ProcessSpec spec) : IAsyncDisposable
{
    private ILaunchedProcess? _process;
    private string _previousLogs = string.Empty;

    /// <summary>The running process, for <see cref="ProcessLauncher.WriteLogsOnFailureAsync"/>; null while stopped.</summary>
    public ILaunchedProcess? Process => _process;

    public string Name => spec.Name ?? "service";

    public bool Running => _process is { HasExited: false };

    /// <summary>Everything the service wrote, across restarts (the last 20,000 characters).</summary>
    public string Log => Tail(_previousLogs + (_process?.Log ?? string.Empty));

    public async Task StartAsync()
    {
        if (_process is not null)
        {
            throw new InvalidOperationException($"{Name} is already running");
        }
        _process = await ProcessLauncher.StartAsync(spec);
    }

    /// <summary>Graceful stop: SIGTERM, then SIGKILL after the spec's grace period.</summary>
    public async Task StopAsync()
    {
        if (_process is null)
        {
            return;
        }
        await ResumeAsync();
        _previousLogs = Tail(_previousLogs + _process.Log + "\n");
        await _process.DisposeAsync();
        _process = null;
    }

    /// <summary>SIGKILL of the whole process tree: no shutdown hook runs.</summary>
    public async Task KillAsync()
    {
        if (_process is null)
        {
            return;
        }
        await ProcessTree.KillAndWaitAsync(_process.ProcessId);
        await StopAsync();
    }

    /// <summary>SIGSTOP of the process tree: it keeps its sockets but answers nothing, as a node stalled by the host.</summary>
    public Task PauseAsync() => SignalAsync("-STOP");

    public Task ResumeAsync() => SignalAsync("-CONT");

    public async Task RestartAsync(bool kill)
    {
        if (kill)
        {
            await KillAsync();
        }
        else
        {
            await StopAsync();
        }
        await StartAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        GC.SuppressFinalize(this);
    }

    private async Task SignalAsync(string signal)
    {
        if (_process is null)
        {
            return;
        }
        var info = new ProcessStartInfo("kill") { UseShellExecute = false, RedirectStandardError = true };
        info.ArgumentList.Add(signal);
        foreach (var pid in ProcessTree.Members(_process.ProcessId))
        {
            info.ArgumentList.Add(pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        using var kill = System.Diagnostics.Process.Start(info)!;
        await kill.WaitForExitAsync();
    }

    private static string Tail(string text) => text.Length > 20000 ? text[^20000..] : text;
}
