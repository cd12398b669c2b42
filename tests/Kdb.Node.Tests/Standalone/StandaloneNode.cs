using System.Globalization;
using Kdb.Testing.Hosting;
using Kdb.Testing.Ports;
using Kdb.Testing.Processes;
using Npgsql;

namespace Kdb.Node.Tests.Standalone;

/// <summary>
/// A standalone kdb node as a real process (<c>dotnet Kdb.Node.dll --standalone</c>) on free loopback ports with a
/// temporary data directory; database <see cref="Database"/> with roles owner / readwrite / readonly.
/// </summary>
public sealed class StandaloneNode : IAsyncDisposable
{
    public const string Database = "app";
    public const string Owner = "owner";
    public const string OwnerPassword = "owner-secret-1";
    public const string Reader = "reader";
    public const string ReaderPassword = "reader-secret-2";

    private readonly bool _ownsDirectory;
    private ILaunchedProcess? _process;

    private StandaloneNode(string dataDirectory, bool ownsDirectory)
    {
        DataDirectory = dataDirectory;
        _ownsDirectory = ownsDirectory;
        PgPort = FreePorts.Allocate();
        ManagementPort = FreePorts.Allocate();
    }

    public string DataDirectory { get; }

    public int PgPort { get; }

    public int ManagementPort { get; }

    public ILaunchedProcess Process => _process ?? throw new InvalidOperationException("not started");

    /// <summary>Npgsql's default settings (type loading on, binary results), pooling as given.</summary>
    public string ConnectionString(string user = Owner, string password = OwnerPassword, string database = Database, string extra = "") =>
        $"Host=127.0.0.1;Port={PgPort};Username={user};Password={password};Database={database};Timeout=30;Command Timeout=60;{extra}";

    /// <summary>Starts a node on a new temporary data directory.</summary>
    public static Task<StandaloneNode> StartAsync(IReadOnlyDictionary<string, string>? settings = null) =>
        StartAsync(Path.Combine(Path.GetTempPath(), "kdb-standalone-" + Guid.NewGuid().ToString("N")), true, settings);

    /// <summary>Starts another node process on the same data directory (after the first one stopped).</summary>
    public Task<StandaloneNode> RestartOnSameDataAsync(IReadOnlyDictionary<string, string>? settings = null) =>
        StartAsync(DataDirectory, false, settings);

    private static async Task<StandaloneNode> StartAsync(string dataDirectory, bool owns, IReadOnlyDictionary<string, string>? settings)
    {
        var node = new StandaloneNode(dataDirectory, owns);
        var environment = new Dictionary<string, string?>
        {
            ["Standalone__Databases__app__Roles__owner__Kind"] = "owner",
            ["Standalone__Databases__app__Roles__owner__Password"] = OwnerPassword,
            ["Standalone__Databases__app__Roles__reader__Kind"] = "readonly",
            ["Standalone__Databases__app__Roles__reader__Password"] = ReaderPassword,
            ["Standalone__Databases__other__Roles__owner__Password"] = "other-secret",
            ["Logging__LogLevel__Default"] = "Warning",
            ["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Information",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }

        var spec = ProcessSpec.DotNet(
            RepoPaths.BuiltAssembly("dataplane/Kdb.Node"),
            "--standalone",
            "--Node:DataDirectory=" + dataDirectory,
            "--Node:PgPort=" + node.PgPort.ToString(CultureInfo.InvariantCulture),
            "--Node:ManagementPort=" + node.ManagementPort.ToString(CultureInfo.InvariantCulture)) with
        {
            Name = "kdb-node",
            Environment = environment,
            Readiness = Readiness.Tcp(node.PgPort),
            StopGracePeriod = TimeSpan.FromSeconds(10),
        };
        node._process = await ProcessLauncher.StartAsync(spec);
        return node;
    }

    /// <summary>Opens a connection with Npgsql's defaults.</summary>
    public async Task<NpgsqlConnection> OpenAsync(string extra = "")
    {
        var connection = new NpgsqlConnection(ConnectionString(extra: extra));
        await connection.OpenAsync();
        return connection;
    }

    /// <summary>Stops the process (SIGTERM, then SIGKILL after the grace period); the data directory stays.</summary>
    public async Task StopAsync()
    {
        if (_process is not null)
        {
            await _process.DisposeAsync();
            _process = null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await StopAsync();
        if (_ownsDirectory)
        {
            try
            {
                Directory.Delete(DataDirectory, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}

/// <summary>One node shared by the classes of the standalone collection.</summary>
public sealed class StandaloneNodeFixture : IAsyncLifetime
{
    public StandaloneNode Node { get; private set; } = null!;

    public async Task InitializeAsync() => Node = await StandaloneNode.StartAsync();

    public async Task DisposeAsync() => await Node.DisposeAsync();
}

/// <summary>
/// Every class that runs real processes against a standalone node: one collection, so they run one after another
/// and do not compete for this machine's two cores.
/// </summary>
[CollectionDefinition(Name)]
public sealed class StandaloneCollection : ICollectionFixture<StandaloneNodeFixture>
{
    public const string Name = "standalone-node";
}
