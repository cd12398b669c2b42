namespace Kdb.Testing.Processes;

/// <summary>Runs a short command to completion (initdb, chown, pg_ctl stop, rabbitmqctl) and checks its exit code.</summary>
internal static class Commands
{
    /// <summary>Runs <paramref name="spec"/> until it exits and returns its stdout.</summary>
    /// <exception cref="InvalidOperationException">It exited with a non-zero code; the message carries its output.</exception>
    public static async Task<string> RunAsync(ProcessSpec spec, CancellationToken cancellationToken = default)
    {
        var process = await ProcessLauncher.StartAsync(spec with { Readiness = null }, cancellationToken);
        await using (process)
        {
            var code = await process.WaitForExitAsync(cancellationToken);
            if (code != 0)
            {
                throw new InvalidOperationException(
                    $"{process.Name} ({spec.FileName} {string.Join(' ', spec.Arguments)}) failed with exit code {code}:\n{process.Log}");
            }

            return process.StandardOutput;
        }
    }

    /// <summary>Gives <paramref name="path"/> (recursively) to <paramref name="user"/> when running as root; no-op otherwise.</summary>
    public static async Task ChownAsync(string path, string user, CancellationToken cancellationToken = default)
    {
        if (!Privileges.NeedsSwitch(user))
        {
            return;
        }

        await RunAsync(new ProcessSpec("chown", ["-R", $"{user}:", path]) { Name = "chown" }, cancellationToken);
    }
}
