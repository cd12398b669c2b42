using Kdb.Node.Cluster;
using Kdb.Sql.Sessions;
using Kdb.Sql.Transactions;
using Kdb.Storage;

namespace Kdb.Node.Tests.Cluster;

/// <summary>The node's cache of SQL databases drops idle ones past its bound but never one with open sessions: its
/// row-lock table is where those sessions' writers queue.</summary>
public sealed class SqlDatabaseCacheTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kdb-dbcache-").FullName;
    private readonly IKvEngine _engine;
    private readonly LocalSqlStore _store;
    private int _created;

    public SqlDatabaseCacheTests()
    {
        _engine = KvEngine.Open(_dir, new EngineOptions { Durability = DurabilityMode.None });
        _store = new LocalSqlStore(_engine);
    }

    [Fact]
    public void A_database_with_an_open_session_survives_eviction_and_an_idle_one_does_not()
    {
        var cache = new SqlDatabaseCache(bound: 2);
        var busy = Get(cache, "busy", 1);
        var idle = Get(cache, "idle", 2);
        var session = busy.OpenSession("owner");
        Assert.Equal(1, busy.OpenSessionCount);

        Get(cache, "third", 3);

        Assert.Same(busy, Get(cache, "busy", 1));
        Assert.NotSame(idle, Get(cache, "idle", 2));

        session.Dispose();
        session.Dispose();
        Assert.Equal(0, busy.OpenSessionCount);
        for (var i = 0; i < 8; i++)
        {
            Get(cache, $"other{i}", (ulong)(10 + i));
        }
        Assert.NotSame(busy, Get(cache, "busy", 1));
    }

    [Fact]
    public void When_every_cached_database_is_busy_the_cache_grows_instead_of_splitting_them()
    {
        var cache = new SqlDatabaseCache(bound: 4);
        var sessions = new List<SqlSession>();
        var databases = new List<SqlDatabase>();
        for (var i = 0; i < 20; i++)
        {
            var db = Get(cache, $"db{i}", (ulong)(i + 1));
            databases.Add(db);
            sessions.Add(db.OpenSession("owner"));
        }

        Assert.Equal(20, cache.Count);
        for (var i = 0; i < 20; i++)
        {
            Assert.Same(databases[i], Get(cache, $"db{i}", (ulong)(i + 1)));
        }
        Assert.Equal(20, _created);
        foreach (var s in sessions)
        {
            s.Dispose();
        }
    }

    [Fact]
    public void The_same_id_on_another_tenant_is_another_database()
    {
        var cache = new SqlDatabaseCache(bound: 10);
        var before = Get(cache, "moved", 1);
        var after = Get(cache, "moved", 2);
        Assert.NotSame(before, after);
        Assert.Equal(2UL, after.Tenant);
    }

    private SqlDatabase Get(SqlDatabaseCache cache, string id, ulong tenant) =>
        cache.GetOrAdd(id, tenant, static (k, t) =>
        {
            t._created++;
            return new SqlDatabase(t._store, k.Tenant, k.Id);
        }, this);

    public void Dispose()
    {
        _engine.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
