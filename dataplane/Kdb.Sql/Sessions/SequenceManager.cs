using System.Buffers.Binary;
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
internal sealed class SequenceManager(SqlSession session) : ISequenceAccess
{
    private const int ImplicitCache = 32;
    private const int MaxImplicitCache = 1 << 16;
    private readonly Dictionary<uint, (long Next, long Last, long Increment)> _cached = [];
    private readonly Dictionary<uint, long> _current = [];
    private readonly Dictionary<uint, long> _blockSize = [];

    // Hidden row ids are never shown, so gaps cost nothing: a session starts with a large block, and concurrent
    // inserters into a table without a primary key (pgbench_history) stop contending on the sequence's record,
    // whose every allocation is a replicated commit.
    private const int RowIdFirstBlock = 4096;

    private static int FirstBlock(SequenceDef sequence) =>
        sequence.OwnedBy is { } owner && owner.EndsWith(".<rowid>", StringComparison.Ordinal) ? RowIdFirstBlock : ImplicitCache;

    private SequenceDef Find(uint id, CatalogData catalog) =>
        catalog.Sequences.Find(s => s.Id == id) ?? throw new SqlException(SqlState.UndefinedTable, $"sequence with OID {id} does not exist");

    public long NextValue(uint sequenceId)
    {
        var catalog = session.CurrentCatalog();
        var sequence = Find(sequenceId, catalog);
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

        var (first, last) = Allocate(sequence, count);
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

        Write(sequence, called ? value : value - sequence.Increment);
        _cached.Remove(sequenceId);
        if (called)
        {
            _current[sequenceId] = value;
        }
    }

    public void Restart(uint sequenceId, CatalogData catalog)
    {
        var sequence = Find(sequenceId, catalog);
        Write(sequence, sequence.Start - sequence.Increment);
        _cached.Remove(sequenceId);
    }

    /// <summary>Reserves <paramref name="count"/> values; returns the first and the last.</summary>
    private (long First, long Last) Allocate(SequenceDef sequence, long count)
    {
        var key = session.Database.CatalogStore.SequenceKey(sequence.Id);
        for (var attempt = 0; attempt < 100; attempt++)
        {
            using var snapshot = Wait(session.Database.Store.OpenSnapshotAsync(CancellationToken.None));
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
            var outcome = Wait(session.Database.Store.CommitAsync(record, CancellationToken.None));
            if (outcome.Validation.IsValid)
            {
                return (first, end);
            }
        }

        throw new SqlException(SqlState.SerializationFailure, $"could not allocate a value of sequence \"{sequence.Name}\" under contention");
    }

    private void Write(SequenceDef sequence, long last)
    {
        var key = session.Database.CatalogStore.SequenceKey(sequence.Id);
        for (var attempt = 0; attempt < 100; attempt++)
        {
            using var snapshot = Wait(session.Database.Store.OpenSnapshotAsync(CancellationToken.None));
            var value = new byte[8];
            BinaryPrimitives.WriteInt64BigEndian(value, last);
            var record = new CommitRecord(session.Database.Tenant, snapshot.Version, [key], [], [TxWrite.Put(key, value)]);
            if (Wait(session.Database.Store.CommitAsync(record, CancellationToken.None)).Validation.IsValid)
            {
                return;
            }
        }

        throw new SqlException(SqlState.SerializationFailure, $"could not set sequence \"{sequence.Name}\" under contention");
    }

    // Sequence calls happen inside expression evaluation, which is synchronous; the in-process store completes
    // synchronously, and a replicated store's commit is awaited here (documented in docs/sql.md).
    private static T Wait<T>(ValueTask<T> task) => task.IsCompletedSuccessfully ? task.Result : task.AsTask().GetAwaiter().GetResult();
}
