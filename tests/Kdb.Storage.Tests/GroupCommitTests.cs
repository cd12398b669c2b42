using Kdb.Storage.Wal;

namespace Kdb.Storage.Tests;

/// <summary>Leader/follower group commit in the WAL: one fsync releases every writer it covers at
/// once, and writers that arrive during an fsync are carried together by the next one.</summary>
public sealed class GroupCommitTests
{
    [Fact]
    public void CoveredFollowers_ReturnWhileTheNextFsyncIsStillRunning()
    {
        using var dir = new TestDir();
        using var firstEntered = new ManualResetEventSlim();
        using var releaseFirst = new ManualResetEventSlim();
        using var secondEntered = new ManualResetEventSlim();
        using var releaseSecond = new ManualResetEventSlim();
        var fsyncs = 0;
        using var wal = new WalWriter(dir.Path, 1);
        wal.BeforeFsync = () =>
        {
            switch (Interlocked.Increment(ref fsyncs))
            {
                case 1:
                    firstEntered.Set();
                    releaseFirst.Wait();
                    break;
                case 2:
                    secondEntered.Set();
                    releaseSecond.Wait();
                    break;
            }
        };
        try
        {
            var t1 = wal.Append(1, [1, 2, 3], spill: false);
            var leader = Waiter.Start(() => wal.Sync(t1));
            Assert.True(firstEntered.Wait(TimeSpan.FromSeconds(30)), "the leader never reached its fsync");

            // While fsync 1 (covering t1) is held open: one writer with a newer record, not covered, and
            // six writers whose tickets fsync 1 covers.
            var t2 = wal.Append(2, [4, 5, 6], spill: false);
            var uncovered = Waiter.Start(() => wal.Sync(t2));
            var covered = new Waiter[6];
            for (var i = 0; i < covered.Length; i++)
            {
                covered[i] = Waiter.Start(() => wal.Sync(t1));
            }
            Thread.Sleep(50); // let them reach the wait; correctness does not depend on it
            Assert.False(uncovered.Done.IsSet);
            releaseFirst.Set();
            Assert.True(leader.Done.Wait(TimeSpan.FromSeconds(30)));

            // fsync 2 (led by the uncovered writer) is now held open; everyone fsync 1 covered must be back.
            Assert.True(secondEntered.Wait(TimeSpan.FromSeconds(30)), "the uncovered writer never led an fsync");
            Assert.True(Waiter.All(covered), "covered writers waited for the next fsync");
            Assert.False(uncovered.Done.IsSet);
            Assert.Equal(1UL, wal.DurableSeq);
            releaseSecond.Set();
            Assert.True(uncovered.Done.Wait(TimeSpan.FromSeconds(30)));
            Assert.Equal(2UL, wal.DurableSeq);
            Assert.Equal(2, wal.Syncs);
        }
        finally
        {
            // Never leave a thread parked in the seam: a failed run would hang the dispose of the WAL.
            releaseFirst.Set();
            releaseSecond.Set();
        }
    }

    [Fact]
    public void WritersArrivingDuringAnFsync_ShareTheNextOne()
    {
        using var dir = new TestDir();
        using var entered = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var fsyncs = 0;
        using var wal = new WalWriter(dir.Path, 1);
        wal.BeforeFsync = () =>
        {
            if (Interlocked.Increment(ref fsyncs) == 1)
            {
                entered.Set();
                release.Wait();
            }
        };
        try
        {
            var t1 = wal.Append(1, [1], spill: false);
            var leader = Waiter.Start(() => wal.Sync(t1));
            Assert.True(entered.Wait(TimeSpan.FromSeconds(30)));
            var waiters = new Waiter[8];
            for (var i = 0; i < waiters.Length; i++)
            {
                var t = wal.Append((ulong)i + 2, [(byte)i], spill: false);
                waiters[i] = Waiter.Start(() => wal.Sync(t));
            }
            release.Set();
            Assert.True(leader.Done.Wait(TimeSpan.FromSeconds(30)));
            Assert.True(Waiter.All(waiters));
            // Eight writers buffered during fsync 1: whichever leads next carries all of them.
            Assert.Equal(2, wal.Syncs);
            Assert.Equal(9UL, wal.DurableSeq);
        }
        finally
        {
            release.Set();
        }
    }

    [Fact]
    public void FailedFsync_FailsEveryLaterSync_AndNeverPublishesDurability()
    {
        using var dir = new TestDir();
        var fail = true;
        var wal = new WalWriter(dir.Path, 1);
        wal.BeforeFsync = () =>
        {
            if (fail)
            {
                throw new IOException("injected fsync failure");
            }
        };
        var t1 = wal.Append(1, [1], spill: false);
        Assert.Equal("injected fsync failure", Assert.Throws<IOException>(() => wal.Sync(t1)).Message);
        // Even once the device "recovers", nothing appended before or after is reported durable.
        fail = false;
        var t2 = wal.Append(2, [2], spill: false);
        var again = Assert.Throws<IOException>(() => wal.Sync(t2));
        Assert.Contains("must be reopened", again.Message);
        Assert.IsType<IOException>(again.InnerException);
        Assert.Equal(0UL, wal.DurableSeq);
        Assert.Equal(0, wal.Syncs);
        wal.Dispose(); // closes without another write
    }

    [Fact]
    public void ConcurrentDurableApplies_AreDurableOnReturnAndAllPresentAfterReopen()
    {
        using var dir = new TestDir();
        const int Threads = 8;
        const int PerThread = 60;
        var notDurable = 0;
        using (var e = KvEngine.Open(dir.Path))
        {
            var gc = (IKvGroupCommit)e;
            var threads = new Thread[Threads];
            for (var t = 0; t < Threads; t++)
            {
                var id = t;
                threads[t] = new Thread(() =>
                {
                    for (var i = 0; i < PerThread; i++)
                    {
                        var v = e.Apply(new WriteBatch().Put(Keys.K($"w{id}/{i:D4}"), Keys.K($"v{i}")));
                        if (gc.DurableVersion < v)
                        {
                            Interlocked.Increment(ref notDurable);
                        }
                    }
                });
            }
            foreach (var th in threads)
            {
                th.Start();
            }
            foreach (var th in threads)
            {
                th.Join();
            }
            Assert.InRange(e.Stats.WalSyncs, 1, Threads * PerThread);
        }
        Assert.Equal(0, notDurable);
        using var r = KvEngine.Open(dir.Path);
        Assert.Equal((ulong)(Threads * PerThread), r.LastAppliedIndex);
        for (var t = 0; t < Threads; t++)
        {
            for (var i = 0; i < PerThread; i++)
            {
                Assert.Equal($"v{i}", Keys.S(r.Get(Keys.K($"w{t}/{i:D4}")).Value!));
            }
        }
    }
}

/// <summary>A thread running one call, with its completion as an event (blocking on tasks is not
/// allowed in tests); a failure is rethrown by <see cref="All"/>.</summary>
internal sealed class Waiter
{
    private Exception? _error;

    public ManualResetEventSlim Done { get; } = new();

    public static Waiter Start(Action action)
    {
        var w = new Waiter();
        new Thread(() =>
        {
            try
            {
                action();
            }
            catch (Exception e)
            {
                w._error = e;
            }
            w.Done.Set();
        })
        { IsBackground = true }.Start();
        return w;
    }

    public static bool All(Waiter[] ws)
    {
        foreach (var w in ws)
        {
            if (!w.Done.Wait(TimeSpan.FromSeconds(30)))
            {
                return false;
            }
            if (w._error is { } e)
            {
                throw new InvalidOperationException("a waiter failed", e);
            }
        }
        return true;
    }
}
