using Xunit.Abstractions;

namespace Kdb.Testing.Processes;

/// <summary>
/// Starts service hosts, data-plane nodes and servers as real processes and waits until they are ready.
/// </summary>
public static class ProcessLauncher
{
    /// <summary>
    /// Starts the process described by <paramref name="spec"/> and returns once its readiness probe holds.
    /// </summary>
    /// <exception cref="ProcessLaunchException">
    /// It could not be started, exited before it was ready, or was not ready within the spec's timeout; the process
    /// tree is stopped and the exception carries its output.
    /// </exception>
    public static async Task<ILaunchedProcess> StartAsync(ProcessSpec spec, CancellationToken cancellationToken = default)
    {
        var process = LaunchedProcess.Start(spec);
        try
        {
            await process.WaitUntilReadyAsync(spec, cancellationToken);
            return process;
        }
        catch
        {
            await process.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Runs <paramref name="body"/>; if it throws, writes the captured log of each process to
    /// <paramref name="output"/> (so it appears with the failed test) and rethrows.
    /// </summary>
    public static async Task WriteLogsOnFailureAsync(ITestOutputHelper output, Func<Task> body, params ILaunchedProcess[] processes)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(body);
        try
        {
            await body();
        }
        catch (Exception)
        {
            foreach (var process in processes)
            {
                process.WriteLogTo(output);
            }

            throw;
        }
    }
}
