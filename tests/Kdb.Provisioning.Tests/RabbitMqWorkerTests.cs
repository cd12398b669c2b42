using System.Globalization;
using System.Net;
using Kdb.Testing.Hosting;
using Kdb.Testing.Ports;
using Kdb.Testing.Postgres;
using Kdb.Testing.Processes;
using Kdb.Testing.RabbitMq;
using Npgsql;

namespace Kdb.Provisioning.Tests;

[CollectionDefinition(Name)]
public sealed class ProvisioningRabbitMqCollection : ICollectionFixture<PostgresFixture>, ICollectionFixture<RabbitMqFixture>
{
    public const string Name = "Provisioning.RabbitMq";
}

/// <summary>The local cloud with the control plane on a private RabbitMQ node: provisioning is not embedded then.</summary>
public sealed class RabbitMqCloud(PostgresFixture postgres, RabbitMqFixture rabbit) : LocalCloud(postgres)
{
    public IReadOnlyList<string> BusArguments { get; } =
    [
        "--Bus:Transport=rabbitmq",
        "--Bus:RabbitMqHost=" + rabbit.Host,
        "--Bus:RabbitMqPort=" + rabbit.AmqpPort.ToString(CultureInfo.InvariantCulture),
        "--Bus:RabbitMqVirtualHost=" + rabbit.VirtualHost,
        "--Bus:RabbitMqUsername=" + rabbit.Username,
        "--Bus:RabbitMqPassword=" + rabbit.Password,
    ];

    protected override IEnumerable<string> ControlPlaneArguments => BusArguments;
}

/// <summary>Kdb.Provisioning.Worker as a process of its own, the control plane publishing to it over RabbitMQ.</summary>
[Collection(ProvisioningRabbitMqCollection.Name)]
public sealed class RabbitMqWorkerTests(RabbitMqCloud cloud) : IClassFixture<RabbitMqCloud>
{
    [Fact]
    public async Task DatabaseRequested_OverRabbitMq_IsProvisionedByTheSeparateWorker()
    {
        var objects = Path.Combine(Path.GetTempPath(), "kdb-prov-worker-" + Guid.NewGuid().ToString("N"));
        var port = FreePorts.Allocate();
        var spec = ProcessSpec.DotNet(
            RepoPaths.BuiltAssembly("provisioning/Kdb.Provisioning.Worker"),
            [
                "--Provisioning:Port=" + port.ToString(CultureInfo.InvariantCulture),
                "--ControlPlane:Url=" + cloud.ControlPlaneUrl,
                "--ServiceClient:Id=kdb-provisioning",
                "--ServiceClient:Secret=" + LocalCloud.ProvisioningSecret,
                "--Provisioning:ObjectStorePath=" + objects,
                "--Provisioning:UsageInterval=00:00:00",
                .. cloud.BusArguments,
            ]) with
        {
            Name = "provisioning-worker",
            Environment = new Dictionary<string, string?> { ["Logging__LogLevel__Default"] = "Warning", ["DOTNET_ENVIRONMENT"] = "Production" },
            Readiness = Readiness.Tcp(port),
            StopGracePeriod = TimeSpan.FromSeconds(5),
        };
        var (token, org) = await cloud.UserAsync("rabbit");
        await using (var worker = await ProcessLauncher.StartAsync(spec))
        {
            try
            {
                var (id, password) = await cloud.CreateReadyDatabaseAsync(token, org, "overrabbit");

                await using var conn = new NpgsqlConnection(LocalCloud.ConnectionString(await cloud.ReplicaPgPortAsync(id), id, password));
                await conn.OpenAsync();
                await using var cmd = new NpgsqlCommand("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1); SELECT count(*) FROM t", conn);
                Assert.Equal(1L, await cmd.ExecuteScalarAsync());
                // A backup over RabbitMQ: the worker, not the control plane, stores it in its own object store, sealed
                // with the key of the org the event names.
                var (status, created) = await cloud.SendAsync(HttpMethod.Post, $"/v1/databases/{id}/backups", token, new { });
                Assert.True(status == HttpStatusCode.Accepted, created.ToString());
                var backupId = created.GetProperty("backup").GetProperty("id").GetString()!;
                var backup = await cloud.WaitForAsync($"/v1/databases/{id}/backups/{backupId}", token, b => b.GetProperty("status").GetString() is "completed" or "failed");
                Assert.True(backup.GetProperty("status").GetString() == "completed", backup + "\n" + worker.Log);
                Assert.True(File.Exists(Path.Combine(objects, "backups", backupId, "manifest.json")), worker.Log);
            }
            finally
            {
                try
                {
                    Directory.Delete(objects, recursive: true);
                }
                catch (IOException)
                {
                }
            }
        }
    }
}
