namespace Kdb.Launcher;

/// <summary>Where the launcher finds the checkout and keeps local-cloud state (<c>.kdb/</c>).</summary>
internal sealed record KdbPaths(string Root, string State)
{
    /// <summary>
    /// Added to every port of DESIGN.md's table: 0 for <c>./kdb up</c>; a test shifts its own local cloud so it runs
    /// beside one a developer has up.
    /// </summary>
    public int PortOffset { get; init; }

    /// <summary>The build of the service hosts that runs: Release for <c>./kdb up</c>, the Debug build a test project made.</summary>
    public string Configuration { get; init; } = "Release";

    /// <summary>A DESIGN.md port (<see cref="CloudOptions"/>) as this local cloud uses it.</summary>
    public int Port(int designPort) => designPort + PortOffset;

    public string Logs => Path.Combine(State, "logs");

    public string Run => Path.Combine(State, "run");

    public string Tls => Path.Combine(State, "tls");

    public string SecretsFile => Path.Combine(State, "secrets.env");

    public string PostgresData => Path.Combine(State, "postgres", "data");

    public string PostgresSockets => Path.Combine(State, "postgres", "sockets");

    public string RabbitMq => Path.Combine(State, "rabbitmq");

    public string Nodes => Path.Combine(State, "nodes");

    public string TestResults => Path.Combine(State, "test-results");

    /// <summary>Where the control plane's default mail sender writes <c>.eml</c> files (<c>./kdb mail</c>).</summary>
    public string Mail => Path.Combine(State, "mail");

    /// <summary>The demo account and database seeded by <c>up</c>, shell-sourceable.</summary>
    public string DemoEnvFile => Path.Combine(State, "demo.env");

    public string Solution => Path.Combine(Root, "Kdb.Cloud.sln");

    public string LogFile(string service) => Path.Combine(Logs, service + ".log");

    public string PidFile(string service) => Path.Combine(Run, service + ".pid");

    /// <summary>
    /// The checkout is <c>KDB_ROOT</c> (set by the <c>./kdb</c> script) or the nearest parent holding
    /// Kdb.Cloud.sln; state lives in <c>KDB_STATE_DIR</c> or <c>&lt;root&gt;/.kdb</c>; <c>KDB_PORT_OFFSET</c> shifts every port and
    /// <c>KDB_CONFIGURATION</c> picks the build of the services (Release).
    /// </summary>
    public static KdbPaths Discover()
    {
        var root = Environment.GetEnvironmentVariable("KDB_ROOT");
        if (string.IsNullOrEmpty(root))
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Kdb.Cloud.sln")))
            {
                dir = dir.Parent;
            }

            root = dir?.FullName ?? Directory.GetCurrentDirectory();
        }

        root = Path.GetFullPath(root);
        var state = Environment.GetEnvironmentVariable("KDB_STATE_DIR");
        var offset = Environment.GetEnvironmentVariable("KDB_PORT_OFFSET");
        return new KdbPaths(root, Path.GetFullPath(string.IsNullOrEmpty(state) ? Path.Combine(root, ".kdb") : state))
        {
            // A second local cloud beside the first: its own state directory and every port shifted.
            PortOffset = int.TryParse(offset, System.Globalization.CultureInfo.InvariantCulture, out var shift) ? shift : 0,
            Configuration = Environment.GetEnvironmentVariable("KDB_CONFIGURATION") is { Length: > 0 } configuration ? configuration : "Release",
        };
    }

    public void EnsureDirectories()
    {
        foreach (var dir in new[] { State, Logs, Run, Tls, Nodes })
        {
            Directory.CreateDirectory(dir);
        }
    }
}
