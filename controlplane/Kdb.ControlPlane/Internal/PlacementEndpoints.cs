using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Kdb.ControlPlane.Api;
using Kdb.ControlPlane.Data;
using Microsoft.EntityFrameworkCore;
using static Kdb.ControlPlane.Internal.RouteTableEndpoints;

namespace Kdb.ControlPlane.Internal;

/// <summary>
/// Where a database lives: its shard group and the nodes holding the group's replicas, as provisioning
/// places them, with endpoints from the nodes' heartbeats and the leader the heartbeats report.
/// </summary>
public static class Placements
{
    public const int MaxReplicas = 9;

    [JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
    public sealed record ReplicaRef(string? NodeId);

    [JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
    public sealed record PlacementRequest(JsonElement? GroupId, List<ReplicaRef?>? Replicas);

    /// <summary>A database's placement as proxies and provisioning see it.</summary>
    public sealed record Placement(string? GroupId, IReadOnlyList<Replica> Replicas, string? LeaderNodeId);

    public sealed record PlacementView(string DatabaseId, string? GroupId, IReadOnlyList<Replica> Replicas, string? LeaderNodeId, long Version);

    public static IEndpointRouteBuilder MapPlacementEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPut("/internal/v1/placements/{databaseId}", PutAsync).RequireAuthorization(InternalAuth.Provisioning);
        app.MapGet("/internal/v1/placements/{databaseId}", GetAsync).RequireAuthorization(InternalAuth.Provisioning);
        return app;
    }

    /// <summary>Group, replicas with their nodes' current endpoints, and the group's leader, for each database.</summary>
    public static async Task<Dictionary<string, Placement>> ResolveAsync(ControlPlaneDbContext db, IReadOnlyList<DatabaseRecord> databases, CancellationToken ct)
    {
        var nodeIds = databases.SelectMany(d => d.ReplicaNodeIds).Distinct(StringComparer.Ordinal).ToList();
        var groupIds = databases.Where(d => d.GroupId is not null).Select(d => d.GroupId!.Value).Distinct().ToList();
        var nodes = nodeIds.Count == 0
            ? []
            : await db.Nodes.AsNoTracking().Where(n => nodeIds.Contains(n.NodeId)).ToDictionaryAsync(n => n.NodeId, StringComparer.Ordinal, ct);
        var leaders = groupIds.Count == 0
            ? []
            : await db.GroupLeaders.AsNoTracking().Where(g => groupIds.Contains(g.GroupId)).ToDictionaryAsync(g => g.GroupId, g => g.LeaderNodeId, ct);
        var result = new Dictionary<string, Placement>(databases.Count, StringComparer.Ordinal);
        foreach (var d in databases)
        {
            var replicas = new List<Replica>(d.ReplicaNodeIds.Count);
            foreach (var nodeId in d.ReplicaNodeIds)
            {
                if (nodes.TryGetValue(nodeId, out var node))
                {
                    replicas.Add(new Replica(node.NodeId, node.PgEndpoint, node.HttpEndpoint));
                }
            }

            result[d.Id] = new Placement(
                d.GroupId is { } g ? unchecked((ulong)g).ToString(CultureInfo.InvariantCulture) : null,
                replicas,
                d.GroupId is { } group ? leaders.GetValueOrDefault(group) : null);
        }

        return result;
    }

    private static async Task<IResult> PutAsync(string databaseId, PlacementRequest? request, ControlPlaneDbContext db, RouteSignal signal, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        var groupId = ParseGroupId(request?.GroupId);
        if (groupId is null)
        {
            errors["groupId"] = ["required: the shard group id, an unsigned 64-bit integer as a decimal string"];
        }

        var replicas = new List<string>();
        if (request?.Replicas is not { Count: > 0 and <= MaxReplicas } listed)
        {
            errors["replicas"] = [$"1 to {MaxReplicas} replicas, each {{\"nodeId\": \"…\"}}"];
        }
        else
        {
            for (var i = 0; i < listed.Count; i++)
            {
                if (listed[i]?.NodeId is not { Length: > 0 and <= 64 } nodeId)
                {
                    errors[$"replicas[{i}].nodeId"] = ["required, 1 to 64 characters"];
                }
                else if (replicas.Contains(nodeId, StringComparer.Ordinal))
                {
                    errors[$"replicas[{i}].nodeId"] = [$"node '{nodeId}' is listed twice"];
                }
                else
                {
                    replicas.Add(nodeId);
                }
            }
        }

        if (errors.Count == 0)
        {
            // Endpoints come from heartbeats, so a replica on a node that never reported could not be routed to.
            var known = await db.Nodes.AsNoTracking().Where(n => replicas.Contains(n.NodeId)).Select(n => n.NodeId).ToListAsync(ct);
            for (var i = 0; i < replicas.Count; i++)
            {
                if (!known.Contains(replicas[i], StringComparer.Ordinal))
                {
                    errors[$"replicas[{i}].nodeId"] = [$"node '{replicas[i]}' is unknown: it has sent no heartbeat"];
                }
            }
        }

        var database = await db.Databases.FirstOrDefaultAsync(d => d.Id == databaseId && d.Status != "deleted", ct);
        if (database is null)
        {
            return Problems.NotFound("No such database.");
        }

        if (errors.Count > 0)
        {
            return Problems.Validation(errors);
        }

        var group = unchecked((long)groupId!.Value);
        if (database.GroupId != group || !database.ReplicaNodeIds.SequenceEqual(replicas, StringComparer.Ordinal))
        {
            database.GroupId = group;
            database.ReplicaNodeIds = replicas;
            await db.SaveChangesAsync(ct);
            database.RouteVersion = await RouteVersions.BumpAsync(db, database.Id, signal, ct);
        }

        return Results.Ok(await ViewAsync(db, database, ct));
    }

    /// <summary><paramref name="includeDeleted"/>: also a deleted database still in its retention window (not yet purged), whose
    /// data provisioning keeps, purges or brings back.</summary>
    private static async Task<IResult> GetAsync(string databaseId, ControlPlaneDbContext db, bool? includeDeleted, CancellationToken ct)
    {
        var any = includeDeleted == true;
        var database = await db.Databases.AsNoTracking().FirstOrDefaultAsync(d => d.Id == databaseId && (any || d.Status != "deleted"), ct);
        return database is null ? Problems.NotFound("No such database.") : Results.Ok(await ViewAsync(db, database, ct));
    }

    private static async Task<PlacementView> ViewAsync(ControlPlaneDbContext db, DatabaseRecord database, CancellationToken ct)
    {
        var placement = (await ResolveAsync(db, [database], ct))[database.Id];
        return new PlacementView(database.Id, placement.GroupId, placement.Replicas, placement.LeaderNodeId, database.RouteVersion);
    }

    /// <summary>A u64 group id: DESIGN writes it as a decimal string; a JSON number is taken too.</summary>
    internal static ulong? ParseGroupId(JsonElement? value) => value switch
    {
        { ValueKind: JsonValueKind.String } s when ulong.TryParse(s.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) => parsed,
        { ValueKind: JsonValueKind.Number } n when n.TryGetUInt64(out var number) => number,
        _ => null,
    };
}
