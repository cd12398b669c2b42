using System.Net;
using Kdb.Contracts.V1;
using Kdb.Testing.Postgres;
using Kdb.Testing.RabbitMq;
using MassTransit;

namespace Kdb.ControlPlane.Tests;

[CollectionDefinition(Name)]
public sealed class RabbitMqBusCollection : ICollectionFixture<PostgresFixture>, ICollectionFixture<RabbitMqFixture>
{
    public const string Name = "ControlPlane.RabbitMq";
}

/// <summary>The split deployment: the control plane on RabbitMQ, provisioning (here a stand-in) on its own bus.</summary>
[Collection(RabbitMqBusCollection.Name)]
public sealed class RabbitMqBusTests(PostgresFixture postgres, RabbitMqFixture rabbit)
{
    [Fact]
    public async Task CreateDatabase_OverRabbitMq_ReachesProvisioningAndComesBackReady()
    {
        var vhost = await rabbit.CreateVirtualHostAsync("cp");
        await using var app = await ControlPlaneApp.StartAsync(postgres, new Dictionary<string, string>
        {
            ["Bus:Transport"] = "rabbitmq",
            ["Bus:RabbitMqHost"] = rabbit.Host,
            ["Bus:RabbitMqPort"] = rabbit.AmqpPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Bus:RabbitMqVirtualHost"] = vhost,
            ["Bus:RabbitMqUsername"] = rabbit.Username,
            ["Bus:RabbitMqPassword"] = rabbit.Password,
        });
        var seen = new TaskCompletionSource<DatabaseRequested>(TaskCreationOptions.RunContinuationsAsynchronously);
        var provisioning = Bus.Factory.CreateUsingRabbitMq(cfg =>
        {
            cfg.UseTestNode(rabbit, vhost);
            cfg.ReceiveEndpoint("stand-in-provisioning", e => e.Handler<DatabaseRequested>(async ctx =>
            {
                seen.TrySetResult(ctx.Message);
                await ctx.Publish(new DatabaseProvisioned(ctx.Message.OperationId, DateTimeOffset.UtcNow, ctx.Message.DatabaseId, 7));
            }));
        });
        await provisioning.StartAsync();
        try
        {
            var token = await app.SignupAndLoginAsync("rabbit@example.com");
            var me = await app.SendAsync(HttpMethod.Get, "/v1/me", token);
            var orgId = me.Body.GetProperty("orgs")[0].GetProperty("id").GetString()!;

            var created = await app.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "over-rabbit" });
            Assert.Equal(HttpStatusCode.Accepted, created.Status);
            var databaseId = created.Body.GetProperty("database").GetProperty("id").GetString()!;

            var request = await seen.Task.WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(databaseId, request.DatabaseId);
            var deadline = DateTime.UtcNow.AddSeconds(60);
            string? status;
            do
            {
                await Task.Delay(200);
                status = (await app.SendAsync(HttpMethod.Get, $"/v1/databases/{databaseId}", token)).Body.GetProperty("status").GetString();
            }
            while (status != "ready" && DateTime.UtcNow < deadline);

            Assert.Equal("ready", status);
        }
        finally
        {
            await provisioning.StopAsync();
        }
    }
}
