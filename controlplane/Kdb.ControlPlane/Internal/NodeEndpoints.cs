using System.Text.Json;
using System.Text.Json.Serialization;
using Kdb.ControlPlane.Api;
using Kdb.ControlPlane.Data;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Internal;

/// <summary>Node heartbeats (scope <c>kdb.node</c>) and the node list provisioning places databases with (<c>kdb.provisioning</c>).</summary>
public static class NodeEndpoints
{
    /// <summary>Raft's <c>RaftRole.Leader</c>, for nodes that send the role as its number.</summary>
    private const int LeaderRoleCode = 4;

    [JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
    public sealed record Heartbeat(string? PgEndpoint, string? InternalEndpoint, string? HttpEndpoint, int Capacity, JsonElement? Groups);

    public sealed record NodeView(string NodeId, string PgEndpoint, string InternalEndpoint, string HttpEndpoint, int Capacity, DateTimeOffset LastHeartbeatAt, string Status, JsonElement Groups);

    public static IEndpointRouteBuilder MapNodeEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/internal/v1/nodes/{nodeId}/heartbeat", HeartbeatAsync).RequireAuthorization(InternalAuth.Node);
        app.MapGet("/internal/v1/nodes", ListAsync).RequireAuthorization(InternalAuth.Provisioning);
        return app;
    }

    private static async Task<IResult> HeartbeatAsync(string nodeId, Heartbeat? heartbeat, ControlPlaneDbContext db, RouteSignal signal, TimeProvider time, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        if (nodeId.Length is 0 or > 64)
        {
            errors["nodeId"] = ["1 to 64 characters"];
        }

        foreach (var (field, value) in new[] { ("pgEndpoint", heartbeat?.PgEndpoint), ("internalEndpoint", heartbeat?.InternalEndpoint), ("httpEndpoint", heartbeat?.HttpEndpoint) })
        {
            if (string.IsNullOrWhiteSpace(value) || value.Length > 200)
            {
                errors[field] = ["required, at most 200 characters"];
            }
        }

        if (heartbeat is { Capacity: < 0 })
        {
            errors["capacity"] = ["must not be negative"];
        }

        var leaders = Leaders(nodeId, heartbeat?.Groups, errors);
        if (errors.Count > 0)
        {
            return Problems.Validation(errors);
        }

        var node = await db.Nodes.FirstOrDefaultAsync(n => n.NodeId == nodeId, ct);
        var moved = node is not null && (node.PgEndpoint != heartbeat!.PgEndpoint || node.HttpEndpoint != heartbeat.HttpEndpoint);
        if (node is null)
        {
            node = new NodeRecord { NodeId = nodeId };
            db.Nodes.Add(node);
        }

        node.PgEndpoint = heartbeat!.PgEndpoint!;
        node.InternalEndpoint = heartbeat.InternalEndpoint!;
        node.HttpEndpoint = heartbeat.HttpEndpoint!;
        node.Capacity = heartbeat.Capacity;
        node.GroupsJson = heartbeat.Groups is { ValueKind: JsonValueKind.Array } groups ? groups.GetRawText() : "[]";
        node.LastHeartbeatAt = time.GetUtcNow();
        await db.SaveChangesAsync(ct);

        var bumped = 0;
        if (moved)
        {
            // Route entries carry replica endpoints: a node back on other ports must reach the proxies.
            bumped += (await db.Database.SqlQuery<long>(
                $"SELECT kdb_bump_routes(ARRAY(SELECT \"Id\" FROM databases WHERE {nodeId} = ANY(\"ReplicaNodeIds\") AND \"Status\" <> 'deleted')) AS \"Value\"").ToListAsync(ct))[0] > 0 ? 1 : 0;
        }

        if (leaders.Groups.Count > 0)
        {
            bumped += await RecordLeadersAsync(db, leaders, node.LastHeartbeatAt, ct);
        }

        if (bumped > 0)
        {
            signal.Pulse();
        }

        return Results.NoContent();
    }

