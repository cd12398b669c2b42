using Kdb.Node.Tests.Cluster;
using Xunit.Abstractions;

namespace Kdb.Node.Tests.Standalone;

/// <summary>
/// The standalone node's engine series on <c>/metrics</c>: with a tiny memtable, pgbench's updates flush and compact,
/// and its selects go through the learned index, so the probe-length histogram, mispredicts, model-build and
/// compaction histograms all move.
/// </summary>
[Collection(StandaloneCollection.Name)]
public sealed class EngineMetricsTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Engine_histograms_appear_and_move_after_work()
    {
        await using var node = await StandaloneNode.StartAsync(new Dictionary<string, string> { ["Standalone:MemtableBytes"] = "8192" });
        var before = await ScrapeAsync(node);
        Assert.Contains("# TYPE kdb_rmi_probe_length_bucket ", before, StringComparison.Ordinal);

        var init = await Tools.PgbenchAsync(node, TimeSpan.FromMinutes(5), "-i", "-s", "1");
        Assert.True(init.ExitCode == 0, Tools.Describe(init));
        // Small update transactions fill the tiny memtable over and over: flushes, then compactions of their segments.
        var update = await Tools.PgbenchAsync(node, TimeSpan.FromMinutes(3), "-N", "-t", "150", "-c", "2", "--max-tries=10", "-M", "prepared");
        Assert.True(update.ExitCode == 0, Tools.Describe(update));
        var select = await Tools.PgbenchAsync(node, TimeSpan.FromMinutes(2), "-S", "-T", "2", "-M", "prepared");
        Assert.True(select.ExitCode == 0, Tools.Describe(select));
        var after = await ScrapeAsync(node);
        output.WriteLine(string.Join('\n', after.Split('\n').Where(l => l.StartsWith("kdb_rmi", StringComparison.Ordinal) || l.StartsWith("kdb_engine", StringComparison.Ordinal))));

        var lookups = Unlabelled(after, "kdb_rmi_probe_length_count");
        Assert.True(lookups > Unlabelled(before, "kdb_rmi_probe_length_count"));
        Assert.Equal(lookups, EpollCompletionsTests.Value(after, "kdb_rmi_probe_length_bucket", "le=\"+Inf\""));
        Assert.True(Unlabelled(after, "kdb_rmi_probe_length_sum") >= lookups);
        Assert.True(Unlabelled(after, "kdb_rmi_build_seconds_count") > Unlabelled(before, "kdb_rmi_build_seconds_count"));
        Assert.True(Unlabelled(after, "kdb_rmi_build_seconds_sum") > 0);
        Assert.True(Unlabelled(after, "kdb_engine_compactions_total") >= 1);
        Assert.Equal(Unlabelled(after, "kdb_engine_compactions_total"), Unlabelled(after, "kdb_engine_compaction_seconds_count"));
        Assert.True(Unlabelled(after, "kdb_engine_compaction_written_bytes_total") > 0);
        Assert.True(Unlabelled(after, "kdb_rmi_mispredicts_total") <= lookups);

        // More reads move the histogram again: it counts, it is not a gauge of the last scrape.
        var again = await Tools.PgbenchAsync(node, TimeSpan.FromMinutes(2), "-S", "-t", "200", "-M", "prepared");
        Assert.True(again.ExitCode == 0, Tools.Describe(again));
        // The node reads engine stats at most every 200 ms (one read serves all series of a scrape): poll past that.
        var moved = Unlabelled(await ScrapeAsync(node), "kdb_rmi_probe_length_count");
        for (var tries = 0; moved <= lookups && tries < 40; tries++)
        {
            await Task.Delay(250);
            moved = Unlabelled(await ScrapeAsync(node), "kdb_rmi_probe_length_count");
        }

        Assert.True(moved > lookups, $"{moved} lookups after 200 more selects, {lookups} before");
    }

    private static double Unlabelled(string exposition, string name)
    {
        var prefix = name + " ";
        var line = exposition.Split('\n').FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal))
            ?? throw new Xunit.Sdk.XunitException($"no series {name} in:\n{exposition}");
        return double.Parse(line[prefix.Length..], System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task<string> ScrapeAsync(StandaloneNode node)
    {
        using var http = new HttpClient();
        return await http.GetStringAsync($"http://127.0.0.1:{node.ManagementPort}/metrics");
    }
}
