using Spectre.Console;

namespace Kdb.Launcher;

/// <summary><c>./kdb logs SERVICE [-f]</c>: what a service printed.</summary>
internal sealed class LogsCommand(KdbPaths paths, IAnsiConsole console)
{
    public async Task<int> RunAsync(string service, bool follow, int lines, CancellationToken cancellationToken)
    {
        var file = paths.LogFile(service);
        if (!File.Exists(file))
        {
            var known = Directory.Exists(paths.Logs)
                ? string.Join(", ", Directory.EnumerateFiles(paths.Logs, "*.log").Select(Path.GetFileNameWithoutExtension).Order(StringComparer.Ordinal))
                : string.Empty;
            throw new LauncherException($"no log for '{service}'" + (known.Length > 0 ? $" (known: {known})" : " (nothing has run yet)"), 2);
        }

        var writer = console.Profile.Out.Writer;
        await using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        var text = await reader.ReadToEndAsync(cancellationToken);
        await writer.WriteAsync(lines > 0 ? Prerequisites.Tail(text.TrimEnd('\n'), lines) + "\n" : text);
        while (follow && !cancellationToken.IsCancellationRequested)
        {
            var more = await reader.ReadToEndAsync(cancellationToken);
            if (more.Length > 0)
            {
                await writer.WriteAsync(more);
                await writer.FlushAsync(cancellationToken);
            }
            else
            {
                await Task.Delay(250, cancellationToken);
            }
        }

        return 0;
    }
}
