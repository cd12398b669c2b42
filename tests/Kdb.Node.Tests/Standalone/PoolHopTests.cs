using Kdb.Node.Sql;
using Kdb.Sql.Sessions;
using Kdb.Sql.Transactions;
using Kdb.Sql.Types;
using Kdb.Storage;

namespace Kdb.Node.Tests.Standalone;

/// <summary>
/// With <c>Node:EpollSocketCompletions</c> a pgwire message is handled on the epoll thread that read it. Only a point
/// read may run there: preparing and committing writes continue on the thread pool (<see cref="PoolHop"/>). A thread
/// of the test's own stands in for the epoll thread (neither is a pool thread); the engine is real.
/// </summary>
public sealed class PoolHopTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("kdb-pool-hop-").FullName;
    private readonly IKvEngine _engine;
    private readonly ThreadRecordingStore _store;
    private readonly SqlDatabase _database;

    public PoolHopTests()
    {
        _engine = KvEngine.Open(_directory, new EngineOptions { Durability = DurabilityMode.None });
        _store = new ThreadRecordingStore(new LocalSqlStore(_engine));
        _database = new SqlDatabase(_store, 42, "hop");
    }

    /// <summary>Records whether the store was called on a thread-pool thread: where the session's work ran, whatever
    /// the scheduling race between the pool and the caller (a task's completion at return is no evidence).</summary>
    private sealed class ThreadRecordingStore(ISqlStore inner) : ISqlStore
    {
        public bool? SnapshotOnPool { get; set; }

        public bool? CommitOnPool { get; set; }

        public ValueTask<IKvSnapshot> OpenSnapshotAsync(CancellationToken cancellationToken)
        {
            SnapshotOnPool = Thread.CurrentThread.IsThreadPoolThread;
            return inner.OpenSnapshotAsync(cancellationToken);
        }

        public ValueTask<CommitOutcome> CommitAsync(Kdb.Transactions.CommitRecord record, CancellationToken cancellationToken)
        {
            CommitOnPool = Thread.CurrentThread.IsThreadPoolThread;
            return inner.CommitAsync(record, cancellationToken);
        }
    }

    public void Dispose()
    {
        _engine.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    private static T OnOwnThread<T>(Func<T> work)
    {
        T result = default!;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = work();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        thread.Join();
        return failure is null ? result : throw failure;
    }

    private static async Task<bool> HopAsync()
    {
        await PoolHop.IfOffPool();
        return Thread.CurrentThread.IsThreadPoolThread;
    }

    [Fact]
    public async Task Hop_CompletesAtOnceOnThePool_AndMovesAnyOtherThreadThere()
    {
        Assert.True(await Task.Run(() => PoolHop.IfOffPool().IsCompleted));
        Assert.False(OnOwnThread(() => PoolHop.IfOffPool().IsCompleted));
        Assert.True(await OnOwnThread(HopAsync));
    }

    [Fact]
    public async Task Prepare_OffThePool_ContinuesOnThePool_OnThePool_CompletesAtOnce()
    {
        var session = new KdbPgSession(_database.OpenSession("owner", SqlRoleKind.Owner));
        using (await (await session.Inner.PrepareAsync("CREATE TABLE t (id int PRIMARY KEY, v int)")).ExecuteAsync([]))
        {
        }

        await session.SyncAsync(CancellationToken.None);

        _store.SnapshotOnPool = null;
        var offPool = OnOwnThread(() => session.PrepareAsync("SELECT v FROM t WHERE id = $1", default, CancellationToken.None));
        var statement = await offPool;
        Assert.True(_store.SnapshotOnPool);
        Assert.Single(statement.Columns!);

        var onPool = await Task.Run(() => session.PrepareAsync("SELECT v FROM t WHERE id = $1", default, CancellationToken.None));
        Assert.True(onPool.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task Sync_ThatCommitsWrites_LeavesAnyOtherThread_ASyncThatEndsAReadDoesNot()
    {
        var session = new KdbPgSession(_database.OpenSession("owner", SqlRoleKind.Owner));
        var inner = session.Inner;
        using (await (await inner.PrepareAsync("CREATE TABLE t (id int PRIMARY KEY, v int)")).ExecuteAsync([]))
        {
        }

        await inner.SyncAsync();
        using (await (await inner.PrepareAsync("INSERT INTO t VALUES (1, 10)")).ExecuteAsync([]))
        {
        }

        Assert.True(inner.SyncCommits);
        _store.CommitOnPool = null;
        var commit = OnOwnThread(() => session.SyncAsync(CancellationToken.None));
        Assert.Equal(Kdb.PgWire.Session.PgTransactionStatus.Idle, await commit);
        Assert.True(_store.CommitOnPool);

        var read = await inner.PrepareAsync("SELECT v FROM t WHERE id = $1");
        Assert.True(read.IsPointRead);
        using (var cursor = await read.ExecuteAsync([Value.FromInt(1)]))
        {
            Assert.True(cursor.MoveNext());
            Assert.Equal(10, cursor.Current[0].AsInt);
        }

        Assert.False(inner.SyncCommits);
        var end = OnOwnThread(() => session.SyncAsync(CancellationToken.None));
        Assert.True(end.IsCompletedSuccessfully);
        Assert.Equal(Kdb.PgWire.Session.PgTransactionStatus.Idle, await end);
    }
}