    /// <summary>
    /// Stores the reported leaders; a report of an older term than the stored one is ignored (a deposed
    /// leader's late heartbeat). Every live database of a group whose leader changed gets a new route version.
    /// </summary>
    private static async Task<int> RecordLeadersAsync(ControlPlaneDbContext db, LeaderReports leaders, DateTimeOffset now, CancellationToken ct)
    {
        var groups = leaders.Groups.ToArray();
        var nodes = leaders.Leaders.ToArray();
        var terms = leaders.Terms.ToArray();
        // All CTEs read one snapshot: "previous" is the table before the upsert.
        var version = await db.Database.SqlQuery<long>($"""
            WITH reported AS (
                SELECT * FROM unnest({groups}::bigint[], {nodes}::text[], {terms}::bigint[]) AS r(group_id, leader, term)
            ), previous AS (
                SELECT g."GroupId", g."LeaderNodeId" FROM group_leaders g JOIN reported r ON r.group_id = g."GroupId"
            ), stored AS (
                INSERT INTO group_leaders AS g ("GroupId", "LeaderNodeId", "Term", "ReportedAt")
                SELECT group_id, leader, term, {now} FROM reported
                ON CONFLICT ("GroupId") DO UPDATE SET "LeaderNodeId" = EXCLUDED."LeaderNodeId", "Term" = EXCLUDED."Term", "ReportedAt" = EXCLUDED."ReportedAt"
                WHERE EXCLUDED."Term" >= g."Term"
                RETURNING g."GroupId", g."LeaderNodeId"
            ), changed AS (
                SELECT s."GroupId" FROM stored s LEFT JOIN previous p ON p."GroupId" = s."GroupId"
                WHERE p."LeaderNodeId" IS DISTINCT FROM s."LeaderNodeId"
            )
            SELECT kdb_bump_routes(ARRAY(SELECT "Id" FROM databases WHERE "GroupId" IN (SELECT "GroupId" FROM changed) AND "Status" <> 'deleted')) AS "Value"
            """).ToListAsync(ct);
        return version[0] > 0 ? 1 : 0;
    }

    /// <summary>The leaders a heartbeat names: per group, <c>leaderNodeId</c>, or this node when its <c>role</c> is leader.</summary>
    private static LeaderReports Leaders(string nodeId, JsonElement? groups, Dictionary<string, string[]> errors)
    {
        var reports = new LeaderReports([], [], []);
        if (groups is not { } list || list.ValueKind == JsonValueKind.Null)
        {
            return reports;
        }

        if (list.ValueKind != JsonValueKind.Array)
        {
            errors["groups"] = ["an array of {groupId, role, leaderNodeId?, term?}"];
            return reports;
        }

        var i = 0;
        foreach (var group in list.EnumerateArray())
        {
            var field = $"groups[{i++}]";
            if (group.ValueKind != JsonValueKind.Object || Placements.ParseGroupId(group.TryGetProperty("groupId", out var id) ? id : null) is not { } groupId)
            {
                errors[field] = ["an object with groupId: an unsigned 64-bit integer as a decimal string"];
                continue;
            }

            string? leader = null;
            if (group.TryGetProperty("leaderNodeId", out var named) && named.ValueKind == JsonValueKind.String && named.GetString() is { Length: > 0 } name)
            {
                leader = name.Length <= 64 ? name : null;
                if (leader is null)
                {
                    errors[field + ".leaderNodeId"] = ["at most 64 characters"];
                }
            }
            else if (group.TryGetProperty("role", out var role)
                && ((role.ValueKind == JsonValueKind.String && string.Equals(role.GetString(), "leader", StringComparison.OrdinalIgnoreCase))
                    || (role.ValueKind == JsonValueKind.Number && role.TryGetInt32(out var code) && code == LeaderRoleCode)))
            {
                leader = nodeId;
            }

            var term = 0L;
            if (group.TryGetProperty("term", out var t) && t.ValueKind != JsonValueKind.Null && !(t.ValueKind == JsonValueKind.Number && t.TryGetInt64(out term) && term >= 0))
            {
                errors[field + ".term"] = ["a non-negative integer"];
            }

            if (leader is not null && !reports.Groups.Contains(unchecked((long)groupId)))
            {
                reports.Groups.Add(unchecked((long)groupId));
                reports.Leaders.Add(leader);
                reports.Terms.Add(term);
            }
        }

        return reports;
    }

    private sealed record LeaderReports(List<long> Groups, List<string> Leaders, List<long> Terms);

    private static async Task<IResult> ListAsync(ControlPlaneDbContext db, IConfiguration configuration, TimeProvider time, CancellationToken ct)
    {
        var suspectAfter = configuration.GetValue("Nodes:SuspectAfter", TimeSpan.FromSeconds(10));
        var deadAfter = configuration.GetValue("Nodes:DeadAfter", TimeSpan.FromSeconds(30));
        var now = time.GetUtcNow();
        var nodes = await db.Nodes.AsNoTracking().OrderBy(n => n.NodeId).ToListAsync(ct);
        var items = nodes.Select(n =>
        {
            var silence = now - n.LastHeartbeatAt;
            var status = silence < suspectAfter ? "alive" : silence < deadAfter ? "suspect" : "dead";
            return new NodeView(n.NodeId, n.PgEndpoint, n.InternalEndpoint, n.HttpEndpoint, n.Capacity, n.LastHeartbeatAt, status, JsonDocument.Parse(n.GroupsJson).RootElement.Clone());
        }).ToList();
        return Results.Ok(new OrgEndpoints.Page<NodeView>(items, null));
    }
}
