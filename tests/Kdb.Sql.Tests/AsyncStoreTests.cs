using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Kdb.Sql.Sessions;
using Kdb.Sql.Transactions;
using Kdb.Storage;
using Kdb.Transactions;

namespace Kdb.Sql.Tests;

/// <summary>
/// A store that answers only through one loop thread, which also runs the session (as an epoll thread does with
/// socket completions inline, where a Raft reply arrives on the thread that sent the statement). Any synchronous wait
/// for the store on the statement path deadlocks it, so these tests fail by timeout if one comes back: catalog loads,
/// sequence blocks in DML, in SELECT and in COPY, setval, TRUNCATE ... RESTART IDENTITY.
/// </summary>
public sealed class AsyncStoreTests : IDisposable
{
    private readonly SqlTestDatabase _db = new();
    private readonly LoopThread _loop = new();

    [Fact]
    public Task Statements_that_draw_sequence_blocks_never_wait_for_the_store_on_the_session_thread() => OnLoop(async session =>
    {
        Assert.NotNull((await session.PrepareAsync("SELECT 1")).Columns);
        await session.RunAsync("CREATE TABLE t (id serial PRIMARY KEY, v int)");
        await session.RunAsync("CREATE TABLE h (v int)");
        var prepared = await session.PrepareAsync("SELECT count(*) FROM t");
        Assert.Single(prepared.Columns!);

        // One statement that runs out of its block many times: undone and re-run with a larger block each time.
        Assert.Equal("INSERT 0 3000", await session.RunAsync("INSERT INTO t (v) SELECT g FROM generate_series(1, 3000) g"));
        Assert.Equal("INSERT 0 2000", await session.RunAsync("INSERT INTO h SELECT g FROM generate_series(1, 2000) g"));
        Assert.Equal(["3000", "3000", "4501500"], (await session.QueryAsync("SELECT count(*), count(DISTINCT id), sum(v) FROM t"))[0]);

        // Inside an explicit transaction a re-run keeps the statements before it, and only them.
        await session.RunAsync("BEGIN");
        await session.RunAsync("INSERT INTO t (v) VALUES (-1)");
        await session.RunAsync("INSERT INTO t (v) SELECT g FROM generate_series(1, 500) g");
        await session.RunAsync("COMMIT");
        Assert.Equal(["3501", "3501", "1"], (await session.QueryAsync("SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE v = -1) FROM t"))[0]);

        // nextval and setval in a SELECT: its rows are produced to the end before the first is returned.
        await session.RunAsync("CREATE SEQUENCE s");
        Assert.Equal("1", await session.ScalarAsync("SELECT nextval('s')"));
        var drawn = await session.QueryAsync("SELECT nextval('s') FROM generate_series(1, 100)");
        Assert.Equal(100, drawn.Select(r => r[0]).Distinct().Count());
        Assert.Equal("500", await session.ScalarAsync("SELECT setval('s', 500)"));
        Assert.Equal("501", await session.ScalarAsync("SELECT nextval('s')"));

        // COPY into a table without a primary key (hidden row ids): rows wait for their block, none is lost.
        var copy = await session.BeginCopyInAsync("h", null);
        for (var i = 0; i < 5000; i++)
        {
            copy.AddRow([i.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            if (i % 700 == 0)
            {
                await copy.FlushAsync();
            }
        }

        await copy.FlushAsync();
        Assert.Equal(5000, copy.Complete());
        await session.SyncAsync();
        Assert.Equal("7000", await session.ScalarAsync("SELECT count(*) FROM h"));

        await session.RunAsync("TRUNCATE t RESTART IDENTITY");
        Assert.Equal("1", await session.ScalarAsync("INSERT INTO t (v) VALUES (7) RETURNING id"));
        Assert.Contains("Insert on t", string.Join('\n', (await session.QueryAsync("EXPLAIN ANALYZE INSERT INTO t (v) SELECT g FROM generate_series(1, 100) g")).Select(r => r[0])), StringComparison.Ordinal);
        Assert.Equal("101", await session.ScalarAsync("SELECT count(*) FROM t"));
    });

    [Fact]
    public Task Serial_inserts_from_several_sessions_get_distinct_ids() => OnLoop(async first =>
    {
        await first.RunAsync("CREATE TABLE t (id serial PRIMARY KEY, writer int)");
        var sessions = new[] { first, Open(), Open(), Open() };
        await Task.WhenAll(sessions.Select(async (session, writer) =>
        {
            for (var i = 0; i < 60; i++)
            {
                await session.RunAsync("INSERT INTO t (writer) VALUES ($1)", writer);
            }
        }));
        Assert.Equal(["240", "240"], (await first.QueryAsync("SELECT count(*), count(DISTINCT id) FROM t"))[0]);
    });

    private SqlSession Open() => new SqlDatabase(new LoopStore(_db.Store, _loop), 42, "testdb").OpenSession("owner", SqlRoleKind.Owner);

    private async Task OnLoop(Func<SqlSession, Task> work)
    {
        var done = _loop.Run(() => work(Open()));
        var finished = await Task.WhenAny(done, Task.Delay(TimeSpan.FromSeconds(90)));
        Assert.True(finished == done, "the session blocked its thread waiting for the store (deadlock)");
        await done;
    }

    public void Dispose()
    {
        _loop.Dispose();
        _db.Dispose();
    }

    /// <summary>One thread that runs posted work and every continuation that captured it.</summary>
    private sealed class LoopThread : SynchronizationContext, IDisposable
    {
        private readonly BlockingCollection<(SendOrPostCallback Callback, object? State)> _queue = [];
        private readonly Thread _thread;

        public LoopThread()
        {
            _thread = new Thread(() =>
            {
                SetSynchronizationContext(this);
                foreach (var (callback, state) in _queue.GetConsumingEnumerable())
                {
                    callback(state);
                }
            })
            { IsBackground = true, Name = "store loop" };
            _thread.Start();
        }

        public override void Post(SendOrPostCallback d, object? state) => _queue.Add((d, state));

        public Task Run(Func<Task> work)
        {
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Post(async _ =>
            {
                try
                {
                    await work();
                    done.SetResult();
                }
                catch (Exception e)
                {
                    done.SetException(e);
                }
            }, null);
            return done.Task;
        }

        /// <summary>Continues on the loop thread, later: never inline, so a blocked loop never gets there.</summary>
        public HopAwaitable Hop() => new(this);

        public void Dispose() => _queue.CompleteAdding();

        public readonly struct HopAwaitable(LoopThread loop) : INotifyCompletion
        {
            public bool IsCompleted => false;

            public HopAwaitable GetAwaiter() => this;

            public void OnCompleted(Action continuation) => loop.Post(static c => ((Action)c!)(), continuation);

            public void GetResult()
            {
            }
        }
    }

    /// <summary>The real store, answering through the loop as a replicated store answers through its network thread.</summary>
    private sealed class LoopStore(LocalSqlStore inner, LoopThread loop) : ISqlStore
    {
        public async ValueTask<IKvSnapshot> OpenSnapshotAsync(CancellationToken cancellationToken)
        {
            await loop.Hop();
            return await inner.OpenSnapshotAsync(cancellationToken);
        }

        public async ValueTask<CommitOutcome> CommitAsync(CommitRecord record, CancellationToken cancellationToken)
        {
            await loop.Hop();
            return await inner.CommitAsync(record, cancellationToken);
        }
    }
}
