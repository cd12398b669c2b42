using Kdb.Testing.Ports;
using Kdb.Testing.Processes;
using Npgsql;

namespace Kdb.Testing.Postgres;

/// <summary>A private PostgreSQL server: its own data directory under /tmp, a free loopback port, and its own socket directory.</summary>
internal sealed class PostgresServer : IAsyncDisposable
{
    public const string Superuser = "postgres";
    public const string SuperuserPassword = "kdb-test-password";
    private const string ServiceAccount = "postgres";

    private readonly DirectoryInfo _root;
    private readonly string _binDirectory;
    private ILaunchedProcess? _process;

    private PostgresServer(DirectoryInfo root, string binDirectory, int port)
    {
        _root = root;
        _binDirectory = binDirectory;
        Port = port;
    }

    public int Port { get; }

    public string DataDirectory => Path.Combine(_root.FullName, "data");

    public string SocketDirectory => Path.Combine(_root.FullName, "socket");

    public string RootDirectory => _root.FullName;

    public string Log => _process?.Log ?? string.Empty;

    public string ConnectionString(string database) => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1",
        Port = Port,
        Username = Superuser,
        Password = SuperuserPassword,
        Database = database,
        IncludeErrorDetail = true,
    }.ConnectionString;

    public static async Task<PostgresServer> StartAsync(CancellationToken cancellationToken)
    {
        var bin = FindBinDirectory();
        var server = new PostgresServer(Directory.CreateTempSubdirectory("kdb-pg-"), bin, FreePorts.Allocate());
        try
        {
            await server.InitializeAsync(cancellationToken);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    private async Task InitializeAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(SocketDirectory);
        var passwordFile = Path.Combine(_root.FullName, "superuser-password");
        await File.WriteAllTextAsync(passwordFile, SuperuserPassword + "\n", cancellationToken);
        await Commands.ChownAsync(_root.FullName, ServiceAccount, cancellationToken);

        // --no-sync and the settings below trade durability for speed: the directory is thrown away afterwards.
        await Commands.RunAsync(
            Tool("initdb") with
            {
                Arguments =
                [
                    "-D", DataDirectory, "-U", Superuser, $"--pwfile={passwordFile}", "--auth=trust",
                    "--encoding=UTF8", "--no-locale", "--no-sync", "--no-instructions",
                ],
            },
            cancellationToken);

        _process = await ProcessLauncher.StartAsync(
            Tool("postgres") with
            {
                Name = $"postgres:{Port}",
                Arguments =
                [
                    "-D", DataDirectory, "-p", Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    "-k", SocketDirectory,
                    "-c", "listen_addresses=127.0.0.1",
                    "-c", "fsync=off",
                    "-c", "synchronous_commit=off",
                    "-c", "full_page_writes=off",
                    "-c", "wal_level=minimal",
                    "-c", "max_wal_senders=0",
                    "-c", "checkpoint_timeout=1d",
                    "-c", "max_connections=200",
                    "-c", "shared_buffers=64MB",
                ],
                Readiness = Readiness.Custom($"PostgreSQL answers SELECT 1 on 127.0.0.1:{Port}", CanQueryAsync),
                StopGracePeriod = TimeSpan.Zero,
            },
            cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is not null)
        {
            if (!_process.HasExited)
            {
                try
                {
                    await Commands.RunAsync(Tool("pg_ctl") with { Arguments = ["stop", "-D", DataDirectory, "-m", "immediate", "-w"] });
                }
                catch (InvalidOperationException)
                {
                    // The process-tree kill below stops the server anyway; pg_ctl is only the polite way.
                }
            }

            await _process.DisposeAsync();
        }

        try
        {
            _root.Delete(recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    private async ValueTask<bool> CanQueryAsync(CancellationToken cancellationToken)
    {
        var builder = new NpgsqlConnectionStringBuilder(ConnectionString("postgres")) { Pooling = false, Timeout = 3 };
        await using var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand("SELECT 1", connection);
        return (int)(await command.ExecuteScalarAsync(cancellationToken))! == 1;
    }

    private ProcessSpec Tool(string name) => new(Path.Combine(_binDirectory, name), [])
    {
        Name = name,
        RunAsUser = ServiceAccount,
        WorkingDirectory = _root.FullName,
        InheritEnvironment = false,
    };

    private static string FindBinDirectory()
    {
        var configured = Environment.GetEnvironmentVariable("KDB_TEST_PG_BIN");
        if (!string.IsNullOrEmpty(configured))
        {
            return File.Exists(Path.Combine(configured, "postgres"))
                ? configured
                : throw new InvalidOperationException($"KDB_TEST_PG_BIN={configured} holds no 'postgres' binary.");
        }

        const string preferred = "/usr/lib/postgresql/15/bin";
        if (File.Exists(Path.Combine(preferred, "postgres")))
        {
            return preferred;
        }

        if (Directory.Exists("/usr/lib/postgresql"))
        {
            foreach (var candidate in Directory.GetDirectories("/usr/lib/postgresql").OrderDescending(StringComparer.Ordinal))
            {
                var bin = Path.Combine(candidate, "bin");
                if (File.Exists(Path.Combine(bin, "postgres")))
                {
                    return bin;
                }
            }
        }

        throw new InvalidOperationException(
            "No PostgreSQL server binaries found in /usr/lib/postgresql/<version>/bin: install them " +
            "(apt-get install -y postgresql-15) or set KDB_TEST_PG_BIN to the directory holding initdb and postgres.");
    }
}
