using System.Diagnostics;
using System.Globalization;
using System.Net;
using Kdb.Node.Admin;
using Kdb.Node.Admin.Wire;
using Kdb.Testing.Provisioning;
using Npgsql;

namespace Kdb.Provisioning.Benchmarks;

/// <summary>
/// A move of a loaded database to another shard group while a client keeps inserting (issue 9: "snapshot copy plus
/// catch-up, then a route flip with a brief write pause"). The pause is provisioning's own measure (source paused → pause
/// lifted on the target, <c>kdb_move_stage_seconds_total{stage="pause"}</c>); the client's longest wait between two
/// acknowledged writes adds its reconnect after the flip. The baseline is the move's whole duration, which a move that
/// paused writes for its whole copy would have paused them.
/// </summary>
internal sealed class MoveBench(LocalCloud cloud, Action<string, double, string> emit, Action<string> progress)
{
    private static readonly HttpClient AdminHttp = NodeAdminClient.CreateHttpClient();

    public async Task RunAsync(string token, string org, string databaseId, string password, int megabytes)
    {
        var target = await NewGroupAsync();
        var port = await cloud.ReplicaPgPortAsync(databaseId);
        await using (var conn = new NpgsqlConnection(LocalCloud.ConnectionString(port, databaseId, password)))
        {
            await conn.OpenAsync();
            await using var create = new NpgsqlCommand("CREATE TABLE IF NOT EXISTS w (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())", conn);
            await create.ExecuteNonQueryAsync();
        }
        progress($"move: {megabytes} MB database to group {target} with a client inserting throughout");
        var before = await ScrapeAsync();
        using var stop = new CancellationTokenSource();
        var writer = Task.Run(() => WriteAsync(port, databaseId, password, stop.Token));
        await Task.Delay(500);
        var operatorToken = await cloud.ServiceTokenAsync("kdb-operator", LocalCloud.OperatorSecret);
        var watch = Stopwatch.StartNew();
        var (status, move) = await cloud.SendAsync(HttpMethod.Post, $"/internal/v1/orgs/{org}/databases/{databaseId}/move", operatorToken,
            new { targetGroupId = target.ToString(CultureInfo.InvariantCulture) });
        if (status != HttpStatusCode.Accepted)
        {
            throw new InvalidOperationException($"move: {(int)status} {move}");
        }
        var operation = move.GetProperty("operation").GetProperty("id").GetString()!;
        var done = await cloud.WaitForAsync($"/v1/operations/{operation}", token, o => o.GetProperty("status").GetString() != "running", seconds: 600);
        var moveSeconds = watch.Elapsed.TotalSeconds;
        await Task.Delay(1000);
        await stop.CancelAsync();
        var (acknowledged, longestGap, refused) = await writer;
        if (done.GetProperty("status").GetString() != "succeeded")
        {
            throw new InvalidOperationException("move failed: " + done);
        }
        var after = await ScrapeAsync();
        double Delta(string series) => after.GetValueOrDefault(series) - before.GetValueOrDefault(series);
        var pause = Delta("kdb_move_stage_seconds_total{stage=\"pause\"}");
        emit("move_s", moveSeconds, "s");
        emit("move_write_pause_s", pause, "s");
        emit("move_pause_over_move", pause / moveSeconds, "x");
        emit("move_copy_s", Delta("kdb_move_stage_seconds_total{stage=\"copy\"}"), "s");
        emit("move_catch_up_s", Delta("kdb_move_stage_seconds_total{stage=\"catch_up\"}"), "s");
        emit("move_catch_up_rounds", Delta("kdb_move_catch_up_rounds_total"), "rounds");
        foreach (var stage in (string[])["last_round", "verify", "adopt", "flip", "drop_source", "lift"])
        {
            emit($"move_pause_{stage}_s", Delta($"kdb_move_stage_seconds_total{{stage=\"pause_{stage}\"}}"), "s");
        }
        emit("move_client_longest_write_gap_s", longestGap, "s");
        emit("move_client_writes_acknowledged", acknowledged, "writes");
        emit("move_client_writes_refused", refused, "writes");
        emit("move_mb_per_s", megabytes / moveSeconds, "MB/s");
    }

    /// <summary>Inserts one row at a time until stopped, reconnecting after an ended session; the longest time between two
    /// acknowledged inserts is what the client felt of the pause and the route flip.</summary>
    private static async Task<(int Acknowledged, double LongestGapSeconds, int Refused)> WriteAsync(int port, string databaseId, string password, CancellationToken stop)
    {
        var acknowledged = 0;
        var refused = 0;
        var longest = 0.0;
        var last = Stopwatch.GetTimestamp();
        var next = 1;
        NpgsqlConnection? conn = null;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                if (conn is null)
                {
                    conn = new NpgsqlConnection(LocalCloud.ConnectionString(port, databaseId, password));
                    await conn.OpenAsync(CancellationToken.None);
                }
                await using var insert = new NpgsqlCommand(string.Create(CultureInfo.InvariantCulture, $"INSERT INTO w (id) VALUES ({next++})"), conn);
                await insert.ExecuteNonQueryAsync(CancellationToken.None);
                var now = Stopwatch.GetTimestamp();
                longest = Math.Max(longest, Stopwatch.GetElapsedTime(last, now).TotalSeconds);
                last = now;
                acknowledged++;
            }
            catch (PostgresException e) when (e.SqlState == "25006")
            {
                refused++;
                await Task.Delay(5, CancellationToken.None);
            }
            catch (Exception e) when (e is NpgsqlException or IOException or InvalidOperationException)
            {
                refused++;
                if (conn is not null)
                {
                    await conn.DisposeAsync();
                    conn = null;
                }
                await Task.Delay(5, CancellationToken.None);
            }
        }
        if (conn is not null)
        {
            await conn.DisposeAsync();
        }
        return (acknowledged, longest, refused);
    }

    private async Task<ulong> NewGroupAsync()
    {
        var groupId = (ulong)Random.Shared.NextInt64(1, long.MaxValue);
        var request = new CreateGroupRequest { GroupId = groupId };
        request.Members.AddRange(cloud.Nodes.Select(n => new Member { NodeId = n.NodeId, InternalUrl = n.InternalUrl }));
        var token = await cloud.ServiceTokenAsync("kdb-provisioning", LocalCloud.ProvisioningSecret);
        var admins = cloud.Nodes.Select(n => new NodeAdminClient(AdminHttp, new Uri(n.InternalUrl), _ => ValueTask.FromResult(token))).ToList();
        await Task.WhenAll(admins.Select(a => a.CreateGroupAsync(request)));
        var deadline = Stopwatch.StartNew();
        while (!(await admins[0].StatusAsync()).Groups.Any(g => g.GroupId == groupId && g.LeaderNodeId.Length > 0))
        {
            if (deadline.Elapsed > TimeSpan.FromMinutes(1))
            {
                throw new TimeoutException($"group {groupId} elected no leader");
            }
            await Task.Delay(100);
        }
        return groupId;
    }

    private async Task<Dictionary<string, double>> ScrapeAsync()
    {
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in (await cloud.Http.GetStringAsync(new Uri(cloud.ControlPlaneUrl.TrimEnd('/') + "/metrics"))).Split('\n'))
        {
            var space = line.LastIndexOf(' ');
            if (line.StartsWith("kdb_move_", StringComparison.Ordinal) && space > 0
                && double.TryParse(line[(space + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            {
                values[line[..space]] = value;
            }
        }
        return values;
    }
}
