using Microsoft.AspNetCore.Identity;

namespace Kdb.ControlPlane.Data;

/// <summary>A person who signs in (ASP.NET Core Identity user; id <c>usr_…</c>).</summary>
public sealed class User : IdentityUser
{
    /// <summary>Display name.</summary>
    public string Name { get; set; } = string.Empty;

    /// <summary>When the user signed up.</summary>
    public DateTimeOffset CreatedAt { get; set; }
}

/// <summary>An organization: the tenant of the management plane, owner of databases and keys.</summary>
public sealed class Org
{
    public string Id { get; set; } = string.Empty;

    public string Name { get; set; } = string.Empty;

    /// <summary>free, pro or enterprise.</summary>
    public string Plan { get; set; } = "free";

    public DateTimeOffset CreatedAt { get; set; }
}

/// <summary>A user's role in an org: owner, admin, developer or viewer.</summary>
public sealed class Membership
{
    public string OrgId { get; set; } = string.Empty;

    public string UserId { get; set; } = string.Empty;

    public string Role { get; set; } = "viewer";

    public DateTimeOffset CreatedAt { get; set; }
}

/// <summary>
/// A token signing key. The private key is stored only encrypted by Data Protection; the public JWK is
/// published from <see cref="PublishedAt"/> until <see cref="RetiredAt"/> plus the longest token lifetime.
/// </summary>
public sealed class SigningKeyRecord
{
    public string Kid { get; set; } = string.Empty;

    public string Algorithm { get; set; } = "ES256";

    public string ProtectedPrivateKey { get; set; } = string.Empty;

    public string PublicJwk { get; set; } = string.Empty;

    public DateTimeOffset PublishedAt { get; set; }

    /// <summary>When the key starts signing (after it has been published long enough for caches to see it).</summary>
    public DateTimeOffset ActivatesAt { get; set; }

    /// <summary>When the key stops signing.</summary>
    public DateTimeOffset RetiredAt { get; set; }
}

/// <summary>One XML element of the Data Protection key ring, shared by every control-plane instance.</summary>
public sealed class DataProtectionKeyRecord
{
    public int Id { get; set; }

    public string? FriendlyName { get; set; }

    public string Xml { get; set; } = string.Empty;
}

/// <summary>
/// A refresh token, stored as the SHA-256 of its value. Tokens of one login form a family: presenting
/// a consumed token again revokes the whole family (reuse detection).
/// </summary>
public sealed class RefreshTokenRecord
{
    public string TokenHash { get; set; } = string.Empty;

    public string FamilyId { get; set; } = string.Empty;

    public string UserId { get; set; } = string.Empty;

    public string ClientId { get; set; } = string.Empty;

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset ExpiresAt { get; set; }

    public DateTimeOffset? ConsumedAt { get; set; }

    public DateTimeOffset? RevokedAt { get; set; }
}

/// <summary>A service identity (proxy, nodes, provisioning, operator): configuration ensured at start-up.</summary>
public sealed class ServiceClientRecord
{
    public string ClientId { get; set; } = string.Empty;

    /// <summary>SHA-256 (hex) of the secret: secrets are high-entropy, so a fast hash is enough.</summary>
    public string SecretHash { get; set; } = string.Empty;

    /// <summary>Space-separated scopes granted to the client.</summary>
    public string Scopes { get; set; } = string.Empty;
}

/// <summary>
/// An org API key: acts in one org with one role. Only the SHA-256 of its secret is stored; the secret is
/// shown once, when the key is created.
/// </summary>
public sealed class ApiKeyRecord
{
    public string Id { get; set; } = string.Empty;

    public string OrgId { get; set; } = string.Empty;

    public string Name { get; set; } = string.Empty;

    public string Role { get; set; } = "developer";

    public string SecretHash { get; set; } = string.Empty;

    public string CreatedBy { get; set; } = string.Empty;

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset? ExpiresAt { get; set; }

    public DateTimeOffset? LastUsedAt { get; set; }
}

/// <summary>A tenant database (DESIGN: Database).</summary>
public sealed class DatabaseRecord
{
    public string Id { get; set; } = string.Empty;

