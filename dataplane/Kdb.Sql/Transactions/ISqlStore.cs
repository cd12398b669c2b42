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

/// <summary>An in-process store over one engine: validation and apply under one lock, as a Raft apply loop would do them.</summary>
public sealed class LocalSqlStore : ISqlStore, IVersionSource
{
    private readonly IKvEngine _engine;
    private readonly Lock _commitLock = new();

    public LocalSqlStore(IKvEngine engine) => _engine = engine;

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

        lock (_commitLock)
        {
            var version = _engine.LastAppliedIndex + 1;
            var validation = CommitValidator.Validate(record, this, version, GcThreshold);
            if (!validation.IsValid)
            {
                return ValueTask.FromResult(new CommitOutcome(validation, 0));
            }

            var applied = batch.Count == 0 ? _engine.LastAppliedIndex : _engine.Apply(batch, version);
            return ValueTask.FromResult(new CommitOutcome(validation, applied));
        }
    }

    ulong IVersionSource.NewestVersion(ReadOnlySpan<byte> key) => _engine.NewestVersion(key);

    ulong IVersionSource.NewestVersionInRange(ReadOnlySpan<byte> start, ReadOnlySpan<byte> end) =>
        _engine.NewestVersionInRange(start.ToArray(), end.IsEmpty ? null : end.ToArray());
}
