using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Kdb.Sql.Catalog;
using Kdb.Sql.Execution;
using Kdb.Transactions;

namespace Kdb.Sql.Sessions;

/// <summary>
/// nextval/currval/setval for one session. Sequence values are not transactional (as in PostgreSQL): each
/// allocation is its own small commit of the sequence's record, retried on conflict, so concurrent inserters
/// never conflict with each other through a serial column. Blocks of values are cached per session (at least
/// the sequence's CACHE, 32 for serial/identity), so gaps appear across sessions exactly as PostgreSQL's cache allows.
/// </summary>
/// <remarks>
/// Expressions evaluate synchronously, but a block allocation is a commit, which on a clustered node is a Raft
/// round trip. Blocking a thread for it starves the pool and, with socket completions inline, deadlocks the very
/// thread that would deliver the answer. So a statement that can be re-run runs in a deferring attempt: a call that
/// needs the store starts the allocation, leaves it pending and throws <see cref="SequencePendingException"/>; the
/// session rolls the attempt back, awaits <see cref="CompletePendingAsync"/> and runs the statement again, with a
/// block at least twice what the failed attempt drew (so a bulk statement re-runs O(log n) times, O(n) work in all).
/// </remarks>
internal sealed class SequenceManager(SqlSession session) : ISequenceAccess
{
    private const int ImplicitCache = 32;
    private const int MaxImplicitCache = 1 << 16;
    private readonly Dictionary<uint, (long Next, long Last, long Increment)> _cached = [];
    private readonly Dictionary<uint, long> _current = [];
    private readonly Dictionary<uint, long> _blockSize = [];

    // Values the current deferring attempt drew per sequence (sizes the block its re-run gets).
    private readonly Dictionary<uint, long> _drawn = [];

    // setval writes finished while an attempt was pending: its re-run finds them here instead of writing again.
    private readonly List<(uint Id, long Value, bool Called)> _setsDone = [];
    private (SequenceDef Sequence, Task<(long First, long Last)> Work)? _pendingBlock;
    private (uint Id, long Value, bool Called, Task Work)? _pendingSet;

    // Hidden row ids are never shown, so gaps cost nothing: a session starts with a large block, and concurrent
    // inserters into a table without a primary key (pgbench_history) stop contending on the sequence's record,
    // whose every allocation is a replicated commit.
    private const int RowIdFirstBlock = 4096;

    /// <summary>True while a re-runnable statement runs: calls that need the store throw instead of blocking.</summary>
    internal bool Deferring { get; private set; }

    /// <summary>Starts an attempt of a re-runnable statement.</summary>
    internal void BeginAttempt()
    {
        Deferring = true;
        if (_drawn.Count > 0)
        {
            _drawn.Clear();
        }
    }

    /// <summary>Ends an attempt; <paramref name="statementDone"/> when the statement will not run again (it finished or failed).</summary>
    internal void EndAttempt(bool statementDone)
    {
        Deferring = false;
        if (statementDone && _setsDone.Count > 0)
        {
            // setval writes a re-run found done belong to that statement only.
            _setsDone.Clear();
        }
    }

    /// <summary>Awaits the store work the last attempt left pending and installs its result for the re-run.</summary>
    internal async ValueTask CompletePendingAsync()
    {
        if (_pendingBlock is { } block)
        {
            _pendingBlock = null;
            var (first, last) = await block.Work;
            _cached[block.Sequence.Id] = (first, last, block.Sequence.Increment);
        }

        if (_pendingSet is { } set)
        {
            _pendingSet = null;
            await set.Work;
            _setsDone.Add((set.Id, set.Value, set.Called));
        }
    }

    private static int FirstBlock(SequenceDef sequence) =>
        sequence.OwnedBy is { } owner && owner.EndsWith(".<rowid>", StringComparison.Ordinal) ? RowIdFirstBlock : ImplicitCache;

    private static SequenceDef Find(uint id, CatalogData catalog) =>
        catalog.Sequences.Find(s => s.Id == id) ?? throw new SqlException(SqlState.UndefinedTable, $"sequence with OID {id} does not exist");

    public long NextValue(uint sequenceId)
    {
        var catalog = session.CurrentCatalog();
        var sequence = Find(sequenceId, catalog);
        if (Deferring)
        {
            CollectionsMarshal.GetValueRefOrAddDefault(_drawn, sequenceId, out _)++;
        }

        if (_cached.TryGetValue(sequenceId, out var block) && (sequence.Increment > 0 ? block.Next <= block.Last : block.Next >= block.Last))
        {
            _cached[sequenceId] = (block.Next + sequence.Increment, block.Last, sequence.Increment);
            _current[sequenceId] = block.Next;
            return block.Next;
        }

        // Owned sequences (serial, identity, hidden row ids) reserve growing blocks while a session keeps
        // drawing from them, so a bulk load of a million rows costs a few dozen sequence commits, not 30,000.
        var count = Math.Max(sequence.Cache, sequence.OwnedBy is null ? 1 : _blockSize.GetValueOrDefault(sequenceId, FirstBlock(sequence)));
        if (sequence.OwnedBy is not null)
        {
            _blockSize[sequenceId] = Math.Min(count * 2, MaxImplicitCache);
        }

        if (Deferring)
        {
            count = Math.Max(count, 2 * _drawn[sequenceId]);
        }

        var allocation = AllocateAsync(sequence, count);
        var (first, last) = allocation.IsCompletedSuccessfully ? allocation.Result : Defer(sequence, allocation);
        _cached[sequenceId] = (first + sequence.Increment, last, sequence.Increment);
        _current[sequenceId] = first;
        return first;
    }