    public string OrgId { get; set; } = string.Empty;

    public string Name { get; set; } = string.Empty;

    /// <summary>provisioning, ready, restoring, moving, deleting, deleted, failed.</summary>
    public string Status { get; set; } = "provisioning";

    public string? StatusReason { get; set; }

    /// <summary>ok, warning, throttled, read_only, suspended.</summary>
    public string QuotaState { get; set; } = "ok";

    /// <summary>The u64 tenant id, stored bit-for-bit in a bigint; never shown to tenants.</summary>
    public long TenantId { get; set; }

    public long? GroupId { get; set; }

    public long SizeBytes { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>
    /// Route-table version of the last change that proxies must see (from <c>kdb_bump_routes</c>, in commit
    /// order); 0 until the first such change.
    /// </summary>
    public long RouteVersion { get; set; }

    /// <summary>When an admin last lifted the proxies' failed-login lockouts: proxies forget failures before it.</summary>
    public DateTimeOffset? LockoutResetAt { get; set; }

    /// <summary>The nodes holding a replica of its group, as provisioning placed them (<c>PUT /internal/v1/placements</c>).</summary>
    public List<string> ReplicaNodeIds { get; set; } = [];
}

/// <summary>How far a proxy has followed the route feed: the <c>since</c> of its latest poll, on any instance.</summary>
public sealed class ProxyPosition
{
    public string ProxyId { get; set; } = string.Empty;

    public long Since { get; set; }

    public DateTimeOffset SeenAt { get; set; }
}

/// <summary>A shard group's leader as node heartbeats last reported it, with the Raft term that elected it.</summary>
public sealed class GroupLeaderRecord
{
    /// <summary>The u64 group id, bit-for-bit in a bigint.</summary>
    public long GroupId { get; set; }

    public string LeaderNodeId { get; set; } = string.Empty;

    /// <summary>A report of an older term never replaces a newer one (a deposed leader's late heartbeat).</summary>
    public long Term { get; set; }

    public DateTimeOffset ReportedAt { get; set; }
}

/// <summary>A role of a tenant database, kept only as its SCRAM-SHA-256 verifier.</summary>
public sealed class DatabaseRoleRecord
{
    public string DatabaseId { get; set; } = string.Empty;

    public string Name { get; set; } = string.Empty;

    /// <summary>owner, readwrite or readonly.</summary>
    public string Kind { get; set; } = "owner";

    public string ScramVerifier { get; set; } = string.Empty;

    public DateTimeOffset CreatedAt { get; set; }
}

/// <summary>A long-running action (DESIGN: Operation), with the request event that drives it.</summary>
public sealed class OperationRecord
{
    public string Id { get; set; } = string.Empty;

    public string OrgId { get; set; } = string.Empty;

    public string Kind { get; set; } = string.Empty;

    /// <summary>running, succeeded, failed.</summary>
    public string Status { get; set; } = "running";

    public string ResourceId { get; set; } = string.Empty;

    public string? Error { get; set; }

    /// <summary>CLR type name and JSON of the request event, re-published while the operation runs too long.</summary>
    public string RequestType { get; set; } = string.Empty;

    public string RequestPayload { get; set; } = string.Empty;

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset LastPublishedAt { get; set; }

    public DateTimeOffset? FinishedAt { get; set; }

    /// <summary>The provisioning attempt working on it (claim), so a re-sent request is not worked on twice at once.</summary>
    public string? ClaimAttemptId { get; set; }

    /// <summary>When the claiming attempt last renewed its lease (its claim or a heartbeat naming it).</summary>
    public DateTimeOffset? ClaimedAt { get; set; }

    /// <summary>Shard groups the claiming attempt works on (a move's source and target): one move per group at a time.</summary>
    public long[]? ClaimGroups { get; set; }
}

/// <summary>An event written in the same transaction as the change it announces, published afterwards.</summary>
public sealed class OutboxMessage
{
    public long Id { get; set; }

    public string MessageType { get; set; } = string.Empty;

    public string Payload { get; set; } = string.Empty;

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset? DispatchedAt { get; set; }
}

/// <summary>A data-plane node as its heartbeats describe it.</summary>
public sealed class NodeRecord
{
    public string NodeId { get; set; } = string.Empty;

