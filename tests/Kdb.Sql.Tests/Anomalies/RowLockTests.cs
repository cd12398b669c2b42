using System.Collections.Concurrent;
using Kdb.Sql.Sessions;

namespace Kdb.Sql.Tests.Anomalies;

/// <summary>
/// Row locks with read refresh: writers of a hot row queue behind each other instead of failing with 40001; waits
/// that would deadlock answer 40P01; a wait can be canceled (57014) or time out (55P03); a transaction whose earlier
/// reads changed while it waited fails early with 40001.
/// </summary>
public sealed class RowLockTests : IDisposable
{
    private readonly SqlTestDatabase _db = new();

    public void Dispose() => _db.Dispose();

    private async Task<SqlSession> SetupAsync()
    {
        var setup = _db.Session();
        await setup.RunAsync("CREATE TABLE counter (id int PRIMARY KEY, v bigint NOT NULL)");
        await setup.RunAsync("CREATE TABLE tellers (id int PRIMARY KEY, v bigint NOT NULL)");
        await setup.RunAsync("INSERT INTO counter SELECT g, 0 FROM generate_series(1, 4) g");
        await setup.RunAsync("INSERT INTO tellers SELECT g, 0 FROM generate_series(1, 10) g");
        return setup;
    }

    /// <summary>Polls until <paramref name="waiters"/> transactions wait for a lock (no timing is asserted).</summary>
    private async Task WaitersAsync(int waiters, Task? mustNotFinish = null)
    {
        for (var i = 0; _db.Database.LockWaiterCount < waiters; i++)
        {
            Assert.True(i < 20_000, "the statement never started waiting");
            Assert.False(mustNotFinish?.IsCompleted, "the statement finished instead of waiting");
            await Task.Delay(1);
        }
    }

    [Fact]
    public async Task HotRow_ConcurrentExplicitTransactions_NoSerializationFailures_CounterMatchesCommits()
    {
        using var setup = await SetupAsync();
        const int Sessions = 8;
        const int PerSession = 25;
        var failures = new ConcurrentBag<string>();
        var workers = Enumerable.Range(0, Sessions).Select(worker => Task.Run(async () =>
        {
            var random = new Random(17 * worker + 3);
            using var session = _db.Session();
            for (var n = 0; n < PerSession; n++)
            {
                var teller = random.Next(1, 11);
                try
                {
                    // TPC-B's shape: a teller row, a read of it, then the one branch row every transaction updates.
                    await session.RunAsync("BEGIN");
                    await session.RunAsync("UPDATE tellers SET v = v + 1 WHERE id = $1", teller);
                    await session.ScalarAsync("SELECT v FROM tellers WHERE id = $1", teller);
                    await session.RunAsync("UPDATE counter SET v = v + 1 WHERE id = 1");
                    await session.RunAsync("COMMIT");
                }
                catch (SqlException e)
                {
                    failures.Add(e.SqlState + " " + e.Message);
                    await session.RunAsync("ROLLBACK");
                }
            }
        })).ToArray();
        await Task.WhenAll(workers);

        Assert.Empty(failures);
        Assert.Equal((Sessions * PerSession).ToString(), await setup.ScalarAsync("SELECT v FROM counter WHERE id = 1"));
        Assert.Equal((Sessions * PerSession).ToString(), await setup.ScalarAsync("SELECT sum(v) FROM tellers"));
        Assert.Equal(0, _db.Database.LockedKeyCount);
    }

    [Fact]
    public async Task HotRow_ConcurrentImplicitUpdates_NoSerializationFailures()
    {
        using var setup = await SetupAsync();
        const int Sessions = 8;
        const int PerSession = 40;
        var failures = new ConcurrentBag<string>();
        var workers = Enumerable.Range(0, Sessions).Select(_ => Task.Run(async () =>
        {
            using var session = _db.Session();
            for (var n = 0; n < PerSession; n++)
            {
                try
                {
                    await session.RunAsync("UPDATE counter SET v = v + 1 WHERE id = 2");
                }
                catch (SqlException e)
                {
                    failures.Add(e.SqlState + " " + e.Message);
                }
            }
        })).ToArray();
        await Task.WhenAll(workers);

        Assert.Empty(failures);
        Assert.Equal((Sessions * PerSession).ToString(), await setup.ScalarAsync("SELECT v FROM counter WHERE id = 2"));
    }

