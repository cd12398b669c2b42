using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Kdb.ServiceDefaults;

/// <summary>
/// Aggregates every <see cref="System.Diagnostics.Metrics"/> instrument of the process and renders the
/// Prometheus text exposition format (version 0.0.4). No exporter package is available here, and the
/// format is small enough to own: counters become <c>_total</c> series, up-down counters and gauges
/// plain gauges, histograms cumulative <c>_bucket</c>/<c>_sum</c>/<c>_count</c> series.
/// </summary>
public sealed class PrometheusExporter : IDisposable
{
    // Seconds-scale and milliseconds-scale histograms both land well inside these bounds; instruments
    // that publish explicit bucket advice use their own.
    private static readonly double[] DefaultBounds =
        [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<Instrument, InstrumentState> _states = new();
    private readonly Func<Meter, bool> _meterFilter;
    private readonly Lock _renderLock = new();

    /// <summary>
    /// Creates an exporter listening to meters accepted by <paramref name="meterFilter"/> (when null, all but Kestrel's
    /// memory pool: it counts every buffer rent and return, which under load cost a pgwire point select more CPU and
    /// allocation than the query itself).
    /// </summary>
    public PrometheusExporter(Func<Meter, bool>? meterFilter = null)
    {
        _meterFilter = meterFilter ?? (static m => m.Name != "Microsoft.AspNetCore.MemoryPool");
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (!_meterFilter(instrument.Meter))
            {
                return;
            }

            var state = _states.GetOrAdd(instrument, static i => new InstrumentState(i, BoundsFor(i)));
            listener.EnableMeasurementEvents(instrument, state);
        };
        _listener.MeasurementsCompleted = (instrument, _) => _states.TryRemove(instrument, out InstrumentState? _);
        _listener.SetMeasurementEventCallback<double>(static (inst, value, tags, state) => ((InstrumentState)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<float>(static (inst, value, tags, state) => ((InstrumentState)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<long>(static (inst, value, tags, state) => ((InstrumentState)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<int>(static (inst, value, tags, state) => ((InstrumentState)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<short>(static (inst, value, tags, state) => ((InstrumentState)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<byte>(static (inst, value, tags, state) => ((InstrumentState)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<decimal>(static (inst, value, tags, state) => ((InstrumentState)state!).Record((double)value, tags));
        _listener.Start();
    }

    /// <summary>Renders every aggregated series, observing observable instruments first.</summary>
    public string Render()
    {
        lock (_renderLock)
        {
            return RenderObserved();
        }
    }

    private string RenderObserved()
    {
        // An observable instrument reports what exists now (a top-N list, hosted groups): series it no longer reports go,
        // so changing label values cannot pile up series.
        foreach (var state in _states.Values)
        {
            if (state.IsObservable)
            {
                state.Clear();
            }
        }

        _listener.RecordObservableInstruments();
        var families = new SortedDictionary<string, List<InstrumentState>>(StringComparer.Ordinal);
        foreach (var state in _states.Values)
        {
            if (!families.TryGetValue(state.FamilyName, out var list))
            {
                families[state.FamilyName] = list = [];
            }

            list.Add(state);
        }

        var sb = new StringBuilder(4096);
        foreach (var (name, states) in families)
        {
            var first = states[0];
            if (!string.IsNullOrEmpty(first.Instrument.Description))
            {
                sb.Append("# HELP ").Append(name).Append(' ').Append(EscapeHelp(first.Instrument.Description)).Append('\n');
            }

            sb.Append("# TYPE ").Append(name).Append(' ').Append(first.PromType).Append('\n');
            foreach (var state in states)
            {
                state.WriteTo(sb);
            }
        }

        return sb.ToString();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _listener.Dispose();
    }

    private static double[] BoundsFor(Instrument instrument)
    {
        if (instrument is Histogram<double> { Advice.HistogramBucketBoundaries: { } b1 })
        {
            return [.. b1];
        }

        if (instrument is Histogram<long> { Advice.HistogramBucketBoundaries: { } b2 })
        {
            return [.. b2.Select(static v => (double)v)];
        }

        return DefaultBounds;
    }

    private static string EscapeHelp(string text) => text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    internal static string SanitizeName(string name)
    {
        var sb = new StringBuilder(name.Length);
        foreach (var c in name)
        {
            sb.Append(char.IsAsciiLetterOrDigit(c) || c == '_' || c == ':' ? c : '_');
        }

        if (sb.Length == 0 || char.IsAsciiDigit(sb[0]))
        {
            sb.Insert(0, '_');
        }

        return sb.ToString();
    }

    internal static string EscapeLabelValue(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    internal static string FormatValue(double value) =>
        double.IsPositiveInfinity(value) ? "+Inf" :
        double.IsNegativeInfinity(value) ? "-Inf" :
        double.IsNaN(value) ? "NaN" :
        value.ToString("R", CultureInfo.InvariantCulture);

    private sealed class InstrumentState
    {
        private readonly Kind _kind;
        private readonly double[] _bounds;
        private readonly ConcurrentDictionary<string, Series> _series = new(StringComparer.Ordinal);

        public InstrumentState(Instrument instrument, double[] bounds)
        {
            Instrument = instrument;
            _bounds = bounds;
            var type = instrument.GetType();
            var generic = type.IsGenericType ? type.GetGenericTypeDefinition() : type;
            _kind = generic == typeof(Counter<>) || generic == typeof(ObservableCounter<>) ? Kind.Counter
                : generic == typeof(Histogram<>) ? Kind.Histogram
                : generic == typeof(UpDownCounter<>) ? Kind.UpDownCounter
                : Kind.Gauge; // ObservableGauge, ObservableUpDownCounter, Gauge: last value wins
            IsObservable = generic == typeof(ObservableCounter<>) || generic == typeof(ObservableUpDownCounter<>) || generic == typeof(ObservableGauge<>);
            var baseName = SanitizeName(instrument.Name);
            if (!string.IsNullOrEmpty(instrument.Unit) && instrument.Unit is "s" or "ms" or "By")
            {
                var unitSuffix = instrument.Unit switch { "s" => "_seconds", "ms" => "_milliseconds", _ => "_bytes" };
                if (!baseName.EndsWith(unitSuffix, StringComparison.Ordinal))
                {
                    baseName += unitSuffix;
                }
            }

            FamilyName = _kind == Kind.Counter && !baseName.EndsWith("_total", StringComparison.Ordinal) ? baseName + "_total" : baseName;
        }

        public Instrument Instrument { get; }

        public string FamilyName { get; }

        public bool IsObservable { get; }

        public string PromType => _kind switch
        {
            Kind.Counter => "counter",
            Kind.Histogram => "histogram",
            _ => "gauge",
        };

        public void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var labels = FormatLabels(tags);
            var series = _series.GetOrAdd(labels, static (_, bounds) => new Series(bounds.Length), _bounds);
            lock (series)
            {
                switch (_kind)
                {
                    case Kind.Counter when IsObservable:
                    case Kind.Gauge:
                        series.Value = value;
                        break;
                    case Kind.Counter:
                    case Kind.UpDownCounter:
                        series.Value += value;
                        break;
                    case Kind.Histogram:
                        series.Value += value;
                        series.Count++;
                        var i = Array.BinarySearch(_bounds, value);
                        series.Buckets[i >= 0 ? i : ~i]++;
                        break;
                }
            }
        }

        public void Clear() => _series.Clear();

        public void WriteTo(StringBuilder sb)
        {
            foreach (var (labels, series) in _series)
            {
                lock (series)
                {
                    if (_kind != Kind.Histogram)
                    {
                        sb.Append(FamilyName).Append(labels.Length == 0 ? string.Empty : "{" + labels + "}")
                          .Append(' ').Append(FormatValue(series.Value)).Append('\n');
                        continue;
                    }

                    long cumulative = 0;
                    for (var i = 0; i <= _bounds.Length; i++)
                    {
                        cumulative += series.Buckets[i];
                        var le = i < _bounds.Length ? FormatValue(_bounds[i]) : "+Inf";
                        sb.Append(FamilyName).Append("_bucket{").Append(labels).Append(labels.Length == 0 ? string.Empty : ",")
                          .Append("le=\"").Append(le).Append("\"} ").Append(cumulative).Append('\n');
                    }

                    var suffix = labels.Length == 0 ? string.Empty : "{" + labels + "}";
                    sb.Append(FamilyName).Append("_sum").Append(suffix).Append(' ').Append(FormatValue(series.Value)).Append('\n');
                    sb.Append(FamilyName).Append("_count").Append(suffix).Append(' ').Append(series.Count).Append('\n');
                }
            }
        }

        private static string FormatLabels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            if (tags.Length == 0)
            {
                return string.Empty;
            }

            var pairs = new KeyValuePair<string, object?>[tags.Length];
            tags.CopyTo(pairs);
            Array.Sort(pairs, static (a, b) => string.CompareOrdinal(a.Key, b.Key));
            var sb = new StringBuilder();
            foreach (var (key, value) in pairs)
            {
                if (sb.Length > 0)
                {
                    sb.Append(',');
                }

                sb.Append(SanitizeName(key)).Append("=\"")
                  .Append(EscapeLabelValue(Convert.ToString(value, CultureInfo.InvariantCulture) ?? string.Empty)).Append('"');
            }

            return sb.ToString();
        }
    }

    private sealed class Series(int boundCount)
    {
        public double Value;
        public long Count;
        public readonly long[] Buckets = new long[boundCount + 1];
    }

    private enum Kind
    {
        Counter,
        UpDownCounter,
        Gauge,
        Histogram,
    }
}
