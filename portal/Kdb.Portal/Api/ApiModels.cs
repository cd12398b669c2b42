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

/// <summary>The plan's limits.</summary>
public sealed record QuotaLimits(int DatabasesPerOrg, int MaxConnections, int StatementsPerSecond, long MaxStorageBytesPerDatabase, double MonthlyRequestUnits);

/// <summary>One database's storage and quota state.</summary>
public sealed record DatabaseQuotaUsage(string DatabaseId, string Name, long StorageBytes, string QuotaState);

/// <summary><c>GET /v1/orgs/{id}/quota</c>.</summary>
public sealed record QuotaReport(string OrgId, string Plan, QuotaLimits Limits, int Databases, double MonthlyRequestUnits, DateTimeOffset MonthStart, IReadOnlyList<DatabaseQuotaUsage> PerDatabase);

/// <summary>One audit-log entry.</summary>
public sealed record AuditEntry(long Id, string Actor, string Action, string? ResourceId, string? SourceIp, int Status, DateTimeOffset At);
