namespace Kdb.Portal.Api;

// The management API's JSON shapes (camelCase on the wire), as the control plane serves them.

/// <summary>A page of a list: <c>{ items, nextCursor }</c>; <see cref="NextCursor"/> is null on the last page.</summary>
public sealed record Page<T>(IReadOnlyList<T> Items, string? NextCursor);

/// <summary><c>GET /v1/me</c>.</summary>
public sealed record Me(string Id, string Kind, string? Email, string Name, IReadOnlyList<OrgMembership> Orgs);

/// <summary>One org the caller belongs to, with the caller's role in it.</summary>
public sealed record OrgMembership(string Id, string Name, string Plan, string Role);

/// <summary><c>GET /v1/orgs/{id}</c>.</summary>
public sealed record OrgDetail(string Id, string Name, string Plan, string Role, DateTimeOffset CreatedAt);

/// <summary>An org member.</summary>
public sealed record Member(string UserId, string Email, string Name, string Role, DateTimeOffset CreatedAt);

/// <summary>A database; <see cref="Status"/> is provisioning, ready, restoring, moving, deleting, deleted or failed.</summary>
public sealed record Database(string Id, string OrgId, string Name, string Status, string QuotaState, DateTimeOffset CreatedAt, string? GroupId, long SizeBytes, string? StatusReason);

/// <summary>A long-running operation; <see cref="Status"/> is running, succeeded or failed.</summary>
public sealed record Operation(string Id, string Kind, string Status, string ResourceId, string? Error, DateTimeOffset CreatedAt, DateTimeOffset? FinishedAt);

/// <summary>Connection strings for one role; with a password only in a create or reset response.</summary>
public sealed record ConnectionUris(string Psql, string Npgsql, string Jdbc, string Http);

/// <summary>One-time owner credentials of a new database.</summary>
public sealed record Credentials(string User, string Password, ConnectionUris Uris);

/// <summary><c>POST /v1/orgs/{id}/databases</c> → 202.</summary>
public sealed record CreatedDatabase(Database Database, Operation Operation, Credentials Credentials);

/// <summary><c>GET /v1/databases/{id}/connection</c>: everything but the password.</summary>
public sealed record ConnectionInfo(string Host, int Port, string Database, string User, string Sslmode, ConnectionUris Uris);

/// <summary>A database role: owner, readwrite or readonly.</summary>
public sealed record DatabaseRole(string Name, string Kind, DateTimeOffset CreatedAt);

/// <summary><c>POST /v1/databases/{id}/roles</c> → the role and its one-time password.</summary>
public sealed record CreatedRole(DatabaseRole Role, string Password, ConnectionUris Uris);

/// <summary><c>POST .../roles/{role}/reset-password</c> → the new one-time password.</summary>
public sealed record ResetPassword(string Password, ConnectionUris Uris);

/// <summary>An org API key (never its secret).</summary>
public sealed record ApiKey(string Id, string OrgId, string Name, string Role, string CreatedBy, DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt, DateTimeOffset? LastUsedAt);

/// <summary><c>POST /v1/orgs/{id}/api-keys</c> → the key and its one-time secret.</summary>
public sealed record CreatedApiKey(ApiKey ApiKey, string Secret);

/// <summary>One hour or day of an org's usage.</summary>
public sealed record UsagePoint(DateTimeOffset Start, long RowsRead, long RowsWritten, long BytesRead, long BytesWritten, long StorageBytes, long CpuMs, long EgressBytes, double RequestUnits);

/// <summary><c>GET /v1/orgs/{id}/usage</c>.</summary>
public sealed record UsageReport(string OrgId, DateTimeOffset From, DateTimeOffset To, string Granularity, IReadOnlyList<UsagePoint> Items);

/// <summary>One hour or day of one database's usage: sums, its largest storage and connection count.</summary>
public sealed record DatabaseUsagePoint(DateTimeOffset Start, long RowsRead, long RowsWritten, long BytesRead, long BytesWritten, long StorageBytes, long CpuMs, long EgressBytes, long Connections, double RequestUnits);

/// <summary><c>GET /v1/databases/{id}/usage</c>.</summary>
public sealed record DatabaseUsageReport(string DatabaseId, DateTimeOffset From, DateTimeOffset To, string Granularity, IReadOnlyList<DatabaseUsagePoint> Items);

