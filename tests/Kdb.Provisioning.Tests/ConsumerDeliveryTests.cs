using Kdb.Contracts.V1;
using Kdb.Node.Admin;
using Kdb.Node.Admin.Wire;
using MassTransit;
using MassTransit.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using RoleKind = Kdb.Contracts.V1.RoleKind;

using static Kdb.Testing.Provisioning.LocalCloud;

namespace Kdb.Provisioning.Tests;

/// <summary>
/// The consumers hosted in the test process (a second provisioning host on its own in-memory bus) against the
/// local cloud's real control plane and nodes: duplicate deliveries, conflicting requests, quota states.
/// </summary>
public sealed partial class LocalCloudTests
{
    [Fact]
    public async Task DuplicateDatabaseRequested_NeverCreatesASecondCopy_AndAConflictingTenantFails()
    {
        var (token, org) = await cloud.UserAsync("redeliver");
        var (id, _) = await cloud.CreateReadyDatabaseAsync(token, org, "twice");
        var (group, info) = await FindAsync(id);
        var owner = info.Roles.Single(r => r.Name == "owner");
        await using var host = await ProvisioningHostAsync();
        var request = new DatabaseRequested("op_dup", DateTimeOffset.UtcNow, id, info.TenantId, org,
            new RoleVerifier("owner", RoleKind.Owner, owner.ScramVerifier), new DatabaseLimits(10, 100, 1 << 30));

        await Task.WhenAll(host.Harness.Bus.Publish(request), host.Harness.Bus.Publish(request));

        var outcomes = await host.WaitPublishedAsync<DatabaseProvisioned>(2);
        Assert.All(outcomes, o => Assert.Equal(group, o.GroupId));
        Assert.Equal(1, await CopiesAsync(id));

        await host.Harness.Bus.Publish(request with { OperationId = "op_conflict", TenantId = info.TenantId + 1 });
        var failed = Assert.Single(await host.WaitPublishedAsync<DatabaseProvisioningFailed>(1));
        Assert.Equal(id, failed.DatabaseId);
        Assert.Equal(1, await CopiesAsync(id));

        await host.Harness.Bus.Publish(request with { OperationId = "op_unknown", DatabaseId = "db_0000000000000000" });
        await host.WaitConsumedAsync<DatabaseRequested>(4);
        Assert.DoesNotContain(host.Harness.Published.Select<DatabaseProvisioned>(ProvisioningHost.Now), p => p.Context.Message.DatabaseId == "db_0000000000000000");
    }

    [Fact]
    public async Task DuplicateBackupRequested_StoresOneBackup_AndQuotaStatesReachTheNodes()
    {
        var (token, org) = await cloud.UserAsync("quota");
        var (id, password) = await cloud.CreateReadyDatabaseAsync(token, org, "limited");
        var (_, info) = await FindAsync(id);
        var port = await cloud.ReplicaPgPortAsync(id);
        await using (var conn = new NpgsqlConnection(LocalCloud.ConnectionString(port, id, password)))
        {
            await conn.OpenAsync();
            await using var create = new NpgsqlCommand("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)", conn);
            await create.ExecuteNonQueryAsync();
        }
        await using var host = await ProvisioningHostAsync();
        var backup = new BackupRequested("op_b", DateTimeOffset.UtcNow, "bkp_duplicate" + Guid.NewGuid().ToString("N")[..8], id, org);
        await Task.WhenAll(host.Harness.Bus.Publish(backup), host.Harness.Bus.Publish(backup));
        var completed = await host.WaitPublishedAsync<BackupCompleted>(2).Within("backups");
        Assert.Single(completed.Select(c => c.Result).Distinct());
        Assert.Single(Directory.GetFiles(Path.Combine(host.ObjectStorePath, "backups"), "manifest.json", SearchOption.AllDirectories));
        // A request from a sender older than BackupRequested.OrgId cannot pick the org's key: it fails, saying why.
        await host.Harness.Bus.Publish(backup with { OperationId = "op_b_old", BackupId = "bkp_noorg" + Guid.NewGuid().ToString("N")[..8], OrgId = null });
        var noOrg = Assert.Single(await host.WaitPublishedAsync<BackupFailed>(1).Within("backup without org"));
        Assert.Contains("names no org", noOrg.Reason, StringComparison.Ordinal);
        // A drill restores the backup into a scratch database and compares it; a backup the store lacks fails the drill.
        await host.Harness.Bus.Publish(new RestoreDrillRequested("op_drill", DateTimeOffset.UtcNow, [backup.BackupId, "bkp_notstored"]));
        var verified = Assert.Single(await host.WaitPublishedAsync<BackupVerified>(1).Within("drill"));
        Assert.Equal(backup.BackupId, verified.BackupId);
        Assert.Contains(completed[0].Result.RaftIndex.ToString(System.Globalization.CultureInfo.InvariantCulture), verified.Details, StringComparison.Ordinal);
        var drillFailed = Assert.Single(await host.WaitPublishedAsync<RestoreDrillFailed>(1).Within("drill of a missing backup"));
        Assert.Equal("bkp_notstored", drillFailed.BackupId);
        Assert.Contains("bkp_notstored", drillFailed.Details, StringComparison.Ordinal);

        // Each attempt inserts a new key: an insert that lands before the state applies must not fail the next one.
        const string insert = "INSERT INTO t SELECT max(id) + 1 FROM t";
        await host.Harness.Bus.Publish(new QuotaStateChanged("op_ro", DateTimeOffset.UtcNow, id, QuotaState.ReadOnly));
        await EventuallyAsync(async () =>
        {
            var e = await Assert.ThrowsAsync<PostgresException>(() => ExecAsync(port, id, password, insert));
            Assert.Equal("25006", e.SqlState);
        }).Within("read-only");
        // Reads go on in read_only.
        var rows = (long)(await ScalarAsync(port, id, password, "SELECT count(*) FROM t").Within("read"))!;

        await host.Harness.Bus.Publish(new QuotaStateChanged("op_ok", DateTimeOffset.UtcNow, id, QuotaState.Ok));
        await EventuallyAsync(() => ExecAsync(port, id, password, insert)).Within("active again");
        Assert.Equal(rows + 1, await ScalarAsync(port, id, password, "SELECT count(*) FROM t"));
    }

