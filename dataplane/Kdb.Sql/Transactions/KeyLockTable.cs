namespace Kdb.Sql.Transactions;

/// <summary>
/// What row locks need from a store: the newest version this node has applied for a key (to see that a key about to
/// be written changed after the transaction's snapshot) and the GC threshold (a read refresh across compacted
/// tombstones would miss conflicts). A store without it runs transactions purely optimistically.
/// </summary>
public interface ISqlLockingStore
{
    /// <summary>The newest version of <paramref name="key"/> applied on this node (0: never written).</summary>
    ulong NewestAppliedVersion(ReadOnlySpan<byte> key);

    /// <summary>The GC threshold commit records are validated against now.</summary>
    ulong GcThreshold { get; }
}

/// <summary>
/// Thrown by a write whose key another transaction has locked (<see cref="Key"/> set), or whose key changed after the
/// transaction's snapshot (<see cref="Key"/> null): the session undoes the statement, waits for the lock, refreshes
/// the transaction's snapshot and runs the statement again.
/// </summary>
internal sealed class LockPendingException(byte[]? key) : Exception("a row lock is pending")
{
    public byte[]? Key { get; } = key;
}

/// <summary>
/// Exclusive write locks of one database on the node that runs its read-write transactions (the group leader, or the
/// standalone server), keyed by full storage key. Locks only order writers of a hot row so that they queue instead of
/// failing with 40001; commit validation still decides every commit, so locks vanishing with a leader change, or a
/// transaction that took none (bounds reached, COPY, DDL), cost retries but never correctness.
/// </summary>
internal sealed class KeyLockTable
{
    /// <summary>Keys one transaction locks at most; beyond it the rest of its writes are optimistic only.</summary>
    internal const int MaxLocksPerTransaction = 4096;

    /// <summary>Keys locked at once in the database at most (bounds memory); beyond it writes take no lock.</summary>
    internal const int MaxLocks = 1 << 16;

    private const int MaxPooledEntries = 256;

    private readonly Lock _gate = new();
    private readonly Dictionary<byte[], LockEntry> _entries = new(ByteArrayComparer.Instance);
    private readonly Stack<LockEntry> _free = new();

    /// <summary>Keys locked now (tests and diagnostics).</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>Transactions waiting for a lock now (tests and diagnostics).</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    internal Lock Gate => _gate;

    private int _waiting;

    /// <summary>Under <see cref="Gate"/>: one more or one fewer waiter.</summary>
    internal void CountWaiter(int delta) => _waiting += delta;

    /// <summary>Under <see cref="Gate"/>: locks a free key for <paramref name="locker"/>; the holder when it is taken; null when untracked.</summary>
    internal LockResult TryAcquireLocked(KeyLocker locker, byte[] key)
    {
        if (_entries.TryGetValue(key, out var entry))
        {
            return ReferenceEquals(entry.Holder, locker) ? LockResult.Acquired : LockResult.Busy;
        }

        if (_entries.Count >= MaxLocks)
        {
            return LockResult.Untracked;
        }

        entry = _free.TryPop(out var pooled) ? pooled : new LockEntry();
        entry.Key = key;
        entry.Holder = locker;
        _entries.Add(key, entry);
        return LockResult.Acquired;
    }

    /// <summary>Under <see cref="Gate"/>: the entry of a locked key, or null.</summary>
    internal LockEntry? FindLocked(byte[] key) => _entries.GetValueOrDefault(key);

    /// <summary>Under <see cref="Gate"/>: hands <paramref name="key"/> to its first waiter, or frees it.</summary>
    internal void ReleaseLocked(byte[] key)
    {
        if (!_entries.TryGetValue(key, out var entry))
        {
            return;
        }

        while (entry.Waiters.TryDequeue(out var waiter))
        {
            if (waiter.Granted.Task.IsCompleted)
            {
                continue;
            }

            entry.Holder = waiter.Locker;
            _waiting--;
            waiter.Locker.GrantLocked(entry);
            waiter.Granted.TrySetResult();
            return;
        }

        _entries.Remove(key);
        entry.Holder = null;
        entry.Key = [];
        if (_free.Count < MaxPooledEntries)
        {
            _free.Push(entry);
        }
    }

    internal enum LockResult
    {
        Acquired,
        Busy,
        Untracked,
    }

    internal sealed class LockEntry
    {
        public byte[] Key { get; set; } = [];

        public KeyLocker? Holder { get; set; }

        public Queue<Waiter> Waiters { get; } = new();
    }

    internal sealed record Waiter(KeyLocker Locker, TaskCompletionSource Granted);
}

/// <summary>
/// One session's side of the lock table: the keys its current transaction holds and the one lock it waits for (the
/// edge deadlock detection follows). Reused by the session's transactions; released when each ends.
/// </summary>
internal sealed class KeyLocker(KeyLockTable table, ISqlLockingStore store)
{
    private const string DeadlockDetected = "40P01";
    private const string LockNotAvailable = "55P03";

    // Written by another session's release only while this one waits (the grant), and always under the gate.
    private readonly HashSet<byte[]> _held = new(ByteArrayComparer.Instance);
    private KeyLockTable.LockEntry? _waitingOn;
    private KeyLockTable.Waiter? _waiter;
    private bool _full;
    private bool _closed;

