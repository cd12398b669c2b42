using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;

namespace Kdb.Testing.RabbitMq;

/// <summary>
/// A private RabbitMQ node for one xunit collection, run as the <c>rabbitmq</c> user with its own directories,
/// cookie and loopback ports; killed and deleted on dispose. If rabbitmq-server is not installed, the fixture
/// installs it with apt-get when running as root, or fails saying how to install it.
/// Use it as an <c>ICollectionFixture</c> (see <see cref="TestCollections.RabbitMq"/>); give each test class its
/// own virtual host with <see cref="CreateVirtualHostAsync"/> so message types and queues never cross classes.
/// </summary>
public sealed class RabbitMqFixture : IAsyncLifetime
{
    private RabbitMqNode? _node;
    private int _pooledHandedOut;

    /// <summary>Always 127.0.0.1.</summary>
    public string Host => "127.0.0.1";

    /// <summary>The AMQP port.</summary>
    public int AmqpPort => Node.AmqpPort;

    /// <summary>The built-in user, which RabbitMQ accepts from loopback only ("guest").</summary>
    public string Username => "guest";

    /// <summary>The built-in user's password ("guest").</summary>
    public string Password => "guest";

    /// <summary>The default virtual host, "/".</summary>
    public string VirtualHost => "/";

    /// <summary>The Erlang node name (kdbtest-&lt;random&gt;@localhost).</summary>
    public string NodeName => Node.NodeName;

    /// <summary>AMQP URI of the default virtual host, with credentials.</summary>
    public Uri AmqpUri => AmqpUriFor(VirtualHost);

    /// <summary>The node's log (console output) so far, for failing tests to print.</summary>
    public string NodeLog => Node.Log;

    private RabbitMqNode Node => _node ?? throw new InvalidOperationException("The RabbitMQ fixture has not been initialized.");

    /// <summary>AMQP URI of <paramref name="virtualHost"/>, with credentials.</summary>
    public Uri AmqpUriFor(string virtualHost) =>
        new(string.Create(
            CultureInfo.InvariantCulture,
            $"amqp://{Username}:{Password}@{Host}:{AmqpPort}/{Uri.EscapeDataString(virtualHost)}"));

    /// <summary>
    /// Returns a virtual host no one else in this run has been given, on which the guest user has full rights. The
    /// first ones were created with the node (instant); after those, one is created with <c>rabbitmqctl</c> (a few
    /// seconds), named <paramref name="prefix"/> + random suffix.
    /// </summary>
    public async Task<string> CreateVirtualHostAsync(string prefix = "test", CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(prefix);
        var pooled = Node.PooledVirtualHosts;
        var index = Interlocked.Increment(ref _pooledHandedOut) - 1;
        if (index < pooled.Count)
        {
            return pooled[index];
        }

        var name = $"{prefix}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}";

        // One definitions import instead of add_vhost + set_permissions: every rabbitmqctl call boots an Erlang
        // VM (1-2 s here), and suites create a virtual host per test class.
        var definitions = JsonSerializer.Serialize(new
        {
            vhosts = new[] { new { name } },
            permissions = new[] { new { user = Username, vhost = name, configure = ".*", write = ".*", read = ".*" } },
        });
        await Node.ImportDefinitionsAsync(definitions, cancellationToken);
        return name;
    }

    /// <summary>Runs <c>rabbitmqctl</c> with <paramref name="arguments"/> against the node and returns its stdout.</summary>
    /// <exception cref="InvalidOperationException">The command failed; the message carries its output.</exception>
    public Task<string> RabbitMqCtlAsync(IReadOnlyList<string> arguments, CancellationToken cancellationToken = default) =>
        Node.ControlAsync(arguments, cancellationToken);

    /// <summary>Starts the node (about 5–20 s).</summary>
    public async Task InitializeAsync() => _node = await RabbitMqNode.StartAsync(CancellationToken.None);

    /// <summary>Kills the node and deletes its directory.</summary>
    public async Task DisposeAsync()
    {
        if (_node is not null)
        {
            await _node.DisposeAsync();
        }
    }
}
