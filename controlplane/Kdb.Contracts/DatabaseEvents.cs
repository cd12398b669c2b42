namespace Kdb.Contracts.V1;

/// <summary>The control plane asks provisioning to place and create a database.</summary>
public sealed record DatabaseRequested(
    string OperationId,
    DateTimeOffset Timestamp,
    string DatabaseId,
    ulong TenantId,
    string OrgId,
    RoleVerifier Owner,
    DatabaseLimits Limits) : IKdbEvent;

/// <summary>Provisioning created the database on shard group <paramref name="GroupId"/>.</summary>
public sealed record DatabaseProvisioned(string OperationId, DateTimeOffset Timestamp, string DatabaseId, ulong GroupId) : IKdbEvent;

/// <summary>Provisioning could not create the database.</summary>
public sealed record DatabaseProvisioningFailed(string OperationId, DateTimeOffset Timestamp, string DatabaseId, string Reason) : IKdbEvent;

/// <summary>
/// The control plane asks provisioning to drop a database's data, or with <paramref name="Retain"/> (deletion with a
/// retention window) to suspend it on its nodes and keep the data until the purge (a second request without
/// <paramref name="Retain"/>) or an undelete (<see cref="DatabaseUndeleteRequested"/>). Senders without the field drop.
/// </summary>
public sealed record DatabaseDeletionRequested(string OperationId, DateTimeOffset Timestamp, string DatabaseId, bool Retain = false) : IKdbEvent;

/// <summary>Provisioning dropped the database's data (one range delete of its tenant prefix), or suspended it when retained.</summary>
public sealed record DatabaseDeleted(string OperationId, DateTimeOffset Timestamp, string DatabaseId) : IKdbEvent;

/// <summary>The control plane asks provisioning to bring a retained deleted database back, with its quota state.</summary>
public sealed record DatabaseUndeleteRequested(string OperationId, DateTimeOffset Timestamp, string DatabaseId, QuotaState State) : IKdbEvent;

/// <summary>Provisioning made a retained database usable again on its nodes.</summary>
public sealed record DatabaseUndeleted(string OperationId, DateTimeOffset Timestamp, string DatabaseId) : IKdbEvent;

/// <summary>A role was created, reset or deleted; provisioning installs the verifier on the nodes.</summary>
public sealed record RoleChanged(
    string OperationId,
    DateTimeOffset Timestamp,
    string DatabaseId,
    string Role,
    RoleKind Kind,
    string? ScramVerifier,
    bool Deleted) : IKdbEvent;

/// <summary>The database's quota state changed; provisioning sets read-only or suspended on the nodes.</summary>
public sealed record QuotaStateChanged(string OperationId, DateTimeOffset Timestamp, string DatabaseId, QuotaState State) : IKdbEvent;

/// <summary>
/// An operator asks provisioning to move a database from shard group <paramref name="SourceGroupId"/> to
/// <paramref name="TargetGroupId"/>; <paramref name="State"/> is its quota state, which the moved copy (or, on failure, the
/// source) gets back once the move's write pause ends.
/// </summary>
public sealed record DatabaseMoveRequested(
    string OperationId,
    DateTimeOffset Timestamp,
    string DatabaseId,
    ulong SourceGroupId,
    ulong TargetGroupId,
    QuotaState State) : IKdbEvent;

/// <summary>Provisioning moved the database onto group <paramref name="GroupId"/>, under tenant <paramref name="TenantId"/>.</summary>
public sealed record DatabaseMoved(string OperationId, DateTimeOffset Timestamp, string DatabaseId, ulong GroupId, ulong TenantId) : IKdbEvent;

/// <summary>The move did not happen: the database is on its source group, usable as before; the reason says why.</summary>
public sealed record DatabaseMoveFailed(string OperationId, DateTimeOffset Timestamp, string DatabaseId, string Reason) : IKdbEvent;
