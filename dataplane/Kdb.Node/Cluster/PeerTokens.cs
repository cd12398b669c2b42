using Kdb.Node.ControlPlane;

namespace Kdb.Node.Cluster;

/// <summary>The kdb-internal token this node presents to other nodes (scope kdb.node): from the control plane's token endpoint
/// when one is configured, else a token given in configuration (tests mint one with their test issuer).</summary>
public sealed class PeerTokens(ServiceTokenClient? client, string? configured)
{
    public async ValueTask<string?> GetAsync(CancellationToken cancellationToken) =>
        client is not null ? await client.GetAsync(cancellationToken) : configured;
}
