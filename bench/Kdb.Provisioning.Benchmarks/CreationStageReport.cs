using System.Globalization;
using Kdb.Messaging;

namespace Kdb.Provisioning.Benchmarks;

/// <summary>
/// Per-stage p50/p95 of the database creations a benchmark ran, from the control plane's
/// <c>kdb_database_create_stage_seconds</c> histogram (see <c>Kdb.Messaging.CreationStages</c>): the difference of a
/// scrape before and one after, so only the creations in between count. Quantiles are interpolated inside a bucket as
/// Prometheus's <c>histogram_quantile</c> does; the buckets are milliseconds apart below 50 ms. Also compiled into the
/// end-to-end benchmark.
/// </summary>
internal sealed class CreationStageReport
{
    private const string Family = "kdb_database_create_stage_seconds_bucket{";

    private static readonly Dictionary<string, int> Rank = CreationStages.All.Select((stage, i) => (stage, i)).ToDictionary(p => p.stage, p => p.i, StringComparer.Ordinal);

    private readonly Dictionary<string, SortedDictionary<double, double>> _buckets;

    private CreationStageReport(Dictionary<string, SortedDictionary<double, double>> buckets) => _buckets = buckets;

    /// <summary>Reads the histogram's cumulative buckets from <c>/metrics</c> of the control plane at <paramref name="controlPlaneUrl"/>.</summary>
    public static async Task<CreationStageReport> ScrapeAsync(HttpClient http, string controlPlaneUrl)
    {
        var text = await http.GetStringAsync(new Uri(controlPlaneUrl.TrimEnd('/') + "/metrics"));
        return new CreationStageReport(Parse(text));
    }

    internal static Dictionary<string, SortedDictionary<double, double>> Parse(string text)
    {
        var buckets = new Dictionary<string, SortedDictionary<double, double>>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            var close = line.IndexOf('}', StringComparison.Ordinal);
            if (!line.StartsWith(Family, StringComparison.Ordinal) || close < 0)
            {
                continue;
            }
            var labels = line[Family.Length..close];
            if (Label(labels, "stage") is not { } stage || Label(labels, "le") is not { } le
                || !double.TryParse(line[(close + 1)..].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var count))
            {
                continue;
            }
            var bound = le == "+Inf" ? double.PositiveInfinity : double.Parse(le, NumberStyles.Float, CultureInfo.InvariantCulture);
            if (!buckets.TryGetValue(stage, out var series))
            {
                buckets[stage] = series = [];
            }
            series[bound] = count;
        }
        return buckets;
    }

    /// <summary>Emits <c>{prefix}_p50_ms.{stage}</c> and <c>{prefix}_p95_ms.{stage}</c> for every stage seen between the two scrapes.</summary>
    public void EmitSince(CreationStageReport before, string prefix, Action<string, double, string> emit)
    {
        // In the order a creation passes them; a stage unknown to this build goes last.
        foreach (var stage in _buckets.Keys.OrderBy(s => Rank.GetValueOrDefault(s, int.MaxValue)).ThenBy(s => s, StringComparer.Ordinal))
        {
            var after = _buckets[stage];
            var earlier = before._buckets.GetValueOrDefault(stage);
            var delta = after.Select(b => (Bound: b.Key, Count: b.Value - (earlier?.GetValueOrDefault(b.Key) ?? 0))).ToList();
            if (delta.Count == 0 || delta[^1].Count <= 0)
            {
                continue;
            }
            emit($"{prefix}_p50_ms.{stage}", Quantile(delta, 0.50) * 1000, "ms");
            emit($"{prefix}_p95_ms.{stage}", Quantile(delta, 0.95) * 1000, "ms");
            emit($"{prefix}_count.{stage}", delta[^1].Count, "samples");
        }
    }

    /// <summary>The q-quantile of cumulative buckets, linear within the bucket it falls in (the last finite bound past it).</summary>
    internal static double Quantile(IReadOnlyList<(double Bound, double Count)> cumulative, double q)
    {
        var total = cumulative[^1].Count;
        var rank = q * total;
        var lower = 0.0;
        var below = 0.0;
        foreach (var (bound, count) in cumulative)
        {
            if (count >= rank && count > below)
            {
                return double.IsPositiveInfinity(bound) ? lower : lower + ((bound - lower) * (rank - below) / (count - below));
            }
            if (!double.IsPositiveInfinity(bound))
            {
                lower = bound;
            }
            below = count;
        }
        return lower;
    }

    private static string? Label(string labels, string name)
    {
        var key = name + "=\"";
        var at = labels.IndexOf(key, StringComparison.Ordinal);
        if (at < 0 || (at > 0 && labels[at - 1] != ','))
        {
            return null;
        }
        var start = at + key.Length;
        var end = labels.IndexOf('"', start);
        return end < 0 ? null : labels[start..end];
    }
}