    [Fact]
    public async Task Deadlock_OneTransactionGets40P01_TheOtherCommits()
    {
        using var setup = await SetupAsync();
        using var first = _db.Session();
        using var second = _db.Session();
        await first.RunAsync("BEGIN");
        await first.RunAsync("UPDATE counter SET v = 10 WHERE id = 1");
        await second.RunAsync("BEGIN");
        await second.RunAsync("UPDATE counter SET v = 20 WHERE id = 2");

        var firstWaits = first.RunAsync("UPDATE counter SET v = 11 WHERE id = 2");
        await WaitersAsync(1, firstWaits);
        await second.FailsAsync("UPDATE counter SET v = 21 WHERE id = 1", "40P01");
        Assert.False(firstWaits.IsCompleted);
        await second.RunAsync("ROLLBACK");

        Assert.Equal("UPDATE 1", await firstWaits);
        await first.RunAsync("COMMIT");
        Assert.Equal("10", await setup.ScalarAsync("SELECT v FROM counter WHERE id = 1"));
        Assert.Equal("11", await setup.ScalarAsync("SELECT v FROM counter WHERE id = 2"));
        Assert.Equal(0, _db.Database.LockedKeyCount);
    }

    [Fact]
    public async Task CanceledWait_Answers57014_AndRollbackReleasesItsLocks()
    {
        using var setup = await SetupAsync();
        using var holder = _db.Session();
        using var waiter = _db.Session();
        await holder.RunAsync("BEGIN");
        await holder.RunAsync("UPDATE counter SET v = 1 WHERE id = 1");
        await waiter.RunAsync("BEGIN");
        await waiter.RunAsync("UPDATE tellers SET v = 5 WHERE id = 3");

        using var cancel = new CancellationTokenSource();
        var waiting = waiter.ExecuteAsync("UPDATE counter SET v = 2 WHERE id = 1", cancellationToken: cancel.Token).AsTask();
        await WaitersAsync(1, waiting);
        await cancel.CancelAsync();
        var e = await Assert.ThrowsAsync<SqlException>(() => waiting);
        Assert.Equal("57014", e.SqlState);
        Assert.Equal(0, _db.Database.LockWaiterCount);

        // The waiter's transaction still holds tellers 3 until it rolls back; then another writer goes through at once.
        await waiter.RunAsync("ROLLBACK");
        using var third = _db.Session();
        Assert.Equal("UPDATE 1", await third.RunAsync("UPDATE tellers SET v = 7 WHERE id = 3"));
        await holder.RunAsync("COMMIT");
        Assert.Equal("1", await setup.ScalarAsync("SELECT v FROM counter WHERE id = 1"));
        Assert.Equal("7", await setup.ScalarAsync("SELECT v FROM tellers WHERE id = 3"));
        Assert.Equal(0, _db.Database.LockedKeyCount);
    }

    [Fact]
    public async Task ClosedSession_ReleasesItsLocks_TheWaiterProceeds()
    {
        using var setup = await SetupAsync();
        var holder = _db.Session();
        using var waiter = _db.Session();
        await holder.RunAsync("BEGIN");
        await holder.RunAsync("UPDATE counter SET v = 100 WHERE id = 3");

        var waiting = waiter.RunAsync("UPDATE counter SET v = v + 1 WHERE id = 3");
        await WaitersAsync(1, waiting);
        holder.Dispose();

        Assert.Equal("UPDATE 1", await waiting);
        Assert.Equal("1", await setup.ScalarAsync("SELECT v FROM counter WHERE id = 3"));
        Assert.Equal(0, _db.Database.LockedKeyCount);
    }

    [Fact]
    public async Task LockTimeout_Answers55P03()
    {
        using var setup = await SetupAsync();
        using var holder = _db.Session();
        using var waiter = _db.Session();
        await holder.RunAsync("BEGIN");
        await holder.RunAsync("UPDATE counter SET v = 5 WHERE id = 4");
        await waiter.RunAsync("SET lock_timeout = '20ms'");

        await waiter.FailsAsync("UPDATE counter SET v = 6 WHERE id = 4", "55P03");
        await holder.RunAsync("COMMIT");
        Assert.Equal("5", await setup.ScalarAsync("SELECT v FROM counter WHERE id = 4"));
        Assert.Equal(0, _db.Database.LockWaiterCount);
    }

