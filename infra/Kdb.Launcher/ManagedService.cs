namespace Kdb.Launcher;

/// <summary>One process of the local cloud that the launcher starts, finds, probes and stops.</summary>
internal interface IManagedService
{
    /// <summary>Name used in <c>status</c>, <c>logs</c> and pid files.</summary>
    string Name { get; }

    /// <summary>Loopback ports the service listens on; all must be free before it starts.</summary>
    IReadOnlyList<int> Ports { get; }

    /// <summary>What <c>status</c> shows as the service's address.</summary>
    string Url { get; }

    /// <summary>The running process, when there is one.</summary>
    ProcessHandle? FindRunning();

    Task StartAsync(CancellationToken cancellationToken);

    Task<bool> IsReadyAsync(CancellationToken cancellationToken);

    Task StopAsync();
}

/// <summary>A .NET service host started as <c>dotnet &lt;dll&gt;</c>, ready when its readiness URL answers 200.</summary>
internal sealed class DotnetService(
    KdbPaths paths,
    string name,
    string dll,
    IReadOnlyList<int> ports,
    Uri readyUrl,
    string url,
    IReadOnlyDictionary<string, string> environment) : IManagedService
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(2) };

    public string Name => name;

    public IReadOnlyList<int> Ports => ports;

    public string Url => url;

    public Uri ReadyUrl => readyUrl;

    public string Dll => dll;

    public IReadOnlyDictionary<string, string> Environment => environment;

    public ProcessHandle? FindRunning() =>
        ProcessControl.ReadPidFile(paths.PidFile(name)) is { } handle && ProcessControl.IsAlive(handle) ? handle : null;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!File.Exists(dll))
        {
            throw new LauncherException($"{name}: {dll} is not built (run ./kdb up, which builds Release first).");
        }

        var handle = ProcessControl.StartDetached("dotnet", [dll], environment, paths.Root, paths.LogFile(name));
        ProcessControl.WritePidFile(paths.PidFile(name), handle);
        return Task.CompletedTask;
    }

    public async Task<bool> IsReadyAsync(CancellationToken cancellationToken)
    {
        try
        {
            using var response = await Http.GetAsync(readyUrl, cancellationToken);
            return response.IsSuccessStatusCode;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            return false;
        }
    }

    public async Task StopAsync()
    {
        if (ProcessControl.ReadPidFile(paths.PidFile(name)) is { } handle)
        {
            await ProcessControl.StopAsync(handle, TimeSpan.FromSeconds(15));
            File.Delete(paths.PidFile(name));
        }
    }
}

/// <summary>An error the launcher reports as one clear line and a non-zero exit.</summary>
internal sealed class LauncherException(string message, int exitCode = 1) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
