using Xunit.Abstractions;

namespace Kdb.Testing.Processes;

/// <summary>
/// A process started by <see cref="ProcessLauncher"/>. Its stdout and stderr are captured from the start.
/// Disposing it stops the whole process tree: SIGTERM, then SIGKILL after the spec's grace period.
/// </summary>
public interface ILaunchedProcess : IAsyncDisposable
{
    /// <summary>Name from the spec, used to prefix log lines.</summary>
    string Name { get; }

    /// <summary>
    /// Operating-system id of the root of the launched tree: the leader of its own session and process group. On Linux
    /// that is a small supervising shell whose child is the command (it exits with the command's exit code).
    /// </summary>
    int ProcessId { get; }

    /// <summary>True once the launched process has exited (its children may live on until dispose).</summary>
    bool HasExited { get; }

    /// <summary>Exit code once exited, else null.</summary>
    int? ExitCode { get; }

    /// <summary>Captured stdout lines so far, newline-separated.</summary>
    string StandardOutput { get; }

    /// <summary>Captured stderr lines so far, newline-separated.</summary>
    string StandardError { get; }

    /// <summary>Both streams interleaved in arrival order, each line prefixed with <c>out| </c> or <c>err| </c>.</summary>
    string Log { get; }

    /// <summary>True when a captured line of either stream contains <paramref name="text"/> (ordinal).</summary>
    bool LogContains(string text);

    /// <summary>Writes the captured log to a test's output (what a failing test should do before it ends).</summary>
    void WriteLogTo(ITestOutputHelper output);

    /// <summary>Waits for the launched process to exit and returns its exit code.</summary>
    Task<int> WaitForExitAsync(CancellationToken cancellationToken = default);
}
