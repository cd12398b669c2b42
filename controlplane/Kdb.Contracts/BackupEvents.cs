namespace Kdb.Contracts.V1;

/// <summary>
/// The control plane asks for a backup of a database. <c>OrgId</c> is the database's org, whose backup key
/// seals it; it was added later, so it is null only in a message from an older sender.
/// </summary>
public sealed record BackupRequested(string OperationId, DateTimeOffset Timestamp, string BackupId, string DatabaseId, string? OrgId = null) : IKdbEvent;

/// <summary>What a finished backup is: its size, digest and the Raft index it is consistent at.</summary>
/// <param name="SizeBytes">Bytes stored.</param>
/// <param name="Sha256">Hex SHA-256 of the stored object.</param>
/// <param name="RaftIndex">Log index the backup is a consistent copy at.</param>
/// <param name="KeyId">Id of the org's backup encryption key that sealed it.</param>
public sealed record BackupResult(long SizeBytes, string Sha256, ulong RaftIndex, string KeyId);

/// <summary>Provisioning stored a backup.</summary>
public sealed record BackupCompleted(string OperationId, DateTimeOffset Timestamp, string BackupId, string DatabaseId, BackupResult Result) : IKdbEvent;

/// <summary>Provisioning could not take a backup.</summary>
public sealed record BackupFailed(string OperationId, DateTimeOffset Timestamp, string BackupId, string DatabaseId, string Reason) : IKdbEvent;

/// <summary>Retention expired a backup; provisioning deletes its objects.</summary>
public sealed record BackupExpired(string OperationId, DateTimeOffset Timestamp, string BackupId) : IKdbEvent;

/// <summary>The scheduler asks provisioning to prove backups restore (a drill).</summary>
public sealed record RestoreDrillRequested(string OperationId, DateTimeOffset Timestamp, IReadOnlyList<string> BackupIds) : IKdbEvent;

/// <summary>A drill restored the backup and its checks passed.</summary>
public sealed record BackupVerified(string OperationId, DateTimeOffset Timestamp, string BackupId, string Details) : IKdbEvent;

/// <summary>A drill could not restore the backup.</summary>
public sealed record RestoreDrillFailed(string OperationId, DateTimeOffset Timestamp, string BackupId, string Details) : IKdbEvent;

/// <summary>Where a restore goes: a new database, or the source itself in place.</summary>
public sealed record RestoreTarget(string DatabaseId, ulong TenantId, string OrgId, DatabaseLimits Limits);

/// <summary>
/// The control plane asks provisioning to restore a backup. In place, <paramref name="SafetyBackupId"/> names the safety
/// backup taken first (the control plane records it when its <see cref="BackupCompleted"/>, carrying this request's
/// operation id, arrives); senders without it leave provisioning to derive the id from the operation.
/// </summary>
public sealed record RestoreRequested(
    string OperationId,
    DateTimeOffset Timestamp,
    string BackupId,
    string SourceDatabaseId,
    RestoreTarget Target,
    bool InPlace,
    string? SafetyBackupId = null) : IKdbEvent;

/// <summary>The restore finished; the control plane records the roles it brought back. <paramref name="TenantId"/>: set by an
/// in-place restore, which moves the database onto a new tenant (the keyspace it was restored into).</summary>
public sealed record RestoreCompleted(string OperationId, DateTimeOffset Timestamp, string TargetDatabaseId, IReadOnlyList<RoleVerifier> RolesRestored, ulong? TenantId = null) : IKdbEvent;

/// <summary>The restore failed.</summary>
public sealed record RestoreFailed(string OperationId, DateTimeOffset Timestamp, string TargetDatabaseId, string Reason) : IKdbEvent;
