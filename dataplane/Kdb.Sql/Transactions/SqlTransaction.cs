using Kdb.Storage;
using Kdb.Transactions;

namespace Kdb.Sql.Transactions;

/// <summary>Orders byte-array keys as the storage engine does (unsigned lexicographic).</summary>
internal sealed class ByteArrayComparer : IComparer<byte[]>, IEqualityComparer<byte[]>
{
    public static readonly ByteArrayComparer Instance = new();

    public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);

    public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

    public int GetHashCode(byte[] obj)
    {
        var hash = new HashCode();
        hash.AddBytes(obj);
        return hash.ToHashCode();
    }
}

/// <summary>
/// One optimistic transaction: reads at a snapshot (recording what it read), buffers its writes, and at
/// commit hands the commit record to the store. Reads see the transaction's own writes. Savepoints undo
/// part of the write buffer; reads stay in the read set (conservative, never wrong).
/// </summary>
internal sealed class SqlTransaction : IDisposable
{
    // Created on first use: most transactions are a single read.
    private SortedDictionary<byte[], byte[]?>? _writesStore;
    private List<(byte[] Start, byte[] End)>? _rangeDeletesStore;
    private List<UndoEntry>? _undoStore;
    private List<byte[]>? _pointReads;
    private List<KeyRange>? _rangeReads;
    private long _writeBytes;

    private static readonly SortedDictionary<byte[], byte[]?> NoWrites = new(ByteArrayComparer.Instance);
    private static readonly List<(byte[] Start, byte[] End)> NoRangeDeletes = [];

    private SortedDictionary<byte[], byte[]?> Writes => _writesStore ?? NoWrites;

    private List<(byte[] Start, byte[] End)> RangeDeletes => _rangeDeletesStore ?? NoRangeDeletes;

    private List<UndoEntry> Undo => _undoStore ??= [];

    public SqlTransaction(ulong tenant, IKvSnapshot snapshot)
    {
        Tenant = tenant;
        Snapshot = snapshot;
    }

    public ulong Tenant { get; }

    public IKvSnapshot Snapshot { get; }

    public ulong ReadVersion => Snapshot.Version;

    public bool HasWrites => _writesStore is { Count: > 0 } || _rangeDeletesStore is { Count: > 0 };

    /// <summary>Approximate bytes of buffered writes (for the statement memory limit and staging).</summary>
    public long WriteBytes => _writeBytes;

    public int UndoMark => _undoStore?.Count ?? 0;

    /// <summary>Reads a key (own writes first), recording it in the read set.</summary>
    public byte[]? Get(byte[] key)
    {
        if (Writes.TryGetValue(key, out var own))
        {
            return own;
        }

        RecordPointRead(key);
        if (IsRangeDeleted(key))
        {
            return null;
        }

        var result = Snapshot.Get(key);
        return result.Value;
    }

    /// <summary>Reads a key without recording it (catalog and sequence reads that validate elsewhere).</summary>
    public byte[]? GetUntracked(byte[] key)
    {
        if (Writes.TryGetValue(key, out var own))
        {
            return own;
        }

        return IsRangeDeleted(key) ? null : Snapshot.Get(key).Value;
    }

    public void RecordPointRead(byte[] key)
    {
        // Duplicates are removed when the commit record is built: most transactions never commit a read set.
        (_pointReads ??= []).Add(key);
    }

    public void RecordRangeRead(byte[] start, byte[] end) => (_rangeReads ??= []).Add(new KeyRange(start, end));

    private bool IsRangeDeleted(ReadOnlySpan<byte> key)
    {
        foreach (var (start, end) in RangeDeletes)
        {
            if (key.SequenceCompareTo(start) >= 0 && key.SequenceCompareTo(end) < 0)
            {
                return true;
            }
        }

        return false;
    }

