using System.Globalization;
using Kdb.Testing.Provisioning;

namespace Kdb.Provisioning.Benchmarks;

/// <summary>
/// Where one backup's and one restore's wall time goes: the seconds counters of provisioning's stages (control plane
/// <c>/metrics</c>, provisioning embedded) and of the nodes' export and import stages (each node's management
/// <c>/metrics</c>, summed over the nodes), differenced between two scrapes. What the REST figure spends beyond
/// provisioning's stages is the control plane: request, event round trips, status poll.
/// </summary>
internal sealed class BackupStageReport
{
    private static readonly string[] Families = ["kdb_backup_stage_seconds_total", "kdb_node_backup_stage_seconds_total", "kdb_import_apply_seconds_total"];

    private readonly Dictionary<string, double> _values;

    private BackupStageReport(Dictionary<string, double> values) => _values = values;

    public static async Task<BackupStageReport> ScrapeAsync(LocalCloud cloud)
    {
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        Add(values, await cloud.Http.GetStringAsync(new Uri(cloud.ControlPlaneUrl.TrimEnd('/') + "/metrics")));
        foreach (var node in cloud.Nodes)
        {
            try
            {
                Add(values, await cloud.Http.GetStringAsync(new Uri("http://127.0.0.1:" + node.Ports[3].ToString(CultureInfo.InvariantCulture) + "/metrics")));
            }
            catch (HttpRequestException)
            {
                // A node that does not answer leaves its share out; the provisioning stages still add up.
            }
        }
        return new BackupStageReport(values);
    }

    /// <summary>Emits <c>{prefix}_stage_{stage}_s</c> for the stages whose names start with <paramref name="prefix"/>, the
    /// nodes' <c>{prefix}_node_{stage}_s</c> for <paramref name="nodePrefix"/>, and <c>{prefix}_stage_control_plane_s</c>: the
    /// wall time beyond provisioning's top-level stages.</summary>
    public void EmitSince(BackupStageReport before, string prefix, string nodePrefix, IReadOnlyList<string> topLevel, double wallSeconds, Action<string, double, string> emit)
    {
        var provisioning = 0.0;
        foreach (var (series, value) in _values.OrderBy(v => v.Key, StringComparer.Ordinal))
        {
            var delta = value - before._values.GetValueOrDefault(series);
            var stage = Label(series);
            if (series.StartsWith(Families[0], StringComparison.Ordinal) && stage.StartsWith(prefix + "_", StringComparison.Ordinal))
            {
                emit($"{prefix}_stage_{stage[(prefix.Length + 1)..]}_s", delta, "s");
                provisioning += topLevel.Contains(stage) ? delta : 0;
            }
            else if (series.StartsWith(Families[1], StringComparison.Ordinal) && stage.StartsWith(nodePrefix, StringComparison.Ordinal) && delta > 0)
            {
                emit($"{prefix}_node_{stage}_s", delta, "s");
            }
            else if (series.StartsWith(Families[2], StringComparison.Ordinal) && prefix == "restore" && delta > 0)
            {
                emit($"{prefix}_node_import_apply_all_replicas_s", delta, "s");
            }
        }
        emit($"{prefix}_stage_control_plane_s", wallSeconds - provisioning, "s");
    }

    private static void Add(Dictionary<string, double> values, string text)
    {
        foreach (var line in text.Split('\n'))
        {
            if (!Families.Any(f => line.StartsWith(f, StringComparison.Ordinal)))
            {
                continue;
            }
            var space = line.LastIndexOf(' ');
            if (space > 0 && double.TryParse(line[(space + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            {
                values[line[..space]] = values.GetValueOrDefault(line[..space]) + value;
            }
        }
    }

    private static string Label(string series)
    {
        var at = series.IndexOf("stage=\"", StringComparison.Ordinal);
        if (at < 0)
        {
            return "";
        }
        var start = at + "stage=\"".Length;
        var end = series.IndexOf('"', start);
        return end < 0 ? "" : series[start..end];
    }
}