    public long CurrentValue(uint sequenceId)
    {
        var sequence = Find(sequenceId, session.CurrentCatalog());
        return _current.TryGetValue(sequenceId, out var value)
            ? value
            : throw new SqlException(SqlState.ObjectNotInPrerequisiteState, $"currval of sequence \"{sequence.Name}\" is not yet defined in this session");
    }

    public void SetValue(uint sequenceId, long value, bool called)
    {
        var sequence = Find(sequenceId, session.CurrentCatalog());
        if (value < sequence.MinValue || value > sequence.MaxValue)
        {
            throw new SqlException(SqlState.NumericValueOutOfRange, $"setval: value {value} is out of bounds for sequence \"{sequence.Name}\" ({sequence.MinValue}..{sequence.MaxValue})");
        }

        var done = _setsDone.IndexOf((sequenceId, value, called));
        if (done >= 0)
        {
            _setsDone.RemoveAt(done);
        }
        else
        {
            var write = WriteAsync(sequence, called ? value : value - sequence.Increment);
            if (!write.IsCompletedSuccessfully)
            {
                if (Deferring)
                {
                    _pendingSet = (sequenceId, value, called, write.AsTask());
                    throw new SequencePendingException();
                }

                BlockOn(write);
            }
        }

        _cached.Remove(sequenceId);
        if (called)
        {
            _current[sequenceId] = value;
        }
    }

    /// <summary>RESTART (TRUNCATE ... RESTART IDENTITY): its own commit, as setval's.</summary>
    public async ValueTask RestartAsync(uint sequenceId, CatalogData catalog, CancellationToken cancellationToken)
    {
        var sequence = Find(sequenceId, catalog);
        await WriteAsync(sequence, sequence.Start - sequence.Increment, cancellationToken);
        _cached.Remove(sequenceId);
    }

    private (long First, long Last) Defer(SequenceDef sequence, ValueTask<(long First, long Last)> allocation)
    {
        if (Deferring)
        {
            _pendingBlock = (sequence, allocation.AsTask());
            throw new SequencePendingException();
        }

        return BlockOn(allocation);
    }

    // Last resort for a caller that cannot re-run (none of the session's statement paths): wait for the store.
    private static T BlockOn<T>(ValueTask<T> task) => task.AsTask().GetAwaiter().GetResult();

    private static void BlockOn(ValueTask task) => task.AsTask().GetAwaiter().GetResult();

    /// <summary>Reserves <paramref name="count"/> values; returns the first and the last.</summary>
    private async ValueTask<(long First, long Last)> AllocateAsync(SequenceDef sequence, long count)
    {
        var store = session.Database.Store;
        var key = session.Database.CatalogStore.SequenceKey(sequence.Id);
        for (var attempt = 0; attempt < 100; attempt++)
        {
            using var snapshot = await store.OpenSnapshotAsync(CancellationToken.None);
            var stored = snapshot.Get(key).Value;
            var last = stored is null ? sequence.Start - sequence.Increment : BinaryPrimitives.ReadInt64BigEndian(stored);
            long first;
            long end;
            try
            {
                first = checked(last + sequence.Increment);
                end = checked(last + (sequence.Increment * count));
            }
            catch (OverflowException)
            {
                first = end = sequence.Increment > 0 ? long.MaxValue : long.MinValue;
            }

            if (sequence.Increment > 0 ? first > sequence.MaxValue : first < sequence.MinValue)
            {
                if (!sequence.Cycle)
                {
                    throw new SqlException("2200H", $"nextval: reached {(sequence.Increment > 0 ? "maximum" : "minimum")} value of sequence \"{sequence.Name}\" ({(sequence.Increment > 0 ? sequence.MaxValue : sequence.MinValue)})");
                }

                first = sequence.Increment > 0 ? sequence.MinValue : sequence.MaxValue;
                end = first;
            }

            end = sequence.Increment > 0 ? Math.Min(end, sequence.MaxValue) : Math.Max(end, sequence.MinValue);
            var value = new byte[8];
            BinaryPrimitives.WriteInt64BigEndian(value, end);
            var record = new CommitRecord(session.Database.Tenant, snapshot.Version, [key], [], [TxWrite.Put(key, value)]);
            var outcome = await store.CommitAsync(record, CancellationToken.None);
            if (outcome.Validation.IsValid)
            {
                return (first, end);
            }
        }

        throw new SqlException(SqlState.SerializationFailure, $"could not allocate a value of sequence \"{sequence.Name}\" under contention");
    }

    private async ValueTask WriteAsync(SequenceDef sequence, long last, CancellationToken cancellationToken = default)
    {
        var store = session.Database.Store;
        var key = session.Database.CatalogStore.SequenceKey(sequence.Id);
        for (var attempt = 0; attempt < 100; attempt++)
        {
            using var snapshot = await store.OpenSnapshotAsync(cancellationToken);
            var value = new byte[8];
            BinaryPrimitives.WriteInt64BigEndian(value, last);
            var record = new CommitRecord(session.Database.Tenant, snapshot.Version, [key], [], [TxWrite.Put(key, value)]);
            if ((await store.CommitAsync(record, cancellationToken)).Validation.IsValid)
            {
                return;
            }
        }

        throw new SqlException(SqlState.SerializationFailure, $"could not set sequence \"{sequence.Name}\" under contention");
    }
}

/// <summary>A deferring attempt needs a sequence commit: the session rolls the attempt back, awaits it, and re-runs.</summary>
internal sealed class SequencePendingException() : Exception("a sequence allocation is pending");
