namespace Kdb.Contracts.V1;

/// <summary>
/// What every Kdb.Cloud event carries (DESIGN, Events): the operation it belongs to, used as the
/// correlation id, and when it was published. Consumers are idempotent on (event type, operation id).
/// </summary>
public interface IKdbEvent
{
    /// <summary>The operation id (<c>op_…</c>) this event belongs to.</summary>
    string OperationId { get; }

    /// <summary>When the publisher created the event.</summary>
    DateTimeOffset Timestamp { get; }
}

/// <summary>Kind of a database role (DESIGN, Database roles). Wire values: only ever appended.</summary>
public enum RoleKind
{
    /// <summary>DDL and DML.</summary>
    Owner = 0,

    /// <summary>DML, no DDL.</summary>
    ReadWrite = 1,

    /// <summary>Reads only.</summary>
    ReadOnly = 2,
}

/// <summary>A database's quota state (DESIGN, Quotas). Wire values: only ever appended.</summary>
public enum QuotaState
{
    /// <summary>Within every limit.</summary>
    Ok = 0,

    /// <summary>Some limit at or above 80%.</summary>
    Warning = 1,

    /// <summary>Monthly request units above 100%: the proxy slows statements.</summary>
    Throttled = 2,

    /// <summary>Storage above 100%: nodes refuse writes (SQLSTATE 25006).</summary>
    ReadOnly = 3,

    /// <summary>Monthly request units above 125%: no new connections, no statements (SQLSTATE 53400).</summary>
    Suspended = 4,
}

/// <summary>Per-database limits from the org's plan, as nodes and proxies enforce them.</summary>
/// <param name="MaxConnections">Concurrent connections per database.</param>
/// <param name="StatementsPerSecond">Statement rate when throttled.</param>
/// <param name="MaxStorageBytes">Storage above which the database turns read-only.</param>
public sealed record DatabaseLimits(int MaxConnections, int StatementsPerSecond, long MaxStorageBytes);

/// <summary>A role as provisioning installs it: never a plaintext password, only its SCRAM verifier.</summary>
/// <param name="Name">Role name (e.g. <c>owner</c>).</param>
/// <param name="Kind">What the role may do.</param>
/// <param name="ScramVerifier"><c>SCRAM-SHA-256$&lt;iterations&gt;:&lt;salt&gt;$&lt;StoredKey&gt;:&lt;ServerKey&gt;</c>.</param>
public sealed record RoleVerifier(string Name, RoleKind Kind, string ScramVerifier);
