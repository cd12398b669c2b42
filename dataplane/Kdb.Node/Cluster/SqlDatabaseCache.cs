using System.Collections.Concurrent;
using Kdb.Sql.Sessions;

namespace Kdb.Node.Cluster;

/// <summary>
/// The <see cref="SqlDatabase"/> objects of the databases clients use, keyed by (database id, tenant): a decoded
/// catalog and a row-lock table each. Idle databases cost nothing but their keys, so past a bound the cache drops
/// the ones without open sessions wholesale rather than tracking recency per query. A database with sessions stays:
/// its row locks live in its object, and a second object for the same database would let new sessions' writers skip
/// the queue of those still running (commit validation keeps that correct, but writers of a hot row would fail with
/// 40001 instead of waiting).
/// </summary>
internal sealed class SqlDatabaseCache(int bound)
{
    private readonly ConcurrentDictionary<(string Id, ulong Tenant), SqlDatabase> _databases = new();
    private readonly Lock _evictGate = new();
    private readonly int _bound = bound;
    private int _evictAt = bound;

    public int Count => _databases.Count;

    public SqlDatabase GetOrAdd<TState>(string databaseId, ulong tenant, Func<(string Id, ulong Tenant), TState, SqlDatabase> create, TState state)
    {
        var key = (databaseId, tenant);
        if (_databases.TryGetValue(key, out var db))
        {
            return db;
        }
        if (_databases.Count >= Volatile.Read(ref _evictAt))
        {
            EvictIdle();
        }
        return _databases.GetOrAdd(key, create, state);
    }

    private void EvictIdle()
    {
        lock (_evictGate)
        {
            if (_databases.Count < _evictAt)
            {
                return;
            }
            foreach (var entry in _databases)
            {
                // A session opened between this check and the removal lands on a dropped object: the split the class
                // comment describes, for one session, and only as a retry.
                if (entry.Value.OpenSessionCount == 0)
                {
                    _databases.TryRemove(entry);
                }
            }
            // When most cached databases have sessions, scanning them again on the next open would cost a walk per
            // open: let the cache grow to twice what it keeps before the next walk.
            Volatile.Write(ref _evictAt, Math.Max(_bound, _databases.Count * 2));
        }
    }
}
