using Kdb.Node.Admin;
using Kdb.Provisioning.Backups;
using Kdb.Provisioning.Consumers;
using Kdb.Provisioning.ControlPlane;
using Kdb.Provisioning.Moves;
using Kdb.Provisioning.Placement;
using Kdb.Provisioning.Repair;
using Kdb.Provisioning.Storage;
using Kdb.Provisioning.Usage;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Kdb.Provisioning;

/// <summary>
/// The provisioning consumers, registered on whichever bus hosts them: the control plane's in-memory
/// bus in the embedded deployment, or the provisioning worker's RabbitMQ bus in a split one.
/// </summary>
public static class ProvisioningRegistration
{
    /// <summary>Where the provisioning consumers run, shown by <c>./kdb status</c>.</summary>
    public const string HostedInControlPlane = "controlplane";

    /// <summary>
    /// Registers every provisioning consumer with its retry policy, the services they use (settings from
    /// <see cref="ProvisioningOptions.From"/>), and the usage collector.
    /// </summary>
    public static IBusRegistrationConfigurator AddProvisioningConsumers(this IBusRegistrationConfigurator bus)
    {
        bus.TryAddSingleton(TimeProvider.System);
        bus.TryAddSingleton(sp => ProvisioningOptions.From(sp.GetRequiredService<IConfiguration>()));
        bus.TryAddSingleton<IObjectStore>(sp => new FileSystemObjectStore(sp.GetRequiredService<ProvisioningOptions>().ObjectStorePath));
        bus.TryAddSingleton(sp => new ControlPlaneClient(
            new HttpClient { Timeout = TimeSpan.FromSeconds(30) }, sp.GetRequiredService<ProvisioningOptions>(), sp.GetRequiredService<TimeProvider>()));
        bus.TryAddSingleton(sp => new Fleet(sp.GetRequiredService<ControlPlaneClient>(), NodeAdminClient.CreateHttpClient(), sp.GetRequiredService<ProvisioningOptions>()));
        bus.TryAddSingleton<DatabaseOperations>();
        bus.TryAddSingleton<BackupService>();
        bus.TryAddSingleton<NodeRepair>();
        bus.TryAddSingleton<DatabaseMover>();
        bus.TryAddSingleton<OperationHeartbeats>();
        bus.TryAddSingleton<OperationClaims>();
        bus.AddHostedService<UsageCollector>();
        bus.AddHostedService<NodeRepairService>();
        bus.AddHostedService<GroupAheadService>();
        bus.AddHostedService<ProvisioningWarmUp>();

        Add<DatabaseRequestedConsumer>(bus);
        Add<DatabaseDeletionRequestedConsumer>(bus);
        Add<DatabaseUndeleteRequestedConsumer>(bus);
        Add<RoleChangedConsumer>(bus);
        Add<QuotaStateChangedConsumer>(bus);
        Add<BackupRequestedConsumer>(bus);
        Add<BackupExpiredConsumer>(bus);
        Add<RestoreRequestedConsumer>(bus);
        Add<RestoreDrillRequestedConsumer>(bus);
        Add<DatabaseMoveRequestedConsumer>(bus);
        return bus;
    }

    // Transient failures (a node restarting, an election, the control plane busy) retry with backoff for about
    // a minute; past that the control plane's reconciler re-publishes the request, and times it out into failed.
    private static void Add<T>(IBusRegistrationConfigurator bus) where T : class, IConsumer =>
        bus.AddConsumer<T>((_, consumer) => consumer.UseMessageRetry(r => r.Exponential(8, TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(15), TimeSpan.FromSeconds(1))));
}
