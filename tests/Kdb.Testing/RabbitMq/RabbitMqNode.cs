using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Kdb.Testing.Ports;
using Kdb.Testing.Processes;

namespace Kdb.Testing.RabbitMq;

/// <summary>
/// A private RabbitMQ node: its own epmd, Erlang cookie, mnesia and config under /tmp, every port on loopback and
/// chosen explicitly (AMQP, distribution, epmd, CLI distribution) so nothing is derived past 65535.
/// </summary>
internal sealed class RabbitMqNode : IAsyncDisposable
{
    private const string ServiceAccount = "rabbitmq";
    private const string SbinDirectory = "/usr/lib/rabbitmq/bin";

    // Every rabbitmqctl call boots an Erlang VM (1-3 s on this machine), so virtual hosts for test classes are
    // created with the node, from a definitions file, and the CLI is only the fallback once they are used up.
    private const int VirtualHostPoolSize = 16;

    private static readonly SemaphoreSlim InstallGate = new(1, 1);

    private readonly DirectoryInfo _root;
    private readonly int _distributionPort;
    private readonly int _epmdPort;
    private readonly int _cliPort;

    // The CLI tools join the cluster as a hidden node on one fixed port, so they run one at a time.
    private readonly SemaphoreSlim _cliGate = new(1, 1);
    private ILaunchedProcess? _epmd;
    private ILaunchedProcess? _server;

    private RabbitMqNode(DirectoryInfo root)
    {
        _root = root;
        var ports = FreePorts.Allocate(4);
        AmqpPort = ports[0];
        _distributionPort = ports[1];
        _epmdPort = ports[2];
        _cliPort = ports[3];
        NodeName = $"kdbtest-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}@localhost";
        var poolTag = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
        PooledVirtualHosts = [.. Enumerable.Range(1, VirtualHostPoolSize).Select(i => $"kdb-{poolTag}-{i:00}")];
    }

    public int AmqpPort { get; }

    /// <summary>Virtual hosts created at boot (guest has full rights on each), handed out before the CLI is needed.</summary>
    public IReadOnlyList<string> PooledVirtualHosts { get; }

    public string NodeName { get; }

    public string Log => _server?.Log ?? string.Empty;

    private string Home => Path.Combine(_root.FullName, "home");