    private static async Task ExecAsync(int port, string database, string password, string sql)
    {
        await using var conn = await OpenAsync(port, database, password);
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync();
    }

    private async Task<ProvisioningHost> ProvisioningHostAsync(IReadOnlyDictionary<string, string?>? settings = null)
    {
        var objects = Path.Combine(Path.GetTempPath(), "kdb-prov-host-" + Guid.NewGuid().ToString("N"));
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Provisioning:ControlPlaneUrl"] = cloud.ControlPlaneUrl,
            ["Provisioning:ClientSecret"] = LocalCloud.ProvisioningSecret,
            ["Provisioning:ObjectStorePath"] = objects,
            ["Provisioning:UsageInterval"] = "00:00:00",
            ["Provisioning:RepairInterval"] = "00:00:00",
        }).AddInMemoryCollection(settings ?? new Dictionary<string, string?>()).Build();
        var provider = new ServiceCollection()
            .AddSingleton<IConfiguration>(configuration)
            .AddLogging()
            .AddMassTransitTestHarness(bus => bus.AddProvisioningConsumers())
            .BuildServiceProvider(true);
        var harness = provider.GetRequiredService<ITestHarness>();
        harness.TestTimeout = TimeSpan.FromMinutes(3);
        harness.TestInactivityTimeout = TimeSpan.FromMinutes(3);
        await harness.Start();
        return new ProvisioningHost(provider, harness, objects);
    }

    /// <summary>The group hosting a database and the database as that group describes it (tenant, roles).</summary>
    private async Task<(ulong Group, DatabaseInfo Info)> FindAsync(string databaseId)
    {
        foreach (var admin in await AdminsAsync())
        {
            foreach (var g in (await admin.StatusAsync()).Groups)
            {
                if ((await admin.DatabasesAsync(g.GroupId)).Databases.FirstOrDefault(d => d.DatabaseId == databaseId) is { } info)
                {
                    return (g.GroupId, info);
                }
            }
        }
        throw new InvalidOperationException($"no group hosts {databaseId}");
    }

    /// <summary>How many distinct groups, over every node, host the database.</summary>
    private async Task<int> CopiesAsync(string databaseId)
    {
        var groups = new HashSet<ulong>();
        foreach (var admin in await AdminsAsync())
        {
            foreach (var g in (await admin.StatusAsync()).Groups)
            {
                if ((await admin.DatabasesAsync(g.GroupId)).Databases.Any(d => d.DatabaseId == databaseId))
                {
                    groups.Add(g.GroupId);
                }
            }
        }
        return groups.Count;
    }

    private async Task<List<NodeAdminClient>> AdminsAsync()
    {
        var token = await cloud.ServiceTokenAsync("kdb-provisioning", LocalCloud.ProvisioningSecret);
        var (_, nodes) = await cloud.SendAsync(HttpMethod.Get, "/internal/v1/nodes", token);
        return nodes.GetProperty("items").EnumerateArray()
            .Select(n => new NodeAdminClient(AdminHttp, new Uri("http://" + n.GetProperty("internalEndpoint").GetString()), _ => ValueTask.FromResult(token)))
            .ToList();
    }

    private static readonly HttpClient AdminHttp = NodeAdminClient.CreateHttpClient();

    private sealed class ProvisioningHost(ServiceProvider provider, ITestHarness harness, string objectStorePath) : IAsyncDisposable
    {
        /// <summary>The harness's lists wait for more elements until inactivity unless told not to: an ended token lists what is there.</summary>
        public static readonly CancellationToken Now = new(canceled: true);

        public ITestHarness Harness => harness;

        public IServiceProvider Services => provider;

        public string ObjectStorePath => objectStorePath;

        public async Task<List<T>> WaitPublishedAsync<T>(int count) where T : class
        {
            var deadline = DateTime.UtcNow.AddSeconds(90);
            while (true)
            {
                var published = harness.Published.Select<T>(Now).Select(p => p.Context.Message).ToList();
                if (published.Count >= count)
                {
                    return published;
                }
                Assert.True(DateTime.UtcNow < deadline, $"{published.Count} of {count} {typeof(T).Name} published");
                await Task.Delay(100);
            }
        }

        public async Task WaitConsumedAsync<T>(int count) where T : class
        {
            var deadline = DateTime.UtcNow.AddSeconds(90);
            while (harness.Consumed.Select<T>(Now).Count() < count)
            {
                Assert.True(DateTime.UtcNow < deadline, $"fewer than {count} {typeof(T).Name} consumed");
                await Task.Delay(100);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await harness.Stop();
            await provider.DisposeAsync();
            try
            {
                Directory.Delete(objectStorePath, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}

/// <summary>Bounds one test step, so a hang fails the test naming the step instead of stalling the run.</summary>
internal static class StepTimeouts
{
    public static async Task Within(this Task task, string step)
    {
        try
        {
            await task.WaitAsync(TimeSpan.FromSeconds(150));
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"step '{step}' took over 150 s", e);
        }
    }

    public static async Task<T> Within<T>(this Task<T> task, string step)
    {
        try
        {
            return await task.WaitAsync(TimeSpan.FromSeconds(150));
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"step '{step}' took over 150 s", e);
        }
    }
}
