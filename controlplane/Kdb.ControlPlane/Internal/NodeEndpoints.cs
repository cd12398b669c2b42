using System.Text.Json;
using System.Text.Json.Serialization;
using Kdb.ControlPlane.Api;
using Kdb.ControlPlane.Data;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Internal;

/// <summary>Node heartbeats (scope <c>kdb.node</c>) and the node list provisioning places databases with (<c>kdb.provisioning</c>).</summary>
public static class NodeEndpoints
{
    [JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
    public sealed record Heartbeat(string? PgEndpoint, string? InternalEndpoint, string? HttpEndpoint, int Capacity, JsonElement? Groups);

    public sealed record NodeView(string NodeId, string PgEndpoint, string InternalEndpoint, string HttpEndpoint, int Capacity, DateTimeOffset LastHeartbeatAt, string Status, JsonElement Groups);

    public static IEndpointRouteBuilder MapNodeEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/internal/v1/nodes/{nodeId}/heartbeat", HeartbeatAsync).RequireAuthorization(InternalAuth.Node);
        app.MapGet("/internal/v1/nodes", ListAsync).RequireAuthorization(InternalAuth.Provisioning);
        return app;
    }

    private static async Task<IResult> HeartbeatAsync(string nodeId, Heartbeat? heartbeat, ControlPlaneDbContext db, TimeProvider time, CancellationToken ct)
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

        if (errors.Count > 0)
        {
            return Problems.Validation(errors);
        }

        var node = await db.Nodes.FirstOrDefaultAsync(n => n.NodeId == nodeId, ct);
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
        return Results.NoContent();
    }

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
