using System.Diagnostics.Metrics;

namespace Kdb.ServiceDefaults.Tests;

public sealed class PrometheusExporterTests
{
    [Fact]
    public void Render_Counter_SumsPerLabelSetWithTotalSuffix()
    {
        using var meter = new Meter("Kdb.Test.Counter." + Guid.NewGuid().ToString("N"));
        using var exporter = new PrometheusExporter(m => m == meter);
        var counter = meter.CreateCounter<long>("kdb.requests", description: "Requests served.");
        counter.Add(2, new KeyValuePair<string, object?>("route", "/a"));
        counter.Add(3, new KeyValuePair<string, object?>("route", "/a"));
        counter.Add(1, new KeyValuePair<string, object?>("route", "/b"));

        var text = exporter.Render();

        Assert.Contains("# HELP kdb_requests_total Requests served.\n", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE kdb_requests_total counter\n", text, StringComparison.Ordinal);
        Assert.Contains("kdb_requests_total{route=\"/a\"} 5\n", text, StringComparison.Ordinal);
        Assert.Contains("kdb_requests_total{route=\"/b\"} 1\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Render_Histogram_WritesCumulativeBucketsSumAndCount()
    {
        using var meter = new Meter("Kdb.Test.Histogram." + Guid.NewGuid().ToString("N"));
        using var exporter = new PrometheusExporter(m => m == meter);
        var histogram = meter.CreateHistogram<double>("kdb.latency", unit: "s", advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.1, 1] });
        histogram.Record(0.05);
        histogram.Record(0.5);
        histogram.Record(5);

        var text = exporter.Render();

        Assert.Contains("# TYPE kdb_latency_seconds histogram\n", text, StringComparison.Ordinal);
        Assert.Contains("kdb_latency_seconds_bucket{le=\"0.1\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("kdb_latency_seconds_bucket{le=\"1\"} 2\n", text, StringComparison.Ordinal);
        Assert.Contains("kdb_latency_seconds_bucket{le=\"+Inf\"} 3\n", text, StringComparison.Ordinal);
        Assert.Contains("kdb_latency_seconds_sum 5.55\n", text, StringComparison.Ordinal);
        Assert.Contains("kdb_latency_seconds_count 3\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Render_ObservableGaugeAndUpDownCounter_ReportCurrentValues()
    {
        using var meter = new Meter("Kdb.Test.Gauge." + Guid.NewGuid().ToString("N"));
        using var exporter = new PrometheusExporter(m => m == meter);
        var level = 7;
        meter.CreateObservableGauge("kdb.queue.depth", () => level);
        var connections = meter.CreateUpDownCounter<int>("kdb.connections");
        connections.Add(3);
        connections.Add(-1);

        Assert.Contains("kdb_queue_depth 7\n", exporter.Render(), StringComparison.Ordinal);
        level = 9;
        var text = exporter.Render();
        Assert.Contains("kdb_queue_depth 9\n", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE kdb_connections gauge\n", text, StringComparison.Ordinal);
        Assert.Contains("kdb_connections 2\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Render_HostileLabelValues_AreEscaped()
    {
        using var meter = new Meter("Kdb.Test.Escape." + Guid.NewGuid().ToString("N"));
        using var exporter = new PrometheusExporter(m => m == meter);
        meter.CreateCounter<int>("kdb-weird.name").Add(1, new KeyValuePair<string, object?>("bad key", "a\"b\\c\nd"));

        var text = exporter.Render();

        Assert.Contains("kdb_weird_name_total{bad_key=\"a\\\"b\\\\c\\nd\"} 1\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void SanitizeName_LeadingDigit_GetsUnderscore() =>
        Assert.Equal("_9lives", PrometheusExporter.SanitizeName("9lives"));
}
