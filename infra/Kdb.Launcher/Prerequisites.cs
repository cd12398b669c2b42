using Spectre.Console;

namespace Kdb.Launcher;

/// <summary>
/// Debian packages the commands need. As root on Debian they are installed with apt; otherwise the
/// launcher names exactly what is missing and stops.
/// </summary>
internal static class Prerequisites
{
    public sealed record Requirement(string Package, string ProbePath, string Why);

    public static readonly Requirement PostgresServer = new("postgresql-15", "/usr/lib/postgresql/15/bin/postgres", "the control plane's private PostgreSQL");
    public static readonly Requirement RabbitMq = new("rabbitmq-server", RabbitMqService.ServerPath, "the RabbitMQ bus (--bus rabbitmq, bus tests)");
    public static readonly Requirement Chromium = new("chromium", "/usr/bin/chromium", "the portal's browser tests");

    public static async Task EnsureAsync(IAnsiConsole console, params Requirement[] requirements)
    {
        var missing = requirements.Where(r => !File.Exists(r.ProbePath)).ToList();
        if (missing.Count == 0)
        {
            return;
        }

        var names = string.Join(' ', missing.Select(m => m.Package));
        if (!Native.IsRoot || !File.Exists("/usr/bin/apt-get"))
        {
            throw new LauncherException(
                "missing prerequisites: " + string.Join("; ", missing.Select(m => $"{m.Package} ({m.Why})")) +
                $"\ninstall them with: sudo apt-get install -y {names}", 3);
        }

        console.MarkupLineInterpolated($"[grey]installing {names} with apt…[/]");
        var env = new Dictionary<string, string> { ["DEBIAN_FRONTEND"] = "noninteractive" };
        var (code, output) = await ProcessControl.RunAsync("apt-get", ["install", "-y", "-q", .. missing.Select(m => m.Package)], env, timeout: TimeSpan.FromMinutes(10));
        if (code != 0)
        {
            // A fresh machine may have no package lists yet.
            (code, output) = await ProcessControl.RunAsync("apt-get", ["update", "-q"], env, timeout: TimeSpan.FromMinutes(5));
            if (code == 0)
            {
                (code, output) = await ProcessControl.RunAsync("apt-get", ["install", "-y", "-q", .. missing.Select(m => m.Package)], env, timeout: TimeSpan.FromMinutes(10));
            }
        }

        if (code != 0 || missing.Any(m => !File.Exists(m.ProbePath)))
        {
            throw new LauncherException($"apt-get install {names} failed (exit {code}):\n{Tail(output, 20)}", 3);
        }

        // The Debian package starts a system-wide broker; ours are private, so keep the shared one off
        // (it would also hold the default ports).
        if (missing.Contains(RabbitMq))
        {
            await ProcessControl.RunAsync("sh", ["-c", "service rabbitmq-server stop >/dev/null 2>&1; systemctl disable --now rabbitmq-server >/dev/null 2>&1; pkill -u rabbitmq beam.smp; pkill -u rabbitmq epmd; true"]);
        }
    }

    public static string Tail(string text, int lines)
    {
        var all = text.Split('\n');
        return string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
    }
}
