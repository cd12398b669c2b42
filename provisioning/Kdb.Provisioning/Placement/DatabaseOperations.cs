using System.Diagnostics;
using System.Net;
using Kdb.Contracts.V1;
using Kdb.Messaging;
using Kdb.Node.Admin;
using Kdb.Node.Admin.Wire;
using ContractRoleKind = Kdb.Contracts.V1.RoleKind;
using WireRoleKind = Kdb.Node.Admin.Wire.RoleKind;
using Kdb.Provisioning.Backups;
using Kdb.Provisioning.ControlPlane;
using Kdb.Provisioning.Storage;

namespace Kdb.Provisioning.Placement;

/// <summary>A database's group as the control plane's placement records it.</summary>
internal sealed record DatabaseLocation(ulong GroupId, IReadOnlyList<string> NodeIds, string? LeaderNodeId);

/// <summary>
/// The database steps the consumers share: create (place, record the placement, create on the group) and find
/// a database's group. Each step is safe to repeat: the placement is written before the database is created, so
/// a redelivered request finds the group chosen the first time instead of creating a second copy elsewhere.
/// </summary>
internal sealed class DatabaseOperations(Fleet fleet)
{
    public Fleet Fleet => fleet;

    /// <summary>The database's group, or null when the control plane has no such database or it is not placed yet;
    /// <paramref name="includeDeleted"/>: also a deleted database whose data is retained.</summary>
    public async Task<DatabaseLocation?> LocateAsync(string databaseId, CancellationToken ct, bool includeDeleted = false) =>
        await fleet.ControlPlane.PlacementAsync(databaseId, ct, includeDeleted) is { GroupId: { } group, ReplicaNodeIds.Count: > 0 } p
            ? new DatabaseLocation(group, p.ReplicaNodeIds, p.LeaderNodeId)
            : null;

    /// <summary>
    /// Makes sure the database exists on a group with its owner role; returns where, or null when the control
    /// plane no longer has the database (deleted meanwhile: nothing to do).
    /// </summary>
    public async Task<DatabaseLocation?> EnsureCreatedAsync(string databaseId, ulong tenantId, RoleVerifier owner, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        // The node list placement needs is fetched alongside the lookup: one round trip to the control plane less.
        var lookup = fleet.ControlPlane.PlacementAsync(databaseId, ct);
        await Task.WhenAll(lookup, fleet.RefreshNodesAsync(ct));
        var placement = await lookup;
        if (placement is null)
        {
            return null;
        }
        DatabaseLocation location;
        var placedNow = false;
        if (placement is { GroupId: { } placedGroup, ReplicaNodeIds.Count: > 0 })
        {
            location = new DatabaseLocation(placedGroup, placement.ReplicaNodeIds, placement.LeaderNodeId);
        }
        else
        {
            var chosen = await fleet.PlaceAsync(ct);
            if (!await fleet.ControlPlane.PutPlacementAsync(databaseId, chosen.GroupId, chosen.NodeIds, ct))
            {
                return null;
            }
            location = new DatabaseLocation(chosen.GroupId, chosen.NodeIds, chosen.LeaderNodeId);
            placedNow = true;
        }
        // A redelivered request finds the database already there: check before proposing anything. A database this
        // delivery has just placed cannot be there (any earlier delivery would have left its placement), which saves
        // two round trips on every first attempt.
        if (!placedNow && await DescribeAsync(location, databaseId, ct) is { } existing)
        {
            return existing.TenantId == tenantId
                ? location
                : throw new PlacementImpossibleException($"database {databaseId} already exists on group {location.GroupId} with another tenant");
        }
        var request = new CreateDatabaseRequest { GroupId = location.GroupId, DatabaseId = databaseId, TenantId = tenantId, Owner = ToWire(owner) };
        var creating = Stopwatch.GetTimestamp();
        CreationStages.Record(CreationStages.Placement, Stopwatch.GetElapsedTime(started, creating));
        try
        {
            await OnGroupAsync(location, (admin, t) => admin.CreateDatabaseAsync(request, t), ct);
            CreationStages.Record(CreationStages.NodeCreate, Stopwatch.GetElapsedTime(creating));
        }
        catch (NodeAdminException e) when (e.Status == HttpStatusCode.Conflict && e.Title != "Not the leader")
        {
            // Created by a delivery racing this one (or by this call's own first attempt, whose answer was lost before
            // it was retried on a new leader)? Then it is there with our tenant; another tenant is a real conflict.
            // Not listed at all means the replica that answered has not applied the create yet: retry, never fail.
            switch (await DescribeAsync(location, databaseId, ct))
            {
                case null when e.Detail?.Contains("another group", StringComparison.Ordinal) == true:
                    throw;
                case null:
                    throw new HttpRequestException($"database {databaseId} exists on group {location.GroupId} but the replica asked does not list it yet", e);
                case { } raced when raced.TenantId != tenantId:
                    throw;
            }
        }
        return location;
    }

