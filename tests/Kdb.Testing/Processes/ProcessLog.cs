using System.Text;
using Xunit.Abstractions;

namespace Kdb.Testing.Processes;

/// <summary>Thread-safe capture of a process's output lines, bounded so a chatty process cannot exhaust memory.</summary>
internal sealed class ProcessLog(string name, ITestOutputHelper? live)
{
    /// <summary>Completes when the process's stdout reaches end of file.</summary>
    internal TaskCompletionSource OutputClosed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when the process's stderr reaches end of file.</summary>
    internal TaskCompletionSource ErrorClosed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Enough for any start-up failure or a long test; older lines are dropped (and counted) past it.
    private const int MaxLines = 50_000;

    private readonly Lock _gate = new();
    private readonly Queue<(bool IsError, string Text)> _lines = new();
    private long _dropped;
    private ITestOutputHelper? _live = live;

    public void Append(bool isError, string text)
    {
        ITestOutputHelper? live;
        lock (_gate)
        {
            if (_lines.Count == MaxLines)
            {
                _lines.Dequeue();
                _dropped++;
            }

            _lines.Enqueue((isError, text));
            live = _live;
        }

        if (live is null)
        {
            return;
        }

        try
        {
            live.WriteLine($"[{name}] {(isError ? "err" : "out")}| {text}");
        }
        catch (InvalidOperationException)
        {
            // xunit refuses output once the test that owns the helper has finished; the process may outlive
            // it (a class fixture), so live streaming just stops and the log stays available for later.
            lock (_gate)
            {
                _live = null;
            }
        }
    }

    public string Render(bool? errorStream)
    {
        var builder = new StringBuilder();
        lock (_gate)
        {
            if (_dropped > 0 && errorStream is null)
            {
                builder.Append("... ").Append(_dropped).Append(" earlier lines dropped ...\n");
            }

            foreach (var (isError, text) in _lines)
            {
                if (errorStream is null)
                {
                    builder.Append(isError ? "err| " : "out| ").Append(text).Append('\n');
                }
                else if (errorStream == isError)
                {
                    builder.Append(text).Append('\n');
                }
            }
        }

        return builder.ToString();
    }

    public bool Contains(string text)
    {
        lock (_gate)
        {
            foreach (var (_, line) in _lines)
            {
                if (line.Contains(text, StringComparison.Ordinal))
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>The last <paramref name="count"/> lines, for exception messages.</summary>
    public string Tail(int count)
    {
        lock (_gate)
        {
            var skip = Math.Max(0, _lines.Count - count);
            var builder = new StringBuilder();
            foreach (var (isError, text) in _lines.Skip(skip))
            {
                builder.Append(isError ? "err| " : "out| ").Append(text).Append('\n');
            }

            return builder.ToString();
        }
    }
}
