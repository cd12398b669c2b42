using Kdb.Sql.Transactions;
using Kdb.Storage;
using Kdb.Transactions;

namespace Kdb.Sql.Sessions;

/// <summary>
/// Row locks and read refresh (docs/sql.md, "Locking"): a write whose key another transaction locked undoes its
/// statement, waits for the lock, moves the transaction's snapshot forward if its earlier reads are still true there,
/// and runs the statement again — so writers of a hot row queue instead of failing with 40001 at commit.
/// </summary>
public sealed partial class SqlSession
{
    /// <summary>
    /// Waits for the lock <paramref name="pending"/> names (none when it only found a newer version), then refreshes
    /// the transaction's reads to a new snapshot: 40001 now when a read made before this statement has changed.
    /// </summary>
    private async ValueTask WaitAndRefreshAsync(LockPendingException pending, AttemptMark mark, CancellationToken cancellationToken)
    {
        var txn = _txn!;
        var epoch = txn.Epoch;
        using var timeout = StatementTimeout(cancellationToken, out var token);
        try
        {
            if (pending.Key is { } key)
            {
                await _locker!.WaitAsync(key, LockTimeoutMs(), token);
            }

            if (txn.Epoch != epoch)
            {
                throw Canceled(null, this);
            }

            // A scan an earlier statement left open (a cursor) reads the old snapshot: its reads cannot move forward.
            if (mark.ActiveScans > 0)
            {
                throw RefreshFailed("could not serialize access: an open cursor reads the transaction's snapshot");
            }

            var snapshot = await Database.Store.OpenSnapshotAsync(token);
            if (txn.Epoch != epoch)
            {
                snapshot.Dispose();
                throw Canceled(null, this);
            }

            var validation = ValidateReads(txn, snapshot);
            if (!validation.IsValid)
            {
                snapshot.Dispose();
                throw RefreshFailed(validation.Message);
            }

            txn.AdvanceSnapshot(snapshot);
        }
        catch (OperationCanceledException)
        {
            throw Canceled(timeout, this);
        }
        catch (ObjectDisposedException)
        {
            throw Canceled(null, this);
        }
    }

    /// <summary>
    /// Exactly the check commit validation will make, run now against <paramref name="snapshot"/>: nothing read (and
    /// not the catalog) has a version above the read version up to the snapshot's version.
    /// </summary>
    private CommitValidation ValidateReads(SqlTransaction txn, IKvSnapshot snapshot)
    {
        var reads = txn.BuildReadRecord(Database.CatalogStore.CatalogKey);
        var store = _locker!.Store;
        return CommitValidator.Validate(reads, new SnapshotVersions(snapshot), snapshot.Version + 1, store.GcThreshold);
    }

    private static SqlException RefreshFailed(string message) =>
        new(SqlState.SerializationFailure, message, detail: "A row this statement writes changed after the transaction's snapshot (or was locked until such a change committed), and the transaction's earlier reads could not move forward to see it.", hint: "The transaction might succeed if retried.");

    private int LockTimeoutMs() => SessionState.ParseMilliseconds(State.Get("lock_timeout") ?? "0", "lock_timeout");

    /// <summary>Where a statement attempt started: its writes, its reads, and the scans earlier statements left open.</summary>
    private readonly record struct AttemptMark(int Undo, ReadMark Reads, int ActiveScans);

    /// <summary>Newest versions as a snapshot sees them: validation up to the snapshot's version, no further.</summary>
    private sealed class SnapshotVersions(IKvSnapshot snapshot) : IVersionSource
    {
        public ulong NewestVersion(ReadOnlySpan<byte> key) => snapshot.NewestVersion(key);

        public ulong NewestVersionInRange(ReadOnlySpan<byte> start, ReadOnlySpan<byte> end) =>
            snapshot.NewestVersionInRange(start.ToArray(), end.IsEmpty ? null : end.ToArray());
    }
}
