using MassTransit;

namespace Kdb.Provisioning;

/// <summary>
/// The provisioning consumers, registered on whichever bus hosts them: the control plane's in-memory
/// bus in the embedded deployment, or the provisioning worker's RabbitMQ bus in a split one.
/// </summary>
public static class ProvisioningRegistration
{
    /// <summary>Where the provisioning consumers run, shown by <c>./kdb status</c>.</summary>
    public const string HostedInControlPlane = "controlplane";

    /// <summary>Registers every provisioning consumer found in this assembly.</summary>
    public static IBusRegistrationConfigurator AddProvisioningConsumers(this IBusRegistrationConfigurator bus)
    {
        bus.AddConsumers(typeof(ProvisioningRegistration).Assembly);
        return bus;
    }
}
