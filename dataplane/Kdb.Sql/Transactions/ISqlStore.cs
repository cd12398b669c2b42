using Kdb.Storage;
using Kdb.Transactions;

namespace Kdb.Sql.Transactions;

/// <summary>The outcome of committing a record: its verdict and, when valid, the version its writes got.</summary>
public readonly record struct CommitOutcome(CommitValidation Validation, ulong Version);

/// <summary>
/// What the SQL engine needs from the layer below: consistent read views and a committer for commit records
/// (DESIGN, "Keys, versions and transactions"). In-process it validates and applies on the engine; in the
/// node it proposes the record to the shard group's Raft log and reads after ReadIndex.
/// </summary>
public interface ISqlStore
{
    /// <summary>A snapshot that reflects every commit acknowledged before the call (linearizable).</summary>
    ValueTask<IKvSnapshot> OpenSnapshotAsync(CancellationToken cancellationToken);

    /// <summary>Validates and, when valid, applies the record atomically. Never throws for a conflict: the verdict says so.</summary>
    ValueTask<CommitOutcome> CommitAsync(CommitRecord record, CancellationToken cancellationToken);
}

/// <summary>
/// An in-process store over one engine: validation and apply under one lock, as a Raft apply loop would do them.
/// Durability is waited for after the lock is released (when the engine offers <see cref="IKvGroupCommit"/>): one
/// flusher at a time fsyncs everything applied so far while later committers queue behind it, so concurrent commits
/// share an fsync and no thread but the flusher blocks on the disk. The choice: a commit is acknowledged only once
/// durable, but other transactions may read it during the fsync. A writer that read it commits after it in the WAL,
/// so no acknowledged commit can depend on a lost write; a read-only transaction may have seen one that a crash loses.
/// </summary>
public sealed class LocalSqlStore : ISqlStore, IVersionSource, ISqlLockingStore
{
    private readonly IKvEngine _engine;
    private readonly IKvGroupCommit? _groupCommit;
    private readonly Lock _commitLock = new();
    private readonly Lock _durableLock = new();
    private List<(ulong Version, TaskCompletionSource Done)> _waiting = [];
    private List<(ulong Version, TaskCompletionSource Done)> _flushingBatch = [];
    private bool _flusherRunning;

    public LocalSqlStore(IKvEngine engine)
    {
        _engine = engine;
        _groupCommit = engine as IKvGroupCommit;
    }

    /// <summary>The engine this store commits to.</summary>
    public IKvEngine Engine => _engine;

    /// <summary>The GC threshold commit records are validated against (the engine's compaction threshold).</summary>
    public ulong GcThreshold { get; private set; }

    /// <summary>Raises the GC threshold: compaction may then drop tombstones at or below it, and older snapshots can no longer commit.</summary>
    public void SetGcThreshold(ulong threshold)
    {
        lock (_commitLock)
        {
            if (threshold > GcThreshold)
            {
                GcThreshold = threshold;
                _engine.SetGcThreshold(threshold);
            }
        }
    }

    public ValueTask<IKvSnapshot> OpenSnapshotAsync(CancellationToken cancellationToken) => ValueTask.FromResult(_engine.OpenSnapshot());

    public ValueTask<CommitOutcome> CommitAsync(CommitRecord record, CancellationToken cancellationToken)
    {
        var batch = new WriteBatch();
        foreach (var write in record.Writes)
        {
            switch (write.Kind)
            {
                case WriteKind.Put:
                    batch.Put(write.Key.Span, write.ValueOrEnd.Span);
                    break;
                case WriteKind.Delete:
                    batch.Delete(write.Key.Span);
                    break;
                case WriteKind.DeleteRange:
                    batch.DeleteRange(write.Key.Span, write.ValueOrEnd.Span);
                    break;
            }
        }

        CommitValidation validation;
        ulong applied;
        lock (_commitLock)
        {
            var version = _engine.LastAppliedIndex + 1;
            validation = CommitValidator.Validate(record, this, version, GcThreshold);
            if (!validation.IsValid)
            {
                return ValueTask.FromResult(new CommitOutcome(validation, 0));
            }

            if (batch.Count == 0)
            {
                return ValueTask.FromResult(new CommitOutcome(validation, _engine.LastAppliedIndex));
            }

            applied = _groupCommit is { } deferred ? deferred.ApplyWithoutWaiting(batch, version) : _engine.Apply(batch, version);
        }

        var outcome = new CommitOutcome(validation, applied);
        return _groupCommit is null || _groupCommit.DurableVersion >= applied
            ? ValueTask.FromResult(outcome)
            : WaitDurableAsync(outcome);
    }

    private async ValueTask<CommitOutcome> WaitDurableAsync(CommitOutcome outcome)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        bool startFlusher;
        lock (_durableLock)
        {
            _waiting.Add((outcome.Version, done));
            startFlusher = !_flusherRunning;
            _flusherRunning = true;
        }

        if (startFlusher)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static store => store.FlushLoop(), this, preferLocal: false);
        }

        await done.Task.ConfigureAwait(false);
        return outcome;
    }

    /// <summary>Fsyncs for everyone waiting, round after round, until nobody waits; commits arriving meanwhile form the next round.</summary>
    private void FlushLoop()
    {
        while (true)
        {
            List<(ulong Version, TaskCompletionSource Done)> round;
            lock (_durableLock)
            {
                if (_waiting.Count == 0)
                {
                    _flusherRunning = false;
                    return;
                }

                round = _waiting;
                _waiting = _flushingBatch;
                _flushingBatch = round;
            }

            var target = 0UL;
            foreach (var (version, _) in round)
            {
                target = Math.Max(target, version);
            }

            Exception? failure = null;
            try
            {
                _groupCommit!.WaitDurable(target);
            }
            catch (Exception e)
            {
                // Handed to every committer of the round: none of them may be acknowledged.
                failure = e;
            }

            foreach (var (_, done) in round)
            {
                if (failure is null)
                {
                    done.TrySetResult();
                }
                else
                {
                    done.TrySetException(failure);
                }
            }

            round.Clear();
        }
    }

    /// <summary>The newest version the engine has applied for <paramref name="key"/>.</summary>
    public ulong NewestAppliedVersion(ReadOnlySpan<byte> key) => _engine.NewestVersion(key);

    ulong IVersionSource.NewestVersion(ReadOnlySpan<byte> key) => _engine.NewestVersion(key);

    ulong IVersionSource.NewestVersionInRange(ReadOnlySpan<byte> start, ReadOnlySpan<byte> end) =>
        _engine.NewestVersionInRange(start.ToArray(), end.IsEmpty ? null : end.ToArray());
}