    public string PgEndpoint { get; set; } = string.Empty;

    public string InternalEndpoint { get; set; } = string.Empty;

    public string HttpEndpoint { get; set; } = string.Empty;

    /// <summary>How many more databases the node says it can host.</summary>
    public int Capacity { get; set; }

    /// <summary>JSON of the groups, replica roles and leaders the node reported last.</summary>
    public string GroupsJson { get; set; } = "[]";

    public DateTimeOffset LastHeartbeatAt { get; set; }
}

/// <summary>The sequences <c>First</c>..<c>Last</c> of a source, already ingested: usage batches are idempotent.</summary>
public sealed class UsageReceiptRange
{
    public string Source { get; set; } = string.Empty;

    public long First { get; set; }

    public long Last { get; set; }
}

/// <summary>Usage of one database in one hour, summed over every reporting node and proxy.</summary>
public sealed class UsageHour
{
    public string DatabaseId { get; set; } = string.Empty;

    public DateTimeOffset HourStart { get; set; }

    public long RowsRead { get; set; }

    public long RowsWritten { get; set; }

    public long BytesRead { get; set; }

    public long BytesWritten { get; set; }

    /// <summary>The largest storage size reported in the hour (a gauge, not a sum).</summary>
    public long StorageBytes { get; set; }

    public long CpuMs { get; set; }

    public long EgressBytes { get; set; }

    /// <summary>The most concurrent connections reported in the hour.</summary>
    public long Connections { get; set; }
}

/// <summary>One mutating action: who, what, when, from where, and the outcome. Append-only.</summary>
public sealed class AuditEntry
{
    public long Id { get; set; }

    public string? OrgId { get; set; }

    /// <summary>The user, API key or service that acted (token subject), or "anonymous".</summary>
    public string Actor { get; set; } = string.Empty;

    /// <summary>HTTP method and route pattern, e.g. <c>POST /v1/orgs/{orgId}/databases</c>.</summary>
    public string Action { get; set; } = string.Empty;

    /// <summary>The id the action named (database, org, key …), when there is one.</summary>
    public string? ResourceId { get; set; }

    public string? SourceIp { get; set; }

    public int Status { get; set; }

    public DateTimeOffset At { get; set; }
}

/// <summary>
/// A creating POST's response kept for replay under its Idempotency-Key, encrypted (it may carry one-time
/// credentials) and kept 24 hours.
/// </summary>
public sealed class IdempotencyRecord
{
    public string Caller { get; set; } = string.Empty;

    public string Key { get; set; } = string.Empty;

    /// <summary>SHA-256 of method, path and body: the same key with another request is refused.</summary>
    public string RequestHash { get; set; } = string.Empty;

    /// <summary>0 while the first request is still running.</summary>
    public int Status { get; set; }

    public string? ProtectedResponse { get; set; }

    public string? ContentType { get; set; }

    public DateTimeOffset CreatedAt { get; set; }
}

/// <summary>
/// A pending membership: an org admin invited an email address with a role. The invitee accepts it,
/// logged in with that email, with the token from the mail (sign-up does not verify email addresses,
/// so the token is what proves the invitee reads that mailbox). Only the SHA-256 of the token is stored.
/// </summary>
public sealed class Invitation
{
    public string Id { get; set; } = string.Empty;

    public string OrgId { get; set; } = string.Empty;

    public string Email { get; set; } = string.Empty;

    /// <summary>Upper-cased email, compared with Identity's normalized email.</summary>
    public string NormalizedEmail { get; set; } = string.Empty;

    public string Role { get; set; } = "viewer";

    public string TokenHash { get; set; } = string.Empty;

    public string InvitedBy { get; set; } = string.Empty;

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset ExpiresAt { get; set; }

    public DateTimeOffset? AcceptedAt { get; set; }

    public string? AcceptedBy { get; set; }
}

/// <summary>A one-time password-reset token (its SHA-256), valid for an hour.</summary>
public sealed class PasswordResetRecord
{
    public string TokenHash { get; set; } = string.Empty;

