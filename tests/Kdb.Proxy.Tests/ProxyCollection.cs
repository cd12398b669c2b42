using Kdb.Testing.Proxy;

namespace Kdb.Proxy.Tests;

/// <summary>The classes that share one proxy in front of one three-node cluster run one after another.</summary>
[CollectionDefinition(Name)]
public sealed class ProxyCollection : ICollectionFixture<ProxyTestBed>
{
    public const string Name = "proxy-test-bed";
}