    public void Put(byte[] key, byte[] value)
    {
        if (key.Length > CommitLimits.MaxKeyBytes)
        {
            throw new SqlException(SqlState.ProgramLimitExceeded, $"index row size {key.Length} exceeds maximum {CommitLimits.MaxKeyBytes} for a key", hint: "Values larger than the maximum key size cannot be indexed or be part of a primary key.");
        }

        if (value.Length > CommitLimits.MaxValueBytes)
        {
            throw new SqlException(SqlState.ProgramLimitExceeded, $"row is too big: size {value.Length}, maximum size {CommitLimits.MaxValueBytes}");
        }

        SetWrite(key, value);
    }

    public void Delete(byte[] key) => SetWrite(key, null);

    /// <summary>Largest write set of one transaction (rows, index entries and keys together): beyond it 54000.</summary>
    public const long MaxTransactionBytes = 2L << 30;

    private void SetWrite(byte[] key, byte[]? value)
    {
        if (_writeBytes > MaxTransactionBytes)
        {
            throw new SqlException(SqlState.ProgramLimitExceeded, "transaction is too large", detail: $"Its writes exceed {MaxTransactionBytes >> 20} MB.", hint: "Split the work into several transactions.");
        }

        _writesStore ??= new SortedDictionary<byte[], byte[]?>(ByteArrayComparer.Instance);
        var existed = _writesStore.TryGetValue(key, out var previous);
        Undo.Add(new UndoEntry(key, existed, previous, null));
        _writesStore[key] = value;
        _writeBytes += key.Length + (value?.Length ?? 0) + 16;
    }

    /// <summary>Deletes [start, end) with one range tombstone (DROP TABLE, TRUNCATE).</summary>
    public void DeleteRange(byte[] start, byte[] end)
    {
        var removed = new List<KeyValuePair<byte[], byte[]?>>();
        foreach (var pair in Writes)
        {
            if (ByteArrayComparer.Instance.Compare(pair.Key, start) >= 0 && ByteArrayComparer.Instance.Compare(pair.Key, end) < 0)
            {
                removed.Add(pair);
            }
        }

        foreach (var pair in removed)
        {
            _writesStore!.Remove(pair.Key);
        }

        (_rangeDeletesStore ??= []).Add((start, end));
        Undo.Add(new UndoEntry(start, false, null, removed));
        _writeBytes += start.Length + end.Length + 16;
    }

    /// <summary>Undoes every write made after <paramref name="mark"/> (ROLLBACK TO SAVEPOINT, failed statement).</summary>
    public void RollbackTo(int mark)
    {
        for (var i = Undo.Count - 1; i >= mark; i--)
        {
            var entry = Undo[i];
            var writes = _writesStore ??= new SortedDictionary<byte[], byte[]?>(ByteArrayComparer.Instance);
            if (entry.RangeRemoved is not null)
            {
                _rangeDeletesStore!.RemoveAt(_rangeDeletesStore.Count - 1);
                foreach (var pair in entry.RangeRemoved)
                {
                    writes[pair.Key] = pair.Value;
                }
            }
            else if (entry.Existed)
            {
                writes[entry.Key] = entry.Previous;
            }
            else
            {
                writes.Remove(entry.Key);
            }
        }

        Undo.RemoveRange(mark, Undo.Count - mark);
    }