    public string UserId { get; set; } = string.Empty;

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset ExpiresAt { get; set; }

    public DateTimeOffset? UsedAt { get; set; }
}

/// <summary>A connection event a proxy reported: a connect, a deny or a throttle, with its reason.</summary>
public sealed class ConnectionLogEntry
{
    public long Id { get; set; }

    public string DatabaseId { get; set; } = string.Empty;

    /// <summary>When it happened, by the proxy's clock.</summary>
    public DateTimeOffset At { get; set; }

    /// <summary>connect, deny or throttle.</summary>
    public string Kind { get; set; } = string.Empty;

    public string? Reason { get; set; }

    public string? ClientIp { get; set; }

    /// <summary>The startup user (database role) the client asked for.</summary>
    public string? User { get; set; }

    /// <summary>The reporting proxy.</summary>
    public string Source { get; set; } = string.Empty;

    public DateTimeOffset ReceivedAt { get; set; }
}

/// <summary>A backup of one database (DESIGN: Backup), taken by provisioning on request.</summary>
public sealed class BackupRecord
{
    public string Id { get; set; } = string.Empty;

    public string DatabaseId { get; set; } = string.Empty;

    public string OrgId { get; set; } = string.Empty;

    /// <summary>pending, running, completed or failed.</summary>
    public string Status { get; set; } = "pending";

    /// <summary>A restore drill restored it and its checks passed.</summary>
    public bool Verified { get; set; }

    public long SizeBytes { get; set; }

    public string? Sha256 { get; set; }

    /// <summary>The u64 Raft index it is consistent at, bit-for-bit in a bigint.</summary>
    public long RaftIndex { get; set; }

    /// <summary>The org backup key that sealed it.</summary>
    public string? KeyId { get; set; }

    public string? Error { get; set; }

    public string OperationId { get; set; } = string.Empty;

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset? CompletedAt { get; set; }

    /// <summary>When retention removes it (from the org's plan when it was taken).</summary>
    public DateTimeOffset ExpiresAt { get; set; }

    /// <summary>What the last restore drill reported (passed or failed).</summary>
    public string? VerificationDetails { get; set; }

    public DateTimeOffset? VerifiedAt { get; set; }
}

/// <summary>A database's backup schedule: a five-field cron expression (UTC) and how long its backups are kept.</summary>
public sealed class BackupScheduleRecord
{
    public string DatabaseId { get; set; } = string.Empty;

    public string OrgId { get; set; } = string.Empty;

    public string Cron { get; set; } = string.Empty;

    public int RetentionDays { get; set; }

    public bool Enabled { get; set; }

    /// <summary>When the scheduler takes the next backup; advanced in the same transaction that takes it.</summary>
    public DateTimeOffset NextRunAt { get; set; }

    public DateTimeOffset? LastRunAt { get; set; }

    public DateTimeOffset UpdatedAt { get; set; }
}

/// <summary>A recurring job of the control plane itself (the restore drill), due at <see cref="NextRunAt"/>.</summary>
public sealed class ScheduledJobRecord
{
    public string Name { get; set; } = string.Empty;

    public DateTimeOffset NextRunAt { get; set; }

    public DateTimeOffset? LastRunAt { get; set; }
}

/// <summary>An org's backup encryption key, stored only encrypted by Data Protection.</summary>
public sealed class BackupKeyRecord
{
    public string KeyId { get; set; } = string.Empty;

    public string OrgId { get; set; } = string.Empty;

    public string ProtectedKey { get; set; } = string.Empty;

    public DateTimeOffset CreatedAt { get; set; }
}

/// <summary>A change of an org's plan: invoices price each part of a month by the plan then in effect.</summary>
public sealed class OrgPlanChange
{
    public long Id { get; set; }

    public string OrgId { get; set; } = string.Empty;

    public string FromPlan { get; set; } = string.Empty;

    public string ToPlan { get; set; } = string.Empty;

    /// <summary>When the owner changed it; it takes effect from the start of that hour (docs/usage-metering.md).</summary>
    public DateTimeOffset At { get; set; }

    public string ChangedBy { get; set; } = string.Empty;
}
