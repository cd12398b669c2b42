using System.Globalization;

namespace Kdb.Launcher;

/// <summary>
/// The control plane's private PostgreSQL: its own cluster under <c>.kdb/postgres</c> (never the system
/// one), initialised on first run, run as the <c>postgres</c> user when the launcher is root because
/// initdb and postgres refuse to run as root.
/// </summary>
internal sealed class PostgresService(KdbPaths paths, Secrets secrets, int port) : IManagedService
{
    public const string Bin = "/usr/lib/postgresql/15/bin";
    public const string ControlPlaneDatabase = "kdb_controlplane";

    public string Name => "postgres";

    public IReadOnlyList<int> Ports => [port];

    public string Url => $"postgresql://127.0.0.1:{port}/{ControlPlaneDatabase}";

    public string ConnectionString =>
        $"Host=127.0.0.1;Port={port};Username=postgres;Password={secrets["KDB_POSTGRES_PASSWORD"]};Database={ControlPlaneDatabase}";

    public ProcessHandle? FindRunning()
    {
        var pidFile = Path.Combine(paths.PostgresData, "postmaster.pid");
        try
        {
            if (!File.Exists(pidFile))
            {
                return null;
            }

            var first = File.ReadLines(pidFile).FirstOrDefault();
            return int.TryParse(first, CultureInfo.InvariantCulture, out var pid) && ProcessControl.ReadStartTicks(pid) is { } ticks
                ? new ProcessHandle(pid, ticks)
                : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!File.Exists(Path.Combine(Bin, "postgres")))
        {
            throw new LauncherException($"PostgreSQL 15 server binaries are missing from {Bin} (apt-get install postgresql-15).");
        }

        Directory.CreateDirectory(paths.PostgresSockets);
        var log = paths.LogFile(Name);
        if (!File.Exists(log))
        {
            await File.WriteAllTextAsync(log, string.Empty, cancellationToken);
        }

        if (!File.Exists(Path.Combine(paths.PostgresData, "PG_VERSION")))
        {
            await InitAsync(cancellationToken);
        }

        await ChownAsync(Path.Combine(paths.State, "postgres"), log);
        var options = string.Create(CultureInfo.InvariantCulture, $"-p {port} -c listen_addresses=127.0.0.1 -k {paths.PostgresSockets}");
        var (code, output) = await RunAsPostgresAsync(Path.Combine(Bin, "pg_ctl"), ["-D", paths.PostgresData, "-l", log, "-o", options, "-w", "-t", "60", "start"]);
        if (code != 0)
        {
            throw new LauncherException($"postgres did not start (pg_ctl exit {code}): {output.Trim()}\nsee {log}");
        }

        await EnsureDatabaseAsync();
    }

    public async Task<bool> IsReadyAsync(CancellationToken cancellationToken)
    {
        var (code, _) = await ProcessControl.RunAsync(Path.Combine(Bin, "pg_isready"), ["-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-d", ControlPlaneDatabase, "-U", "postgres"], timeout: TimeSpan.FromSeconds(5));
        return code == 0;
    }

    public async Task StopAsync()
    {
        if (FindRunning() is null)
        {
            return;
        }

        var (code, _) = await RunAsPostgresAsync(Path.Combine(Bin, "pg_ctl"), ["-D", paths.PostgresData, "-m", "fast", "-w", "-t", "30", "stop"]);
        if (code != 0 && FindRunning() is { } handle)
        {
            await ProcessControl.StopAsync(handle, TimeSpan.FromSeconds(5));
        }
    }

    private async Task InitAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(paths.PostgresData);
        var pwFile = Path.Combine(paths.State, "postgres", "pwfile");
        await File.WriteAllTextAsync(pwFile, secrets["KDB_POSTGRES_PASSWORD"] + "\n", cancellationToken);
        try
        {
            await ChownAsync(Path.Combine(paths.State, "postgres"));
            var (code, output) = await RunAsPostgresAsync(Path.Combine(Bin, "initdb"), ["-D", paths.PostgresData, "-U", "postgres", "--pwfile", pwFile, "-A", "scram-sha-256", "-E", "UTF8", "--locale", "C"]);
            if (code != 0)
            {
                throw new LauncherException($"initdb failed (exit {code}): {output.Trim()}");
            }
        }
        finally
        {
            File.Delete(pwFile);
        }
    }

    private async Task EnsureDatabaseAsync()
    {
        var env = new Dictionary<string, string> { ["PGPASSWORD"] = secrets["KDB_POSTGRES_PASSWORD"] };
        string[] common = ["-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-tA"];
        var (code, output) = await ProcessControl.RunAsync(Path.Combine(Bin, "psql"), [.. common, "-c", $"SELECT 1 FROM pg_database WHERE datname = '{ControlPlaneDatabase}'"], env);
        if (code != 0)
        {
            throw new LauncherException($"cannot query the private PostgreSQL: {output.Trim()}");
        }

        if (output.Trim() != "1")
        {
            (code, output) = await ProcessControl.RunAsync(Path.Combine(Bin, "psql"), [.. common, "-c", $"CREATE DATABASE {ControlPlaneDatabase}"], env);
            if (code != 0)
            {
                throw new LauncherException($"cannot create database {ControlPlaneDatabase}: {output.Trim()}");
            }
        }
    }

    private static Task<(int ExitCode, string Output)> RunAsPostgresAsync(string program, IEnumerable<string> args) =>
        Native.IsRoot
            ? ProcessControl.RunAsync("runuser", ["-u", "postgres", "--", program, .. args], timeout: TimeSpan.FromSeconds(90))
            : ProcessControl.RunAsync(program, args, timeout: TimeSpan.FromSeconds(90));

    private static async Task ChownAsync(params string[] targets)
    {
        if (!Native.IsRoot)
        {
            return;
        }

        var (code, output) = await ProcessControl.RunAsync("chown", ["-R", "postgres:postgres", .. targets]);
        if (code != 0)
        {
            throw new LauncherException($"chown to postgres failed: {output.Trim()}");
        }
    }
}
