using Kdb.Testing.Cluster;

namespace Kdb.Cluster.Tests;

/// <summary>The classes that share one three-node cluster run one after another.</summary>
[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<ThreeNodeCluster>
{
    public const string Name = "three-node-cluster";
}