    public static async Task<RabbitMqNode> StartAsync(CancellationToken cancellationToken)
    {
        await EnsureInstalledAsync(cancellationToken);
        var node = new RabbitMqNode(Directory.CreateTempSubdirectory("kdb-rabbitmq-"));
        try
        {
            await node.InitializeAsync(cancellationToken);
            return node;
        }
        catch
        {
            await node.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs <c>rabbitmqctl</c> against this node and returns its stdout.</summary>
    public async Task<string> ControlAsync(IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        await _cliGate.WaitAsync(cancellationToken);
        try
        {
            string[] all = ["-n", NodeName, .. arguments];
            return await Commands.RunAsync(Tool("rabbitmqctl") with { Arguments = all }, cancellationToken);
        }
        finally
        {
            _cliGate.Release();
        }
    }

    /// <summary>Imports a definitions document (vhosts, users, permissions, ...) through <c>rabbitmqctl import_definitions</c>.</summary>
    public async Task ImportDefinitionsAsync(string json, CancellationToken cancellationToken)
    {
        var file = Path.Combine(_root.FullName, $"definitions-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(file, json, cancellationToken);
        try
        {
            // The file is read by the CLI running as the service account; the node directory is its own.
            await Commands.ChownAsync(file, ServiceAccount, cancellationToken);
            await ControlAsync(["import_definitions", file], cancellationToken);
        }
        finally
        {
            File.Delete(file);
        }
    }

    public async ValueTask DisposeAsync()
    {
        // The data is thrown away, so the node is killed outright (process group and all) rather than stopped.
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        if (_epmd is not null)
        {
            await _epmd.DisposeAsync();
        }

        try
        {
            _root.Delete(recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    private async Task InitializeAsync(CancellationToken cancellationToken)
    {
        var root = _root.FullName;
        Directory.CreateDirectory(Home);
        Directory.CreateDirectory(Path.Combine(root, "mnesia"));
        Directory.CreateDirectory(Path.Combine(root, "log"));
        await File.WriteAllTextAsync(Path.Combine(root, "enabled_plugins"), "[].\n", cancellationToken);
        await File.WriteAllTextAsync(Path.Combine(root, "boot-definitions.json"), BootDefinitions(), cancellationToken);
        await File.WriteAllTextAsync(Path.Combine(root, "rabbitmq-env.conf"), string.Empty, cancellationToken);
        await File.WriteAllTextAsync(
            Path.Combine(root, "rabbitmq.conf"),
            string.Create(
                CultureInfo.InvariantCulture,
                $"""
                listeners.tcp.1 = 127.0.0.1:{AmqpPort}
                loopback_users.guest = true
                log.console = true
                log.console.level = info
                log.file = false
                disk_free_limit.absolute = 10MB
                load_definitions = {Path.Combine(root, "boot-definitions.json")}

                """),
            cancellationToken);

        var cookie = Path.Combine(Home, ".erlang.cookie");
        await File.WriteAllTextAsync(cookie, Convert.ToHexString(RandomNumberGenerator.GetBytes(16)), cancellationToken);
        await Commands.ChownAsync(root, ServiceAccount, cancellationToken);

        // Erlang refuses a cookie file that others can read. (The guard only satisfies the platform analyzer:
        // this harness drives Linux binaries and never runs elsewhere.)
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(cookie, UnixFileMode.UserRead);
        }

        // Our own epmd, in the foreground, so it dies with the fixture instead of lingering as a daemon.
        _epmd = await ProcessLauncher.StartAsync(
            new ProcessSpec(FindEpmd(), ["-port", Invariant(_epmdPort), "-address", "127.0.0.1"])
            {
                Name = $"epmd:{_epmdPort}",
                RunAsUser = ServiceAccount,
                InheritEnvironment = false,
                WorkingDirectory = root,
                Readiness = Readiness.Tcp(_epmdPort),
                StopGracePeriod = TimeSpan.Zero,
            },
            cancellationToken);

        _server = await ProcessLauncher.StartAsync(
            Tool("rabbitmq-server") with
            {
                Name = $"rabbitmq:{AmqpPort}",
                Readiness = Readiness.All(Readiness.LogContains("Server startup complete"), Readiness.Tcp(AmqpPort)),
                StopGracePeriod = TimeSpan.Zero,
            },
            cancellationToken);
    }

    /// <summary>
    /// Definitions loaded at boot. Loading definitions stops RabbitMQ from seeding its default user and virtual host,
    /// so both are declared here: guest/guest (SHA-256 hashed the way RabbitMQ does: base64(salt + SHA-256(salt +
    /// password))), "/", and the pooled virtual hosts, with guest allowed everything on each.
    /// </summary>
    private string BootDefinitions()
    {
        var salt = RandomNumberGenerator.GetBytes(4);
        byte[] salted = [.. salt, .. System.Text.Encoding.UTF8.GetBytes("guest")];
        var hash = Convert.ToBase64String([.. salt, .. SHA256.HashData(salted)]);
        string[] hosts = ["/", .. PooledVirtualHosts];
        return JsonSerializer.Serialize(new
        {
            users = new[]
            {
                new { name = "guest", password_hash = hash, hashing_algorithm = "rabbit_password_hashing_sha256", tags = "administrator" },
            },
            vhosts = hosts.Select(name => new { name }).ToArray(),
            permissions = hosts.Select(vhost => new { user = "guest", vhost, configure = ".*", write = ".*", read = ".*" }).ToArray(),
        });
    }

    private ProcessSpec Tool(string name)
    {
        var root = _root.FullName;
        return new ProcessSpec(Path.Combine(SbinDirectory, name), [])
        {
            Name = name,
            RunAsUser = ServiceAccount,
            InheritEnvironment = false,
            WorkingDirectory = root,
            StopGracePeriod = TimeSpan.Zero,
            Environment = new Dictionary<string, string?>
            {
                ["HOME"] = Home,
                ["RABBITMQ_NODENAME"] = NodeName,
                ["RABBITMQ_NODE_IP_ADDRESS"] = "127.0.0.1",
                ["RABBITMQ_NODE_PORT"] = Invariant(AmqpPort),
                ["RABBITMQ_DIST_PORT"] = Invariant(_distributionPort),
                ["RABBITMQ_CTL_DIST_PORT_MIN"] = Invariant(_cliPort),
                ["RABBITMQ_CTL_DIST_PORT_MAX"] = Invariant(_cliPort),
                ["RABBITMQ_MNESIA_BASE"] = Path.Combine(root, "mnesia"),
                ["RABBITMQ_LOG_BASE"] = Path.Combine(root, "log"),
                ["RABBITMQ_CONFIG_FILE"] = Path.Combine(root, "rabbitmq"),
                ["RABBITMQ_ADVANCED_CONFIG_FILE"] = Path.Combine(root, "advanced.config"),
                ["RABBITMQ_ENABLED_PLUGINS_FILE"] = Path.Combine(root, "enabled_plugins"),
                ["RABBITMQ_CONF_ENV_FILE"] = Path.Combine(root, "rabbitmq-env.conf"),
                ["RABBITMQ_PID_FILE"] = Path.Combine(root, "rabbitmq.pid"),
                ["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] = "-kernel inet_dist_use_interface {127,0,0,1}",
                ["ERL_EPMD_PORT"] = Invariant(_epmdPort),
                ["ERL_EPMD_ADDRESS"] = "127.0.0.1",
            },
        };
    }

    private static async Task EnsureInstalledAsync(CancellationToken cancellationToken)
    {
        var server = Path.Combine(SbinDirectory, "rabbitmq-server");
        if (File.Exists(server))
        {
            return;
        }

        await InstallGate.WaitAsync(cancellationToken);
        try
        {
            if (File.Exists(server))
            {
                return;
            }

            if (!Privileges.IsRoot)
            {
                throw new InvalidOperationException(
                    $"RabbitMQ is not installed ({server} is missing) and the tests do not run as root, so they cannot " +
                    "install it: run `sudo apt-get install -y rabbitmq-server` and try again.");
            }

            await Commands.RunAsync(
                new ProcessSpec("apt-get", ["install", "-y", "-o", "DPkg::Lock::Timeout=600", "rabbitmq-server"])
                {
                    Name = "apt-get",
                    Environment = new Dictionary<string, string?> { ["DEBIAN_FRONTEND"] = "noninteractive" },
                },
                cancellationToken);
            if (!File.Exists(server))
            {
                throw new InvalidOperationException($"apt-get installed rabbitmq-server but {server} is still missing.");
            }
        }
        finally
        {
            InstallGate.Release();
        }
    }

    private static string FindEpmd()
    {
        foreach (var candidate in new[] { "/usr/bin/epmd", "/usr/lib/erlang/bin/epmd" })
        {
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException("epmd (Erlang) was not found in /usr/bin or /usr/lib/erlang/bin; reinstall rabbitmq-server.");
    }

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);
}
