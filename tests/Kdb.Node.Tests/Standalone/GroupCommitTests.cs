using Kdb.Sql.Sessions;
using Kdb.Sql.Transactions;
using Kdb.Sql.Types;
using Kdb.Storage;

namespace Kdb.Node.Tests.Standalone;

/// <summary>
/// The standalone store's group commit: the engine applies without waiting and waits for durability afterwards, and
/// <see cref="LocalSqlStore"/> acknowledges a commit only once durable while concurrent commits share fsyncs.
/// </summary>
public sealed class GroupCommitTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("kdb-group-commit-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void Engine_ApplyWithoutWaiting_ThenWaitDurable_CoversEveryEarlierBatch()
    {
        using var engine = KvEngine.Open(_directory, new EngineOptions { Durability = DurabilityMode.SyncPerBatch });
        var group = Assert.IsAssignableFrom<IKvGroupCommit>(engine);
        ulong last = 0;
        for (var i = 0; i < 20; i++)
        {
            var batch = new WriteBatch();
            batch.Put([(byte)i], [1, 2, 3]);
            last = group.ApplyWithoutWaiting(batch);
            Assert.Equal(last, engine.LastAppliedIndex);
        }

        group.WaitDurable(last - 5);
        Assert.True(group.DurableVersion >= last - 5);
        group.WaitDurable(last);
        Assert.Equal(last, group.DurableVersion);
        Assert.Throws<ArgumentOutOfRangeException>(() => group.WaitDurable(last + 1));
    }

    [Theory]
    [InlineData(DurabilityMode.Periodic)]
    [InlineData(DurabilityMode.None)]
    public void Engine_RelaxedDurability_NeverWaits(DurabilityMode mode)
    {
        using var engine = KvEngine.Open(_directory, new EngineOptions { Durability = mode });
        var group = (IKvGroupCommit)engine;
        var batch = new WriteBatch();
        batch.Put([1], [1]);
        var version = group.ApplyWithoutWaiting(batch);

        Assert.Equal(version, group.DurableVersion);
        group.WaitDurable(version);
    }

    [Fact]
    public async Task LocalStore_ConcurrentCommits_EveryAcknowledgedOneIsDurableAndSurvivesReopen()
    {
        const int Clients = 8;
        const int PerClient = 40;
        var acknowledged = 0;
        using (var engine = KvEngine.Open(_directory, new EngineOptions { Durability = DurabilityMode.SyncPerBatch }))
        {
            var group = (IKvGroupCommit)engine;
            var database = new SqlDatabase(new LocalSqlStore(engine), 7, "gc");
            using (var setup = database.OpenSession("owner"))
            {
                await ExecAsync(setup, "CREATE TABLE t (client int, n int, PRIMARY KEY (client, n))");
            }

            await Task.WhenAll(Enumerable.Range(0, Clients).Select(client => Task.Run(async () =>
            {
                using var session = database.OpenSession("owner");
                var insert = session.Prepare("INSERT INTO t VALUES ($1, $2)", [SqlTypeId.Int4, SqlTypeId.Int4]);
                for (var n = 0; n < PerClient; n++)
                {
                    using (var cursor = await insert.ExecuteAsync([Value.FromInt(client), Value.FromInt(n)]))
                    {
                        while (cursor.MoveNext())
                        {
                        }
                    }

                    var before = engine.LastAppliedIndex;
                    await session.SyncAsync();

                    // This commit's batch was applied after `before`, so acknowledging it means at least before + 1 is durable.
                    Assert.True(group.DurableVersion > before, $"durable {group.DurableVersion}, applied before the commit {before}");
                    Interlocked.Increment(ref acknowledged);
                }
            })));
        }

        using var reopened = KvEngine.Open(_directory);
        var again = new SqlDatabase(new LocalSqlStore(reopened), 7, "gc");
        using var reader = again.OpenSession("owner");
        using var count = await reader.Prepare("SELECT count(*) FROM t").ExecuteAsync([]);
        Assert.True(count.MoveNext());
        Assert.Equal(Clients * PerClient, acknowledged);
        Assert.Equal((long)acknowledged, count.Current[0].AsInt);
    }

    private static async Task ExecAsync(SqlSession session, string sql)
    {
        using (var cursor = await session.Prepare(sql).ExecuteAsync([]))
        {
            while (cursor.MoveNext())
            {
            }
        }

        await session.SyncAsync();
    }
}
