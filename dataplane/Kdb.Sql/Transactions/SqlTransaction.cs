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
    private readonly SortedDictionary<byte[], byte[]?> _writes = new(ByteArrayComparer.Instance);
    private readonly List<(byte[] Start, byte[] End)> _rangeDeletes = [];
    private readonly List<UndoEntry> _undo = [];
    private readonly HashSet<byte[]> _pointReadSet = new(ByteArrayComparer.Instance);
    private readonly List<ReadOnlyMemory<byte>> _pointReads = [];
    private readonly List<KeyRange> _rangeReads = [];
    private long _writeBytes;

    public SqlTransaction(ulong tenant, IKvSnapshot snapshot)
    {
        Tenant = tenant;
        Snapshot = snapshot;
    }

    public ulong Tenant { get; }

    public IKvSnapshot Snapshot { get; }

    public ulong ReadVersion => Snapshot.Version;

    public bool HasWrites => _writes.Count > 0 || _rangeDeletes.Count > 0;

    /// <summary>Approximate bytes of buffered writes (for the statement memory limit and staging).</summary>
    public long WriteBytes => _writeBytes;

    public int UndoMark => _undo.Count;

    /// <summary>Reads a key (own writes first), recording it in the read set.</summary>
    public byte[]? Get(byte[] key)
    {
        if (_writes.TryGetValue(key, out var own))
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
        if (_writes.TryGetValue(key, out var own))
        {
            return own;
        }

        return IsRangeDeleted(key) ? null : Snapshot.Get(key).Value;
    }

    public void RecordPointRead(byte[] key)
    {
        if (_pointReadSet.Add(key))
        {
            _pointReads.Add(key);
        }
    }

    public void RecordRangeRead(byte[] start, byte[] end) => _rangeReads.Add(new KeyRange(start, end));

    private bool IsRangeDeleted(ReadOnlySpan<byte> key)
    {
        foreach (var (start, end) in _rangeDeletes)
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

        var existed = _writes.TryGetValue(key, out var previous);
        _undo.Add(new UndoEntry(key, existed, previous, null));
        _writes[key] = value;
        _writeBytes += key.Length + (value?.Length ?? 0) + 16;
    }

    /// <summary>Deletes [start, end) with one range tombstone (DROP TABLE, TRUNCATE).</summary>
    public void DeleteRange(byte[] start, byte[] end)
    {
        var removed = new List<KeyValuePair<byte[], byte[]?>>();
        foreach (var pair in _writes)
        {
            if (ByteArrayComparer.Instance.Compare(pair.Key, start) >= 0 && ByteArrayComparer.Instance.Compare(pair.Key, end) < 0)
            {
                removed.Add(pair);
            }
        }

        foreach (var pair in removed)
        {
            _writes.Remove(pair.Key);
        }

        _rangeDeletes.Add((start, end));
        _undo.Add(new UndoEntry(start, false, null, removed));
        _writeBytes += start.Length + end.Length + 16;
    }

    /// <summary>Undoes every write made after <paramref name="mark"/> (ROLLBACK TO SAVEPOINT, failed statement).</summary>
    public void RollbackTo(int mark)
    {
        for (var i = _undo.Count - 1; i >= mark; i--)
        {
            var entry = _undo[i];
            if (entry.RangeRemoved is not null)
            {
                _rangeDeletes.RemoveAt(_rangeDeletes.Count - 1);
                foreach (var pair in entry.RangeRemoved)
                {
                    _writes[pair.Key] = pair.Value;
                }
            }
            else if (entry.Existed)
            {
                _writes[entry.Key] = entry.Previous;
            }
            else
            {
                _writes.Remove(entry.Key);
            }
        }

        _undo.RemoveRange(mark, _undo.Count - mark);
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
            if (_writes.ContainsKey(enumerator.Current.Key) || !IsRangeDeleted(enumerator.Current.Key))
            {
                return true;
            }
        }

        return false;
    }

    private IEnumerable<KeyValuePair<byte[], byte[]?>> OwnWrites(byte[] start, byte[] end, bool reverse)
    {
        if (_writes.Count == 0)
        {
            yield break;
        }

        // SortedDictionary has no range view; the write buffer is small for the transactions that scan it.
        var list = new List<KeyValuePair<byte[], byte[]?>>();
        foreach (var pair in _writes)
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
        var writes = new List<TxWrite>(_writes.Count + _rangeDeletes.Count);
        foreach (var (start, end) in _rangeDeletes)
        {
            writes.Add(TxWrite.DeleteRange(start, end));
        }

        foreach (var pair in _writes)
        {
            writes.Add(pair.Value is null ? TxWrite.Delete(pair.Key) : TxWrite.Put(pair.Key, pair.Value));
        }

        return new CommitRecord(Tenant, ReadVersion, _pointReads, _rangeReads, writes);
    }

    public void Dispose() => Snapshot.Dispose();

    private readonly record struct UndoEntry(byte[] Key, bool Existed, byte[]? Previous, List<KeyValuePair<byte[], byte[]?>>? RangeRemoved);
}
