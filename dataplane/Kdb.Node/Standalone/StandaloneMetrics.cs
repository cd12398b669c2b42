using System.Diagnostics.Metrics;
using Kdb.Node.Cluster;

namespace Kdb.Node.Standalone;

/// <summary>The standalone node's series on <c>/metrics</c>: its one storage engine (see <see cref="EngineInstruments"/>), unlabelled.</summary>
internal sealed class StandaloneMetrics : IDisposable
{
    private readonly Meter _meter = new("Kdb.Node.Standalone");

    public StandaloneMetrics(StandaloneServer server) =>
        EngineInstruments.Register(_meter, () => [(null, server.Engine.Stats)]);

    public void Dispose() => _meter.Dispose();
}