    [Fact]
    public async Task RefreshFails_WhenAnEarlierReadChangedWhileWaiting_40001BeforeCommit()
    {
        using var setup = await SetupAsync();
        using var reader = _db.Session();
        using var holder = _db.Session();
        await reader.RunAsync("BEGIN");
        Assert.Equal("0", await reader.ScalarAsync("SELECT v FROM tellers WHERE id = 1"));
        await holder.RunAsync("BEGIN");
        await holder.RunAsync("UPDATE counter SET v = 50 WHERE id = 1");
        await holder.RunAsync("UPDATE tellers SET v = 50 WHERE id = 1");

        var waiting = reader.RunAsync("UPDATE counter SET v = v + 1 WHERE id = 1");
        await WaitersAsync(1, waiting);
        await holder.RunAsync("COMMIT");

        var e = await Assert.ThrowsAsync<SqlException>(() => waiting);
        Assert.Equal("40001", e.SqlState);
        await reader.RunAsync("ROLLBACK");
        Assert.Equal("50", await setup.ScalarAsync("SELECT v FROM counter WHERE id = 1"));
    }

    [Fact]
    public async Task RefreshSucceeds_WhenEarlierReadsAreUnchanged_TheUpdateSeesTheHoldersCommit()
    {
        using var setup = await SetupAsync();
        using var writer = _db.Session();
        using var holder = _db.Session();
        await writer.RunAsync("BEGIN");
        Assert.Equal("0", await writer.ScalarAsync("SELECT v FROM tellers WHERE id = 2"));
        await holder.RunAsync("BEGIN");
        await holder.RunAsync("UPDATE counter SET v = 50 WHERE id = 1");

        var waiting = writer.RunAsync("UPDATE counter SET v = v + 1 WHERE id = 1");
        await WaitersAsync(1, waiting);
        await holder.RunAsync("COMMIT");
        Assert.Equal("UPDATE 1", await waiting);
        Assert.Equal("51", await writer.ScalarAsync("SELECT v FROM counter WHERE id = 1"));
        await writer.RunAsync("COMMIT");
        Assert.Equal("51", await setup.ScalarAsync("SELECT v FROM counter WHERE id = 1"));
    }

    [Fact]
    public async Task ChangedAfterSnapshot_WithoutWaiting_RefreshesInsteadOfFailingAtCommit()
    {
        using var setup = await SetupAsync();
        using var writer = _db.Session();
        await writer.RunAsync("BEGIN");
        Assert.Equal("0", await writer.ScalarAsync("SELECT v FROM tellers WHERE id = 4"));

        // Committed after the writer's snapshot, and no lock is held any more when the writer comes.
        await setup.RunAsync("UPDATE counter SET v = 30 WHERE id = 2");
        Assert.Equal("UPDATE 1", await writer.RunAsync("UPDATE counter SET v = v + 1 WHERE id = 2"));
        await writer.RunAsync("COMMIT");
        Assert.Equal("31", await setup.ScalarAsync("SELECT v FROM counter WHERE id = 2"));
    }

    [Fact]
    public async Task SameKeyTwice_OneLock_ReadOnlyTransaction_None_SavepointRollbackKeepsIt()
    {
        using var setup = await SetupAsync();
        using var session = _db.Session();
        await session.RunAsync("BEGIN");
        await session.ScalarAsync("SELECT count(*) FROM counter");
        Assert.Equal(0, _db.Database.LockedKeyCount);
        await session.RunAsync("SAVEPOINT a");
        await session.RunAsync("UPDATE counter SET v = 1 WHERE id = 1");
        await session.RunAsync("UPDATE counter SET v = 2 WHERE id = 1");
        Assert.Equal(1, _db.Database.LockedKeyCount);
        await session.RunAsync("ROLLBACK TO SAVEPOINT a");
        Assert.Equal(1, _db.Database.LockedKeyCount);
        await session.RunAsync("COMMIT");
        Assert.Equal(0, _db.Database.LockedKeyCount);
        Assert.Equal("0", await setup.ScalarAsync("SELECT v FROM counter WHERE id = 1"));
    }
}
