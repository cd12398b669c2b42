using System.Diagnostics.Metrics;

namespace Kdb.Provisioning;

/// <summary>
/// A counter of seconds per stage (<c>{name}_seconds_total{stage}</c> on <c>/metrics</c>). A counter, not a histogram:
/// benchmarks difference two scrapes around one operation, and a sum is exact where bucket quantiles are not.
/// </summary>
internal sealed class StageSeconds(Meter meter, string name, string description)
{
    private readonly Counter<double> _seconds = meter.CreateCounter<double>(name, unit: "s", description: description);

    public void Add(string stage, TimeSpan elapsed) =>
        _seconds.Add(elapsed.TotalSeconds, new KeyValuePair<string, object?>("stage", stage));
}