    /// <summary>The database as its group describes it (tenant, state, roles), or null when the group does not host it.</summary>
    public async Task<DatabaseInfo?> DescribeAsync(DatabaseLocation location, string databaseId, CancellationToken ct)
    {
        var listed = await OnGroupAsync(location, (admin, t) => admin.DatabasesAsync(location.GroupId, t), ct);
        return listed.Databases.FirstOrDefault(d => d.DatabaseId == databaseId);
    }

    /// <summary>An admin call on the group (leader first); <paramref name="call"/> gets a token that ends after <paramref name="timeout"/> (default 30 s).</summary>
    public Task<T> OnGroupAsync<T>(DatabaseLocation location, Func<NodeAdminClient, CancellationToken, Task<T>> call, CancellationToken ct, TimeSpan? timeout = null) =>
        fleet.OnGroupAsync(location.NodeIds, location.LeaderNodeId, call, timeout ?? Fleet.CallTimeout, ct);

    /// <summary>Sets the node-enforced state; false when the group does not host the database.</summary>
    public async Task<bool> SetStateIfHostedAsync(DatabaseLocation location, string databaseId, Node.Admin.Wire.DatabaseState state, CancellationToken ct)
    {
        try
        {
            await OnGroupAsync(location, (admin, t) => admin.SetStateAsync(databaseId, state, t), ct);
            return true;
        }
        catch (NodeAdminException e) when (e.Status == HttpStatusCode.NotFound)
        {
            return false;
        }
    }

    /// <summary>Drops the database's data on its group; a database the group does not host counts as dropped.</summary>
    public async Task DropAsync(DatabaseLocation location, string databaseId, CancellationToken ct)
    {
        try
        {
            await OnGroupAsync(location, (admin, t) => admin.DropDatabaseAsync(databaseId, t), ct);
        }
        catch (NodeAdminException e) when (e.Status == HttpStatusCode.NotFound)
        {
        }
    }

    public static Role ToWire(RoleVerifier role) => new()
    {
        Name = role.Name,
        Kind = role.Kind switch
        {
            ContractRoleKind.Owner => WireRoleKind.Owner,
            ContractRoleKind.ReadWrite => WireRoleKind.Readwrite,
            _ => WireRoleKind.Readonly,
        },
        ScramVerifier = role.ScramVerifier,
    };

    public static RoleVerifier FromWire(Role role) => new(role.Name, role.Kind switch
    {
        WireRoleKind.Owner => ContractRoleKind.Owner,
        WireRoleKind.Readwrite => ContractRoleKind.ReadWrite,
        _ => ContractRoleKind.ReadOnly,
    }, role.ScramVerifier);

    /// <summary>
    /// Whether a failure is final: retrying cannot change it (placement impossible, the control plane or a node
    /// refused the request as invalid). Everything else — transport errors, 5xx, elections — is retried.
    /// </summary>
    public static bool IsFinal(Exception e) => e switch
    {
        PlacementImpossibleException or ControlPlaneRefusedException or BackupCorruptException or ObjectCorruptException => true,
        // 413: a node's request-size limit (an import larger than it accepts) stays the same on every retry.
        NodeAdminException n => n.Status is HttpStatusCode.BadRequest or HttpStatusCode.UnprocessableEntity or HttpStatusCode.RequestEntityTooLarge
            or HttpStatusCode.Conflict && n.Title != "Not the leader",
        _ => false,
    };
}