    public int HeldCount => _held.Count;

    public ISqlLockingStore Store => store;

    /// <summary>
    /// Locks <paramref name="key"/> before the transaction writes it. Throws <see cref="LockPendingException"/> when
    /// another transaction holds it, or when this takes it and finds a version newer than <paramref name="readVersion"/>
    /// (the statement would read stale data and fail at commit: refresh first).
    /// </summary>
    public void Lock(byte[] key, ulong readVersion)
    {
        if (_full || _held.Contains(key))
        {
            return;
        }

        if (_held.Count >= KeyLockTable.MaxLocksPerTransaction || _closed)
        {
            _full = true;
            return;
        }

        KeyLockTable.LockResult result;
        lock (table.Gate)
        {
            result = table.TryAcquireLocked(this, key);
            if (result == KeyLockTable.LockResult.Acquired)
            {
                _held.Add(key);
            }
        }

        if (result == KeyLockTable.LockResult.Busy)
        {
            throw new LockPendingException(key);
        }

        if (result == KeyLockTable.LockResult.Acquired && store.NewestAppliedVersion(key) > readVersion)
        {
            throw new LockPendingException(null);
        }
    }

    /// <summary>
    /// Waits until <paramref name="key"/> is this transaction's (FIFO behind earlier waiters). 40P01 when waiting would
    /// close a cycle of waits, 55P03 after <paramref name="timeoutMs"/> (0: no limit); cancelable.
    /// </summary>
    public async ValueTask WaitAsync(byte[] key, int timeoutMs, CancellationToken cancellationToken)
    {
        KeyLockTable.Waiter waiter;
        lock (table.Gate)
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            var entry = table.FindLocked(key);
            if (entry is null)
            {
                if (table.TryAcquireLocked(this, key) == KeyLockTable.LockResult.Acquired)
                {
                    _held.Add(key);
                }

                return;
            }

            if (ReferenceEquals(entry.Holder, this))
            {
                return;
            }

            // Waits never form a cycle (each is checked before it starts), so this walk ends; the bound is a guard.
            var steps = 0;
            for (var holder = entry.Holder; holder is not null && steps < 100_000; holder = holder._waitingOn?.Holder, steps++)
            {
                if (ReferenceEquals(holder, this))
                {
                    throw new SqlException(DeadlockDetected, "deadlock detected", detail: "The transaction waited for a row lock held by a transaction that waits, directly or not, for one this transaction holds.", hint: "Retry the transaction; writing rows in the same order in every transaction avoids deadlocks.");
                }
            }

            waiter = new KeyLockTable.Waiter(this, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            entry.Waiters.Enqueue(waiter);
            table.CountWaiter(1);
            _waitingOn = entry;
            _waiter = waiter;
        }

        try
        {
            var granted = waiter.Granted.Task;
            await (timeoutMs > 0 ? granted.WaitAsync(TimeSpan.FromMilliseconds(timeoutMs), cancellationToken) : granted.WaitAsync(cancellationToken)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            if (Abandon(waiter))
            {
                throw new SqlException(LockNotAvailable, "canceling statement due to lock timeout", detail: "A row it writes stayed locked by another transaction longer than lock_timeout.");
            }
        }
        catch (OperationCanceledException)
        {
            Abandon(waiter);
            throw;
        }
    }

    /// <summary>Stops waiting; false when the lock was granted meanwhile (it is then held like any other).</summary>
    private bool Abandon(KeyLockTable.Waiter waiter)
    {
        lock (table.Gate)
        {
            if (!ReferenceEquals(_waiter, waiter))
            {
                return false;
            }

            if (_waitingOn is { } entry)
            {
                var count = entry.Waiters.Count;
                for (var i = 0; i < count; i++)
                {
                    var queued = entry.Waiters.Dequeue();
                    if (!ReferenceEquals(queued, waiter))
                    {
                        entry.Waiters.Enqueue(queued);
                    }
                }
            }

            _waitingOn = null;
            _waiter = null;
            table.CountWaiter(-1);
            waiter.Granted.TrySetCanceled();
            return true;
        }
    }

    /// <summary>Under the table's gate: <paramref name="entry"/> was handed to this waiter.</summary>
    internal void GrantLocked(KeyLockTable.LockEntry entry)
    {
        _held.Add(entry.Key);
        _waitingOn = null;
        _waiter = null;
    }

    /// <summary>Releases every lock the transaction holds (its commit was decided, or it rolled back).</summary>
    public void ReleaseAll()
    {
        _full = false;
        if (_held.Count == 0)
        {
            return;
        }

        lock (table.Gate)
        {
            foreach (var key in _held)
            {
                table.ReleaseLocked(key);
            }

            _held.Clear();
        }
    }

    /// <summary>The session ends: a wait in progress fails, the locks are released and no lock is taken again.</summary>
    public void Close()
    {
        // The waiting statement sees its wait canceled (57014).
        if (_waiter is { } waiter)
        {
            Abandon(waiter);
        }

        _closed = true;
        ReleaseAll();
    }
}
