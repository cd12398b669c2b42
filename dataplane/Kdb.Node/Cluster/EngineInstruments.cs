using System.Diagnostics.Metrics;
using System.Globalization;
using Kdb.Storage;

namespace Kdb.Node.Cluster;

/// <summary>
/// Storage-engine series on <c>/metrics</c>: segments, flushes, compactions (count, bytes written, duration histogram)
/// and the learned index (lookups, probe-length histogram, mispredicts, model-build duration histogram, errors). The
/// clustered node labels them with the group id (one engine per hosted group, so cardinality is the number of
/// groups); the standalone node has one engine and no label.
/// </summary>
/// <remarks>
/// The engine keeps its histograms as bucket counts (no allocation per lookup); they are exported as the
/// cumulative <c>_bucket{le}</c>, <c>_sum</c> and <c>_count</c> series of a Prometheus histogram. The process exporter
/// has no observable histogram, so the three are observable gauges (what <c>histogram_quantile</c> needs is the
/// <c>le</c> label, not the declared type).
/// </remarks>
internal static class EngineInstruments
{
    private const string GroupTag = "group";

    public static void Register(Meter meter, Func<IReadOnlyList<(string? Group, EngineStats Stats)>> engines)
    {
        var cache = new StatsCache(engines);
        meter.CreateObservableGauge("kdb_engine_segments", () => Each(cache, e => e.SegmentCount));
        meter.CreateObservableCounter("kdb_engine_flushes", () => Each(cache, e => e.Flushes));
        meter.CreateObservableCounter("kdb_engine_compactions", () => Each(cache, e => e.Compactions), description: "Compactions since the engine opened");
        meter.CreateObservableCounter("kdb_engine_compaction_written", () => Each(cache, e => e.CompactionBytes), unit: "By", description: "Bytes of segments written by compactions");
        meter.CreateObservableGauge("kdb_engine_compaction_seconds_bucket", () => DurationBuckets(cache, e => e.CompactionDurations), description: "Compaction durations (cumulative buckets)");
        meter.CreateObservableGauge("kdb_engine_compaction_seconds_sum", () => EachDouble(cache, e => e.CompactionDurations.SumSeconds));
        meter.CreateObservableGauge("kdb_engine_compaction_seconds_count", () => Each(cache, e => e.CompactionDurations.Count));
        meter.CreateObservableCounter("kdb_rmi_lookups", () => Each(cache, e => e.IndexLookups), description: "Learned-index lookups");
        meter.CreateObservableGauge("kdb_rmi_probe_length_bucket", () => ProbeBuckets(cache), description: "Keys compared per learned-index lookup (cumulative buckets)");
        meter.CreateObservableGauge("kdb_rmi_probe_length_sum", () => Each(cache, e => e.ProbeLengthSum));
        meter.CreateObservableGauge("kdb_rmi_probe_length_count", () => Each(cache, e => Total(e.ProbeLengthBuckets)));
        meter.CreateObservableCounter("kdb_rmi_mispredicts", () => Each(cache, e => e.Mispredicts), description: "Lookups whose key was not at the position the model predicted");
        meter.CreateObservableGauge("kdb_rmi_build_seconds_bucket", () => DurationBuckets(cache, e => e.IndexBuilds), description: "Learned-index model builds, by duration (cumulative buckets)");
        meter.CreateObservableGauge("kdb_rmi_build_seconds_sum", () => EachDouble(cache, e => e.IndexBuilds.SumSeconds));
        meter.CreateObservableGauge("kdb_rmi_build_seconds_count", () => Each(cache, e => e.IndexBuilds.Count));
        meter.CreateObservableGauge("kdb_rmi_avg_probe_window", () => Each(cache, e => (long)Math.Round(e.AvgProbeWindow)), description: "Average positions in the searched window per lookup");
        meter.CreateObservableGauge("kdb_rmi_max_error", () => Each(cache, e => e.MaxError), description: "Largest leaf error of the learned index");
    }

    private static long Total(IReadOnlyList<long> buckets)
    {
        long total = 0;
        foreach (var count in buckets)
        {
            total += count;
        }

        return total;
    }

    private static IEnumerable<Measurement<long>> Each(StatsCache cache, Func<EngineStats, long> value)
    {
        foreach (var (group, stats) in cache.Get())
        {
            yield return group is null ? new Measurement<long>(value(stats)) : new Measurement<long>(value(stats), new KeyValuePair<string, object?>(GroupTag, group));
        }
    }

    private static IEnumerable<Measurement<double>> EachDouble(StatsCache cache, Func<EngineStats, double> value)
    {
        foreach (var (group, stats) in cache.Get())
        {
            yield return group is null ? new Measurement<double>(value(stats)) : new Measurement<double>(value(stats), new KeyValuePair<string, object?>(GroupTag, group));
        }
    }

    private static IEnumerable<Measurement<long>> ProbeBuckets(StatsCache cache)
    {
        var bounds = EngineStats.ProbeLengthBounds;
        foreach (var (group, stats) in cache.Get())
        {
            foreach (var m in Cumulative(group, stats.ProbeLengthBuckets, bounds.Count, i => bounds[i].ToString(CultureInfo.InvariantCulture)))
            {
                yield return m;
            }
        }
    }

    private static IEnumerable<Measurement<long>> DurationBuckets(StatsCache cache, Func<EngineStats, DurationSnapshot> histogram)
    {
        var bounds = EngineStats.DurationBounds;
        foreach (var (group, stats) in cache.Get())
        {
            foreach (var m in Cumulative(group, histogram(stats).Buckets, bounds.Count, i => bounds[i].ToString("R", CultureInfo.InvariantCulture)))
            {
                yield return m;
            }
        }
    }

    private static IEnumerable<Measurement<long>> Cumulative(string? group, IReadOnlyList<long> buckets, int bounded, Func<int, string> bound)
    {
        long cumulative = 0;
        for (var i = 0; i < buckets.Count; i++)
        {
            cumulative += buckets[i];
            var le = new KeyValuePair<string, object?>("le", i < bounded ? bound(i) : "+Inf");
            yield return group is null ? new Measurement<long>(cumulative, le) : new Measurement<long>(cumulative, new KeyValuePair<string, object?>(GroupTag, group), le);
        }
    }

    /// <summary>One stats snapshot per engine per scrape: a scrape asks every instrument in turn within milliseconds.</summary>
    private sealed class StatsCache(Func<IReadOnlyList<(string? Group, EngineStats Stats)>> read)
    {
        private readonly Lock _lock = new();
        private long _readAt = long.MinValue / 2;
        private IReadOnlyList<(string? Group, EngineStats Stats)> _last = [];

        public IReadOnlyList<(string? Group, EngineStats Stats)> Get()
        {
            lock (_lock)
            {
                var now = Environment.TickCount64;
                if (now - _readAt > 200)
                {
                    _last = read();
                    _readAt = now;
                }

                return _last;
            }
        }
    }
}
