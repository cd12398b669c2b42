namespace Kdb.Launcher;

/// <summary>Where the launcher finds the checkout and keeps local-cloud state (<c>.kdb/</c>).</summary>
internal sealed record KdbPaths(string Root, string State)
{
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
    /// Kdb.Cloud.sln; state lives in <c>KDB_STATE_DIR</c> or <c>&lt;root&gt;/.kdb</c>.
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
        return new KdbPaths(root, Path.GetFullPath(string.IsNullOrEmpty(state) ? Path.Combine(root, ".kdb") : state));
    }

    public void EnsureDirectories()
    {
        foreach (var dir in new[] { State, Logs, Run, Tls, Nodes })
        {
            Directory.CreateDirectory(dir);
        }
    }
}
