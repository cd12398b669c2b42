using System.Globalization;
using Kdb.Messaging;
using Kdb.Node.Admin;
using Kdb.Provisioning.ControlPlane;
using Kdb.Provisioning.Placement;

namespace Kdb.Provisioning.Tests;

/// <summary>
/// What keeps a creation quick: every stage from request to <c>ready</c> is timed on the control plane's metrics (so a
/// slow one can be found), and a shard group with room is formed ahead of demand (so no creation waits for an election).
/// </summary>
public sealed partial class LocalCloudTests
{
    private static readonly string[] EveryCreationStage =
    [
        CreationStages.Api, CreationStages.Outbox, CreationStages.Queue, CreationStages.Placement, CreationStages.NodeCreate,
        CreationStages.OutcomeQueue, CreationStages.Route, CreationStages.Ready, CreationStages.Total,
    ];

    [Fact]
    public async Task CreateDatabase_TimesEveryStage_OnTheControlPlanesMetrics()
    {
        var before = await StageCountsAsync();
        var (token, org) = await cloud.UserAsync("stages");

        await cloud.CreateReadyDatabaseAsync(token, org, "timed");

        var after = await StageCountsAsync();
        foreach (var stage in EveryCreationStage)
        {
            Assert.True(after.GetValueOrDefault(stage) > before.GetValueOrDefault(stage),
                $"stage {stage} was not timed: {before.GetValueOrDefault(stage)} → {after.GetValueOrDefault(stage)} creations");
        }
    }

    [Fact]
    public async Task FormGroupAhead_WhenNoGroupHasRoom_FormsOneWithALeader_AndNoneWhileOneHasRoom()
    {
        // A group limit of one database makes every group this cloud already has full.
        var full = NewFleet(maxDatabasesPerGroup: 1);
        var formed = await full.FormGroupAheadAsync(CancellationToken.None);

        Assert.NotNull(formed);
        var reports = new List<Node.Admin.Wire.GroupInfo>();
        foreach (var admin in await AdminsAsync())
        {
            reports.AddRange((await admin.StatusAsync()).Groups.Where(g => g.GroupId == formed.Value));
        }
        Assert.Equal(3, reports.Count);
        Assert.Contains(reports, g => g.LeaderNodeId is { Length: > 0 });
        // With the default limit the new group (empty) is room enough: nothing more is formed.
        Assert.Null(await NewFleet(maxDatabasesPerGroup: new ProvisioningOptions().MaxDatabasesPerGroup).FormGroupAheadAsync(CancellationToken.None));
    }

    private Fleet NewFleet(int maxDatabasesPerGroup)
    {
        var options = new ProvisioningOptions
        {
            ControlPlaneUrl = new Uri(cloud.ControlPlaneUrl),
            ClientSecret = LocalCloud.ProvisioningSecret,
            MaxDatabasesPerGroup = maxDatabasesPerGroup,
        };
        return new Fleet(new ControlPlaneClient(new HttpClient(), options, TimeProvider.System), NodeAdminClient.CreateHttpClient(), options);
    }

    /// <summary>Creations timed per stage so far: the <c>_count</c> series of the stage histogram on <c>/metrics</c>.</summary>
    private async Task<Dictionary<string, double>> StageCountsAsync()
    {
        const string prefix = "kdb_database_create_stage_seconds_count{stage=\"";
        var counts = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in (await cloud.Http.GetStringAsync(new Uri(cloud.ControlPlaneUrl.TrimEnd('/') + "/metrics"))).Split('\n'))
        {
            if (line.StartsWith(prefix, StringComparison.Ordinal) && line.IndexOf("\"}", prefix.Length, StringComparison.Ordinal) is var end and > 0)
            {
                counts[line[prefix.Length..end]] = double.Parse(line[(end + 2)..].Trim(), CultureInfo.InvariantCulture);
            }
        }
        return counts;
    }
}
