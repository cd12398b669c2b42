using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace Kdb.Provisioning;

/// <summary>
/// Provisioning settings (configuration section <c>Provisioning</c>). Where the control plane and the
/// service identity come from depends on the host: the worker has <c>ControlPlane:Url</c> and
/// <c>ServiceClient:Id/Secret</c> (as the nodes do); inside the control plane the consumers call the
/// control plane's own port with the provisioning client's secret from <c>ServiceClients:Provisioning:Secret</c>.
/// </summary>
public sealed class ProvisioningOptions
{
    public const string Section = "Provisioning";

    /// <summary>The control plane's base URL (its internal API and token endpoint).</summary>
    public Uri ControlPlaneUrl { get; set; } = new("http://127.0.0.1:5100");

    /// <summary>The service client provisioning authenticates as.</summary>
    public string ClientId { get; set; } = "kdb-provisioning";

    public string ClientSecret { get; set; } = string.Empty;

    /// <summary>Root directory of the filesystem object store (backups).</summary>
    public string ObjectStorePath { get; set; } = Path.Combine(".kdb", "objects");

    /// <summary>Replicas of a new shard group.</summary>
    public int ReplicasPerGroup { get; set; } = 3;

    /// <summary>Databases a group takes before placement forms a new one.</summary>
    public int MaxDatabasesPerGroup { get; set; } = 500;

    /// <summary>Bytes of each stored (sealed) backup chunk, the last one less: its plaintext is 28 bytes shorter (nonce and tag).</summary>
    public int BackupChunkBytes { get; set; } = 4 << 20;

    /// <summary>How often placement checks that a group with room exists, forming one ahead of demand; zero turns it off.</summary>
    public TimeSpan GroupAheadInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How long a new group may take to elect a leader.</summary>
    public TimeSpan GroupLeaderTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Usage polling interval; zero turns usage collection off.</summary>
    public TimeSpan UsageInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often dead nodes' replicas are looked for and replaced; zero turns repair off.</summary>
    public TimeSpan RepairInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a replacement learner may take to catch up before the round gives up (the next one resumes).</summary>
    public TimeSpan RepairCatchUpTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>How long a move waits for its target group to have a leader before it gives up (before any pause).</summary>
    public TimeSpan MoveTargetLeaderTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How often a long operation (backup, restore, drill, move) tells the control plane it is still being worked on; well
    /// under the control plane's <c>Operations:RepublishAfter</c> (30 s), past which it re-sends the request.
    /// </summary>
    public TimeSpan OperationHeartbeatInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The most catch-up rounds a move runs before it pauses writes: after the first copy, each round copies the changes
    /// made since the previous one while writes go on. A database written faster than it can be copied still moves, its
    /// pause then covers what the last round left.
    /// </summary>
    public int MoveCatchUpRounds { get; set; } = 8;

    /// <summary>A round that copied at most this many changes ends the catch-up: the pause then covers about as many.</summary>
    public int MoveCatchUpChanges { get; set; } = 2_000;

    /// <summary>
    /// Moves this process runs at once; more wait (their operations stay running, heartbeated). Besides, one move in or out
    /// of a shard group at a time, cluster-wide (the operation claim holds the groups).
    /// </summary>
    public int MaxConcurrentMoves { get; set; } = 2;

    /// <summary>
    /// How long after its request a move may still copy: past it, a move not yet adopted rolls back (an adopted one goes
    /// forward). Below the control plane's <c>Operations:Timeout</c> (80% of it when that setting is present), so the
    /// request the control plane re-sends past its timeout always gets a final answer.
    /// </summary>
    public TimeSpan MoveTimeout { get; set; } = TimeSpan.FromMinutes(8);

    /// <summary>Reads the options from either host's configuration (see the type's summary).</summary>
    public static ProvisioningOptions From(IConfiguration configuration)
    {
        var options = configuration.GetSection(Section).Get<ProvisioningOptions>() ?? new ProvisioningOptions();
        if (configuration.GetSection(Section)["ControlPlaneUrl"] is null)
        {
            var url = configuration["ControlPlane:Url"];
            var port = configuration.GetValue("ControlPlane:Port", 5100);
            options.ControlPlaneUrl = new Uri(string.IsNullOrEmpty(url) ? $"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}" : url);
        }
        if (configuration.GetSection(Section)["MoveTimeout"] is null && configuration.GetValue<TimeSpan?>("Operations:Timeout") is { } operations)
        {
            options.MoveTimeout = operations * 0.8;
        }
        if (string.IsNullOrEmpty(options.ClientSecret))
        {
            options.ClientId = configuration["ServiceClient:Id"] ?? options.ClientId;
            options.ClientSecret = configuration["ServiceClient:Secret"] is { Length: > 0 } own ? own : configuration["ServiceClients:Provisioning:Secret"] ?? string.Empty;
        }
        return options;
    }
}
