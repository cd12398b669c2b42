using Kdb.Sql.Catalog;
using Kdb.Sql.Transactions;

namespace Kdb.Sql.Sessions;

/// <summary>Options of a tenant database's SQL engine.</summary>
public sealed record SqlOptions
{
    /// <summary>Working memory one statement may hold in sorts, hashes and materializations (53200 beyond).</summary>
    public long StatementMemoryBytes { get; init; } = 256L << 20;
}

/// <summary>
/// One tenant database: its keyspace under the tenant id, on a store that commits its transactions. Open a
/// session per client connection; sessions share the decoded catalog.
/// </summary>
public sealed class SqlDatabase
{
    private static int _nextBackendPid = 1000;

    private int _openSessions;

    /// <summary>Creates the database handle.</summary>
    /// <param name="store">Snapshots and the committer (in-process or Raft).</param>
    /// <param name="tenant">The tenant id: the high-order 8 bytes of every key.</param>
    /// <param name="name">The database name clients connect to (current_database()).</param>
    /// <param name="options">Limits.</param>
    public SqlDatabase(ISqlStore store, ulong tenant, string name, SqlOptions? options = null)
    {
        Store = store;
        Tenant = tenant;
        Name = name;
        Options = options ?? new SqlOptions();
        CatalogStore = new CatalogStore(tenant);
        Locks = store is ISqlLockingStore ? new KeyLockTable() : null;
    }

    public ISqlStore Store { get; }

    public ulong Tenant { get; }

    public string Name { get; }

    public SqlOptions Options { get; }

    internal CatalogStore CatalogStore { get; }

    /// <summary>Row locks of the read-write transactions running here (null when the store cannot refresh reads).</summary>
    internal KeyLockTable? Locks { get; }

    /// <summary>Keys locked now by this database's transactions on this node (tests and diagnostics).</summary>
    public int LockedKeyCount => Locks?.Count ?? 0;

    /// <summary>Transactions waiting for a row lock now (tests and diagnostics).</summary>
    public int LockWaiterCount => Locks?.Waiting ?? 0;

    /// <summary>Sessions opened and not yet disposed: a host caching databases must not drop one that has any, or
    /// sessions opened after the drop would queue on another lock table than the ones still running.</summary>
    public int OpenSessionCount => Volatile.Read(ref _openSessions);

    /// <summary>Opens a session running as <paramref name="user"/> with the privileges of <paramref name="role"/>.</summary>
    public SqlSession OpenSession(string user, SqlRoleKind role = SqlRoleKind.Owner)
    {
        Interlocked.Increment(ref _openSessions);
        return new(this, new SessionState(user, Name, role) { BackendPid = Interlocked.Increment(ref _nextBackendPid) });
    }

    internal void SessionClosed() => Interlocked.Decrement(ref _openSessions);
}
