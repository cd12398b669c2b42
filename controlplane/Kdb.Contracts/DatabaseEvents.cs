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