    /// <summary>
    /// Ordered scan of [start, end) merging the snapshot with own writes. The read range is recorded when the
    /// scan ends: only up to the last key returned when the consumer stopped early (LIMIT), so a short scan
    /// does not conflict with writes beyond what it saw.
    /// </summary>
    public IEnumerable<KeyValuePair<byte[], byte[]>> Scan(byte[] start, byte[] end, bool reverse)
    {
        byte[]? lastKey = null;
        var completed = false;
        try
        {
            using var snapshotEnumerator = Snapshot.Scan(start, end, 0, reverse).GetEnumerator();
            using var ownEnumerator = OwnWrites(start, end, reverse).GetEnumerator();
            var hasSnap = MoveSnapshot(snapshotEnumerator);
            var hasOwn = ownEnumerator.MoveNext();
            while (hasSnap || hasOwn)
            {
                int order;
                if (!hasSnap)
                {
                    order = 1;
                }
                else if (!hasOwn)
                {
                    order = -1;
                }
                else
                {
                    order = ByteArrayComparer.Instance.Compare(snapshotEnumerator.Current.Key, ownEnumerator.Current.Key);
                    if (reverse)
                    {
                        order = -order;
                    }
                }

                if (order < 0)
                {
                    var entry = snapshotEnumerator.Current;
                    hasSnap = MoveSnapshot(snapshotEnumerator);
                    lastKey = entry.Key;
                    yield return new KeyValuePair<byte[], byte[]>(entry.Key, entry.Value);
                }
                else
                {
                    var own = ownEnumerator.Current;
                    if (order == 0)
                    {
                        hasSnap = MoveSnapshot(snapshotEnumerator);
                    }

                    hasOwn = ownEnumerator.MoveNext();
                    if (own.Value is not null)
                    {
                        lastKey = own.Key;
                        yield return new KeyValuePair<byte[], byte[]>(own.Key, own.Value);
                    }
                }
            }

            completed = true;
        }
        finally
        {
            if (completed || lastKey is null)
            {
                RecordRangeRead(start, end);
            }
            else if (reverse)
            {
                RecordRangeRead(lastKey, end);
            }
            else
            {
                RecordRangeRead(start, Successor(lastKey));
            }
        }
    }

    private bool MoveSnapshot(IEnumerator<KvEntry> enumerator)
    {
        while (enumerator.MoveNext())
        {
            if (Writes.ContainsKey(enumerator.Current.Key) || !IsRangeDeleted(enumerator.Current.Key))
            {
                return true;
            }
        }

        return false;
    }

    private IEnumerable<KeyValuePair<byte[], byte[]?>> OwnWrites(byte[] start, byte[] end, bool reverse)
    {
        if (Writes.Count == 0)
        {
            yield break;
        }

        // SortedDictionary has no range view; the write buffer is small for the transactions that scan it.
        var list = new List<KeyValuePair<byte[], byte[]?>>();
        foreach (var pair in Writes)
        {
            if (ByteArrayComparer.Instance.Compare(pair.Key, start) >= 0 && ByteArrayComparer.Instance.Compare(pair.Key, end) < 0)
            {
                list.Add(pair);
            }
        }

        if (reverse)
        {
            list.Reverse();
        }

        foreach (var pair in list)
        {
            yield return pair;
        }
    }

    private static byte[] Successor(byte[] key)
    {
        var next = new byte[key.Length + 1];
        key.CopyTo(next, 0);
        return next;
    }

    /// <summary>The commit record of this transaction (range deletes first: later puts in the range must survive).</summary>
    public CommitRecord BuildCommitRecord()
    {
        var writes = new List<TxWrite>(Writes.Count + RangeDeletes.Count);
        foreach (var (start, end) in RangeDeletes)
        {
            writes.Add(TxWrite.DeleteRange(start, end));
        }

        foreach (var pair in Writes)
        {
            writes.Add(pair.Value is null ? TxWrite.Delete(pair.Key) : TxWrite.Put(pair.Key, pair.Value));
        }

        var pointReads = new List<ReadOnlyMemory<byte>>(_pointReads?.Count ?? 0);
        if (_pointReads is not null)
        {
            var seen = new HashSet<byte[]>(ByteArrayComparer.Instance);
            foreach (var key in _pointReads)
            {
                if (seen.Add(key))
                {
                    pointReads.Add(key);
                }
            }
        }

        return new CommitRecord(Tenant, ReadVersion, pointReads, (IReadOnlyList<KeyRange>?)_rangeReads ?? [], writes);
    }

    public void Dispose() => Snapshot.Dispose();

    private readonly record struct UndoEntry(byte[] Key, bool Existed, byte[]? Previous, List<KeyValuePair<byte[], byte[]?>>? RangeRemoved);
}