/// <summary>The plan's limits.</summary>
public sealed record QuotaLimits(int DatabasesPerOrg, int MaxConnections, int StatementsPerSecond, long MaxStorageBytesPerDatabase, double MonthlyRequestUnits);

/// <summary>One database's storage and quota state.</summary>
public sealed record DatabaseQuotaUsage(string DatabaseId, string Name, long StorageBytes, string QuotaState);

/// <summary><c>GET /v1/orgs/{id}/quota</c>: <see cref="PerDatabase"/> is a page of the <see cref="Databases"/>, those needing attention first.</summary>
public sealed record QuotaReport(string OrgId, string Plan, QuotaLimits Limits, int Databases, double MonthlyRequestUnits, DateTimeOffset MonthStart, IReadOnlyList<DatabaseQuotaUsage> PerDatabase, string? NextCursor);

/// <summary>One audit-log entry.</summary>
public sealed record AuditEntry(long Id, string Actor, string Action, string? ResourceId, string? SourceIp, int Status, DateTimeOffset At);

/// <summary>An invitation to an org; <see cref="Status"/> is pending, accepted or expired.</summary>
public sealed record Invitation(string Id, string OrgId, string Email, string Role, string Status, string InvitedBy, DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt);

/// <summary>A membership, as accepting an invitation or changing a role answers it.</summary>
public sealed record Membership(string OrgId, string UserId, string Role, DateTimeOffset CreatedAt);

/// <summary>A backup; <see cref="Status"/> is pending, running, completed or failed.</summary>
public sealed record Backup(
    string Id, string DatabaseId, string Status, bool Verified, long SizeBytes, string? Sha256, string RaftIndex, string? Error,
    DateTimeOffset CreatedAt, DateTimeOffset? CompletedAt, DateTimeOffset ExpiresAt, DateTimeOffset? VerifiedAt, string? VerificationDetails);

/// <summary><c>POST /v1/databases/{id}/backups</c> → 202.</summary>
public sealed record RequestedBackup(Backup Backup, Operation Operation);

/// <summary>A database's backup schedule; with none set, <see cref="Enabled"/> is false and <see cref="Cron"/> null.</summary>
public sealed record BackupSchedule(string DatabaseId, string? Cron, int RetentionDays, bool Enabled, DateTimeOffset? NextRunAt, DateTimeOffset? LastRunAt);

/// <summary><c>POST /v1/databases/{id}/restore</c> → 202: the operation and the target database.</summary>
public sealed record StartedRestore(Operation Operation, Database Database);

/// <summary>One proxy connection event: connect, deny or throttle.</summary>
public sealed record ConnectionEvent(string Id, DateTimeOffset At, string Kind, string? Reason, string? ClientIp, string? User, string Source);

/// <summary>A client the proxies refuse after failed logins.</summary>
public sealed record Lockout(string? ClientIp, DateTimeOffset LockedOutSince, DateTimeOffset LastRefusedAt, int RefusedConnections, int FailedLogins);

/// <summary><c>GET /v1/databases/{id}/auth-lockouts</c>.</summary>
public sealed record Lockouts(string DatabaseId, DateTimeOffset? LockoutResetAt, int WindowSeconds, IReadOnlyList<Lockout> Items);

/// <summary>One monthly statement in the list; <see cref="Status"/> is open (this month) or final.</summary>
public sealed record InvoiceSummary(string Period, string Status, string Plan, decimal Total, string Currency);

/// <summary>One line of a statement.</summary>
public sealed record LineItem(string Description, string? DatabaseId, string? DatabaseName, decimal Quantity, string Unit, decimal UnitPrice, decimal Amount);

/// <summary><c>GET /v1/orgs/{id}/invoices/{yyyy-mm}</c>: <see cref="LineItems"/> is a page of the <see cref="LineCount"/>; the total covers them all.</summary>
public sealed record Invoice(string OrgId, string Period, string Status, string Plan, DateTimeOffset PeriodStart, DateTimeOffset PeriodEnd, IReadOnlyList<LineItem> LineItems, decimal Total, string Currency, int LineCount, string? NextCursor);
