using System.Globalization;

namespace Kdb.Launcher;

/// <summary>
/// A private RabbitMQ node under <c>.kdb/rabbitmq</c> (own mnesia, logs, cookie, node name, AMQP,
/// distribution and epmd ports), run as the <c>rabbitmq</c> user when the launcher is root.
/// </summary>
internal sealed class RabbitMqService(KdbPaths paths, int amqpPort) : IManagedService
{
    public const string ServerPath = "/usr/sbin/rabbitmq-server";
    private const string NodeName = "kdb@localhost";

    // Distribution defaults to AMQP + 20000, which can pass 65535; a private epmd keeps the node
    // invisible to any other Erlang on the machine and lets `down` stop it too.
    private int DistPort => amqpPort + 10000 <= 65535 ? amqpPort + 10000 : amqpPort - 1000;

    private int EpmdPort => 4369 + 2;

    public string Name => "rabbitmq";

    public IReadOnlyList<int> Ports => [amqpPort, DistPort];

    public string Url => $"amqp://127.0.0.1:{amqpPort}";

    public ProcessHandle? FindRunning() =>
        ProcessControl.ReadPidFile(paths.PidFile(Name)) is { } handle && ProcessControl.IsAlive(handle) ? handle : null;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!File.Exists(ServerPath))
        {
            throw new LauncherException("rabbitmq-server is not installed (apt-get install rabbitmq-server).");
        }

        var home = Path.Combine(paths.RabbitMq, "home");
        foreach (var dir in new[] { paths.RabbitMq, home, Path.Combine(paths.RabbitMq, "mnesia"), Path.Combine(paths.RabbitMq, "log") })
        {
            Directory.CreateDirectory(dir);
        }

        await File.WriteAllTextAsync(Path.Combine(paths.RabbitMq, "enabled_plugins"), "[].\n", cancellationToken);
        await File.WriteAllTextAsync(Path.Combine(paths.RabbitMq, "rabbitmq.conf"), "loopback_users.guest = true\nlisteners.tcp.default = " + amqpPort.ToString(CultureInfo.InvariantCulture) + "\n", cancellationToken);
        if (Native.IsRoot)
        {
            await ProcessControl.RunAsync("chown", ["-R", "rabbitmq:rabbitmq", paths.RabbitMq]);
        }

        var log = paths.LogFile(Name);
        string program = ServerPath;
        string[] args = [];
        if (Native.IsRoot)
        {
            // -p keeps the private HOME (and so the private Erlang cookie) and the RABBITMQ_* settings.
            program = "runuser";
            args = ["-p", "-u", "rabbitmq", "--", ServerPath];
            if (!File.Exists(log))
            {
                await File.WriteAllTextAsync(log, string.Empty, cancellationToken);
            }

            await ProcessControl.RunAsync("chown", ["rabbitmq:rabbitmq", log]);
        }

        var handle = ProcessControl.StartDetached(program, args, Environment(home), paths.Root, log);
        ProcessControl.WritePidFile(paths.PidFile(Name), handle);
    }

    public async Task<bool> IsReadyAsync(CancellationToken cancellationToken) =>
        FindRunning() is not null && await PortProbe.AcceptsAsync(amqpPort, TimeSpan.FromSeconds(1));

    public async Task StopAsync()
    {
        if (ProcessControl.ReadPidFile(paths.PidFile(Name)) is { } handle)
        {
            await ProcessControl.StopAsync(handle, TimeSpan.FromSeconds(20));
            File.Delete(paths.PidFile(Name));
        }

        // epmd daemonizes out of the node's process group; ours listens on a private port.
        await ProcessControl.RunAsync("epmd", ["-port", EpmdPort.ToString(CultureInfo.InvariantCulture), "-kill"], timeout: TimeSpan.FromSeconds(5));
    }

    private Dictionary<string, string> Environment(string home) => new()
    {
        ["HOME"] = home,
        ["RABBITMQ_NODENAME"] = NodeName,
        ["RABBITMQ_NODE_IP_ADDRESS"] = "127.0.0.1",
        ["RABBITMQ_NODE_PORT"] = amqpPort.ToString(CultureInfo.InvariantCulture),
        ["RABBITMQ_DIST_PORT"] = DistPort.ToString(CultureInfo.InvariantCulture),
        ["ERL_EPMD_PORT"] = EpmdPort.ToString(CultureInfo.InvariantCulture),
        ["ERL_EPMD_ADDRESS"] = "127.0.0.1",
        ["RABBITMQ_MNESIA_BASE"] = Path.Combine(paths.RabbitMq, "mnesia"),
        ["RABBITMQ_LOG_BASE"] = Path.Combine(paths.RabbitMq, "log"),
        ["RABBITMQ_ENABLED_PLUGINS_FILE"] = Path.Combine(paths.RabbitMq, "enabled_plugins"),
        ["RABBITMQ_CONFIG_FILE"] = Path.Combine(paths.RabbitMq, "rabbitmq.conf"),
        ["RABBITMQ_PID_FILE"] = Path.Combine(paths.RabbitMq, "rabbitmq.pid"),
    };
}
