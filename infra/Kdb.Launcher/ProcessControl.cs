using System.Diagnostics;
using System.Globalization;

namespace Kdb.Launcher;

/// <summary>A process the launcher started: its pid and the kernel's start time, which guards against pid reuse.</summary>
internal readonly record struct ProcessHandle(int Pid, long StartTicks);

/// <summary>Starts services detached from the launcher, finds them again through pid files, and stops them.</summary>
internal static class ProcessControl
{
    /// <summary>
    /// Starts <paramref name="fileName"/> in a session of its own (so Ctrl-C in the terminal reaches only
    /// the launcher, which then stops services in order) with output appended to <paramref name="logFile"/>.
    /// The shell <c>exec</c>s the program, so the pid returned is the service's own.
    /// </summary>
    public static ProcessHandle StartDetached(string fileName, IReadOnlyList<string> args, IReadOnlyDictionary<string, string> env, string workingDirectory, string logFile)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(logFile)!);
        var psi = new ProcessStartInfo("setsid")
        {
            WorkingDirectory = workingDirectory,
            UseShellExecute = false,
            RedirectStandardInput = false,
            RedirectStandardOutput = false,
            RedirectStandardError = false,
        };
        psi.ArgumentList.Add("/bin/sh");
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("exec \"$0\" \"$@\" </dev/null >>\"$KDB_LAUNCH_LOG\" 2>&1");
        psi.ArgumentList.Add(fileName);
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in env)
        {
            psi.Environment[key] = value;
        }

        psi.Environment["KDB_LAUNCH_LOG"] = logFile;
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {fileName}");
        var pid = process.Id;
        return new ProcessHandle(pid, ReadStartTicks(pid) ?? 0);
    }

    /// <summary>The kernel's start time of <paramref name="pid"/> (clock ticks since boot), or null when it is gone.</summary>
    public static long? ReadStartTicks(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
            var rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            if (rest[0] == "Z")
            {
                return null;
            }

            return long.Parse(rest[19], CultureInfo.InvariantCulture);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>True while any live (non-zombie) process belongs to process group <paramref name="pgid"/>.</summary>
    public static bool GroupAlive(int pgid)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), CultureInfo.InvariantCulture, out _))
            {
                continue;
            }

            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (rest[0] != "Z" && int.Parse(rest[2], CultureInfo.InvariantCulture) == pgid)
                {
                    return true;
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
            {
                // The process ended while we looked.
            }
        }

        return false;
    }

    public static bool IsAlive(ProcessHandle handle) =>
        handle.Pid > 0 && ReadStartTicks(handle.Pid) is { } ticks && (handle.StartTicks == 0 || ticks == handle.StartTicks);

    public static void WritePidFile(string path, ProcessHandle handle) =>
        FileUtil.WriteAtomic(path, string.Create(CultureInfo.InvariantCulture, $"{handle.Pid} {handle.StartTicks}\n"));

    public static ProcessHandle? ReadPidFile(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        var parts = File.ReadAllText(path).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return parts.Length >= 1 && int.TryParse(parts[0], CultureInfo.InvariantCulture, out var pid)
            ? new ProcessHandle(pid, parts.Length > 1 && long.TryParse(parts[1], CultureInfo.InvariantCulture, out var t) ? t : 0)
            : null;
    }

    /// <summary>SIGTERM to the process group, then SIGKILL after <paramref name="grace"/>.</summary>
    public static async Task StopAsync(ProcessHandle handle, TimeSpan grace)
    {
        if (!IsAlive(handle))
        {
            return;
        }

        // Detached services lead their own process group: signal the group so children go too.
        if (Native.Kill(-handle.Pid, Native.SigTerm) != 0)
        {
            Native.Kill(handle.Pid, Native.SigTerm);
        }

        // Done only when the whole group is gone: "down leaves no process behind".
        var deadline = DateTime.UtcNow + grace;
        while (DateTime.UtcNow < deadline)
        {
            if (!IsAlive(handle) && !GroupAlive(handle.Pid))
            {
                return;
            }

            await Task.Delay(100);
        }

        Native.Kill(-handle.Pid, Native.SigKill);
        Native.Kill(handle.Pid, Native.SigKill);
        for (var i = 0; i < 50 && (IsAlive(handle) || GroupAlive(handle.Pid)); i++)
        {
            await Task.Delay(100);
        }
    }

    /// <summary>Runs a command to completion, returning its exit code and combined output.</summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(string fileName, IEnumerable<string> args, IReadOnlyDictionary<string, string>? env = null, string? workingDirectory = null, TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            WorkingDirectory = workingDirectory ?? Directory.GetCurrentDirectory(),
        };
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        if (env is not null)
        {
            foreach (var (key, value) in env)
            {
                psi.Environment[key] = value;
            }
        }

        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {fileName}");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(10));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            return (-1, $"{fileName} timed out\n{await stdout}{await stderr}");
        }

        return (process.ExitCode, await stdout + await stderr);
    }
}
