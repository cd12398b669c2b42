using System.Net.Sockets;
using Kdb.Testing.RabbitMq;
using MassTransit;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace Kdb.Testing.Tests;

public sealed record HarnessPing(Guid CorrelationId, string Text);

[Collection(TestCollections.RabbitMq)]
public sealed class RabbitMqFixtureTests(RabbitMqFixture node)
{
    [Fact]
    public async Task MassTransit_PublishOnPrivateNode_ConsumerReceivesTheMessage()
    {
        var virtualHost = await node.CreateVirtualHostAsync("masstransit");
        var received = new TaskCompletionSource<HarnessPing>(TaskCreationOptions.RunContinuationsAsynchronously);
        var bus = Bus.Factory.CreateUsingRabbitMq(configurator =>
        {
            configurator.UseTestNode(node, virtualHost);
            configurator.ReceiveEndpoint("harness-ping", endpoint =>
                endpoint.Handler<HarnessPing>(context =>
                {
                    received.TrySetResult(context.Message);
                    return Task.CompletedTask;
                }));
        });

        using var bounded = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await bus.StartAsync(bounded.Token);
        try
        {
            var sent = new HarnessPing(Guid.NewGuid(), "hello through the private node");
            await bus.Publish(sent, bounded.Token);

            var message = await received.Task.WaitAsync(bounded.Token);

            Assert.Equal(sent, message);
        }
        finally
        {
            await bus.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task CreateVirtualHostAsync_NewHost_ListedAndUsableByGuest()
    {
        var virtualHost = await node.CreateVirtualHostAsync("listed");

        var hosts = await node.RabbitMqCtlAsync(["list_vhosts", "--silent"]);
        var factory = new ConnectionFactory { Uri = node.AmqpUriFor(virtualHost), AutomaticRecoveryEnabled = false };
        await using var connection = await factory.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        await channel.ExchangeDeclareAsync("harness-exchange", ExchangeType.Fanout);
        var queue = await channel.QueueDeclareAsync("harness-queue", durable: false, exclusive: true, autoDelete: true);
        await channel.QueueBindAsync(queue.QueueName, "harness-exchange", string.Empty);

        Assert.Contains(virtualHost, hosts.Split('\n'));

        // The queue lives in the new virtual host only: the default one does not know it (404, not 405 "locked").
        var defaultFactory = new ConnectionFactory { Uri = node.AmqpUri, AutomaticRecoveryEnabled = false };
        await using var defaultConnection = await defaultFactory.CreateConnectionAsync();
        await using var defaultChannel = await defaultConnection.CreateChannelAsync();
        var missing = await Assert.ThrowsAsync<OperationInterruptedException>(() => defaultChannel.QueueDeclarePassiveAsync("harness-queue"));
        Assert.Equal((ushort)404, missing.ShutdownReason?.ReplyCode);
        Assert.StartsWith("kdbtest-", node.NodeName, StringComparison.Ordinal);
        Assert.EndsWith("@localhost", node.NodeName, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CreateVirtualHostAsync_PoolUsedUp_CreatesFurtherHostsWithTheCli()
    {
        var names = new List<string>();
        string last;
        do
        {
            last = await node.CreateVirtualHostAsync("overflow");
            names.Add(last);
        }
        while (!last.StartsWith("overflow-", StringComparison.Ordinal) && names.Count < 100);

        Assert.StartsWith("overflow-", last, StringComparison.Ordinal);
        Assert.Equal(names.Count, names.Distinct(StringComparer.Ordinal).Count());
        var factory = new ConnectionFactory { Uri = node.AmqpUriFor(last), AutomaticRecoveryEnabled = false };
        await using var connection = await factory.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        var queue = await channel.QueueDeclareAsync("overflow-queue", durable: false, exclusive: true, autoDelete: true);
        Assert.Equal("overflow-queue", queue.QueueName);
    }

    [Fact]
    public async Task Connect_WrongPassword_IsRefusedWithAuthenticationFailure()
    {
        var factory = new ConnectionFactory
        {
            HostName = node.Host,
            Port = node.AmqpPort,
            UserName = node.Username,
            Password = "not-the-password",
            AutomaticRecoveryEnabled = false,
        };

        var error = await Assert.ThrowsAsync<BrokerUnreachableException>(() => factory.CreateConnectionAsync());

        Assert.IsType<AuthenticationFailureException>(error.InnerException);
    }

    [Fact]
    public async Task Connect_RightCredentials_OpensAChannelOnTheAmqpPort()
    {
        var factory = new ConnectionFactory { Uri = node.AmqpUri, AutomaticRecoveryEnabled = false };

        await using var connection = await factory.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        var queue = await channel.QueueDeclareAsync(exclusive: true);

        Assert.True(connection.IsOpen);
        Assert.Equal(0u, queue.MessageCount);
    }

    [Fact]
    public async Task RabbitMqCtl_UnknownCommand_ThrowsWithTheToolOutput()
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => node.RabbitMqCtlAsync(["no_such_command"]));

        Assert.Contains("failed with exit code", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Node_OtherAddresses_AmqpListensOnLoopbackOnly()
    {
        // The node must not listen on every interface: a wildcard listener would also accept on this address.
        using var client = new TcpClient();
        var otherLoopback = System.Net.IPAddress.Parse("127.0.0.2");
        var refused = await Assert.ThrowsAsync<SocketException>(() => client.ConnectAsync(otherLoopback, node.AmqpPort));

        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        Assert.Contains("Server startup complete", node.NodeLog, StringComparison.Ordinal);
    }
}
