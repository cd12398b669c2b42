using System.Collections.Concurrent;
using Xunit.Abstractions;

namespace Kdb.Testing.Tests;

/// <summary>Forwards to the test's real output and keeps a copy, so a test can check what was written there.</summary>
internal sealed class RecordingOutput(ITestOutputHelper inner) : ITestOutputHelper
{
    private readonly ConcurrentQueue<string> _lines = new();

    public string Text => string.Join('\n', _lines);

    public void WriteLine(string message)
    {
        _lines.Enqueue(message);
        inner.WriteLine(message);
    }

    public void WriteLine(string format, params object[] args) => WriteLine(string.Format(System.Globalization.CultureInfo.InvariantCulture, format, args));
}

internal static class ProcState
{
    /// <summary>True when a live (non-zombie) process has this id.</summary>
    public static bool IsAlive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..][0];
            return state is not ('Z' or 'X');
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Waits (bounded) for a process to die; returns whether it did. Only a safety bound, never a timing check.</summary>
    public static async Task<bool> WaitDeadAsync(int pid)
    {
        for (var i = 0; i < 400; i++)
        {
            if (!IsAlive(pid))
            {
                return true;
            }

            await Task.Delay(50);
        }

        return false;
    }
}

internal static class LogWait
{
    /// <summary>
    /// Waits (bounded) until the process's captured output contains <paramref name="text"/>: output travels through a
    /// pipe and a reader thread, so a line written just before an event the test observed may still be on its way.
    /// </summary>
    public static async Task<bool> ContainsAsync(Kdb.Testing.Processes.ILaunchedProcess process, string text)
    {
        for (var i = 0; i < 400; i++)
        {
            if (process.LogContains(text))
            {
                return true;
            }

            await Task.Delay(50);
        }

        return false;
    }
}
