using Kdb.Cluster;
using Kdb.Node.Cluster;
using Kdb.ServiceDefaults;

namespace Kdb.Node.Tests.Cluster;

/// <summary>Per-database series on <c>/metrics</c> are the top N of each measure (bounded cardinality), and usage
/// counters of databases idle through a whole seal leave memory without losing a count.</summary>
public sealed class DatabaseMetricsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kdb-metrics-").FullName;

    [Fact]
    public void Per_database_series_are_the_top_n_and_stay_bounded_as_the_set_changes()
    {
        using var host = ClusterHost.Open(new ClusterOptions { DataDirectory = _dir, NodeId = "n1", InternalUrl = "http://127.0.0.1:1" }, _ => { }, _ => { });
        using var usage = new UsageMeter(_dir, TimeProvider.System, _ => 0);
        using var metrics = new ClusterMetrics(host, usage, topDatabases: 5);
        using var exporter = new PrometheusExporter(m => m.Name == "Kdb.Node.Cluster");
        for (var i = 0; i < 1000; i++)
        {
            usage.AddWrite($"db{i}", rows: i + 1, bytes: 10 * (i + 1));
            usage.AddRead($"db{i}", rows: 1000 - i, bytes: 1);
        }

        var text = exporter.Render();
        Assert.Equal(5, Series(text, "kdb_database_rows_written_total{"));
        Assert.Contains("kdb_database_rows_written_total{database=\"db999\"} 1000\n", text, StringComparison.Ordinal);
        Assert.Contains("kdb_database_rows_written_total{database=\"db995\"} 996\n", text, StringComparison.Ordinal);
        Assert.DoesNotContain("kdb_database_rows_written_total{database=\"db994\"}", text, StringComparison.Ordinal);
        Assert.Contains("kdb_database_rows_read_total{database=\"db0\"} 1000\n", text, StringComparison.Ordinal);
        Assert.Contains("kdb_database_written_bytes_total{database=\"db999\"} 10000\n", text, StringComparison.Ordinal);
        Assert.Contains("kdb_databases_tracked 1000\n", text, StringComparison.Ordinal);

        // The first seal hands the work out; through the second every database was idle, so their counters leave memory.
        Assert.Equal(1000, usage.ReadSince(0).Records.Count);
        var cursor = usage.ReadSince(0).Cursor;
        Assert.Empty(usage.ReadSince(cursor).Records);
        Assert.Equal(0, usage.TrackedDatabases);

        // Another set becomes active: the old top databases' series are gone, not left behind beside the new ones.
        for (var i = 1; i <= 3; i++)
        {
            usage.AddWrite($"other{i}", rows: i, bytes: i);
        }
        Thread.Sleep(1100); // the top-N list is recomputed at most once a second
        text = exporter.Render();
        Assert.Equal(3, Series(text, "kdb_database_rows_written_total{"));
        Assert.Contains("kdb_database_rows_written_total{database=\"other3\"} 3\n", text, StringComparison.Ordinal);
        Assert.DoesNotContain("db999", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Retiring_idle_counters_while_writers_race_with_seals_loses_no_increment()
    {
        using var usage = new UsageMeter(_dir, TimeProvider.System, _ => 0);
        const int writers = 4;
        const int addsPerWriter = 20_000;
        var sealedRows = 0L;
        ulong cursor = 0;
        using var stop = new CancellationTokenSource();
        var sealer = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                var (records, next) = usage.ReadSince(cursor);
                sealedRows += records.Sum(r => r.RowsWritten);
                cursor = next;
            }
        });
        await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(() =>
        {
            for (var i = 0; i < addsPerWriter; i++)
            {
                usage.AddWrite("db" + (i % 50).ToString(System.Globalization.CultureInfo.InvariantCulture), 1, 1);
            }
        })));
        await stop.CancelAsync();
        await sealer;
        sealedRows += usage.ReadSince(cursor).Records.Sum(r => r.RowsWritten);
        Assert.Equal(writers * addsPerWriter, sealedRows);
    }

    private static int Series(string text, string prefix) =>
        text.Split('\n').Count(line => line.StartsWith(prefix, StringComparison.Ordinal));

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
