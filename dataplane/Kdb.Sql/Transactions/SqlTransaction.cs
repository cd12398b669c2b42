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
/// part of the write buffer; reads stay in the read set (conservative, never wrong). With a <see cref="Locker"/>,
/// writes of a statement attempt lock their keys and may move the snapshot forward (<see cref="AdvanceSnapshot"/>).
/// </summary>
internal sealed class SqlTransaction : IDisposable
{
    // Created on first use: most transactions are a single read.
    private SortedDictionary<byte[], byte[]?>? _writesStore;
    private List<(byte[] Start, byte[] End)>? _rangeDeletesStore;
    private List<UndoEntry>? _undoStore;
    private List<KeyRange>? _rangeReads;
    private long _writeBytes;
    private IKvSnapshot _snapshot;

    // Snapshots left behind by a read refresh: a cursor opened earlier may still read them until the transaction ends.
    private List<IKvSnapshot>? _retiredSnapshots;
    private int _activeScans;

    // Point-read keys, back to back in one buffer that a pooled transaction keeps: recording a read allocates
    // nothing in steady state. Duplicates are removed when the commit record is built.
    private byte[] _readKeyBytes = [];
    private int _readKeyLength;
    private int[] _readKeyEnds = [];
    private int _readKeyCount;

    private static readonly SortedDictionary<byte[], byte[]?> NoWrites = new(ByteArrayComparer.Instance);
    private static readonly List<(byte[] Start, byte[] End)> NoRangeDeletes = [];

    private SortedDictionary<byte[], byte[]?> Writes => _writesStore ?? NoWrites;

    private List<(byte[] Start, byte[] End)> RangeDeletes => _rangeDeletesStore ?? NoRangeDeletes;

    private List<UndoEntry> Undo => _undoStore ??= [];

    public SqlTransaction(ulong tenant, IKvSnapshot snapshot)
    {
        Tenant = tenant;
        _snapshot = snapshot;
    }

    public ulong Tenant { get; }

    /// <summary>The session's row locks (null: the store runs purely optimistically).</summary>
    internal KeyLocker? Locker { get; set; }

    /// <summary>Set while a statement attempt that can wait and re-run executes: only its writes lock keys.</summary>
    internal bool LockWrites { get; set; }

    /// <summary>Scans in progress: they read the snapshot they started on, so the snapshot must not move under them.</summary>
    internal int ActiveScans => _activeScans;

    /// <summary>Where the read set stands (a statement attempt's reads are dropped when it is undone to wait).</summary>
    internal ReadMark CurrentReadMark => new(_readKeyCount, _readKeyLength, _rangeReads?.Count ?? 0);

    public IKvSnapshot Snapshot => _snapshot;

    /// <summary>Changes whenever the transaction ends or is reused: statements of an earlier use can tell.</summary>
    public int Epoch { get; private set; }

    /// <summary>Starts a new transaction on this (released) object: a session reuses one per transaction.</summary>
    public void Reset(IKvSnapshot snapshot)
    {
        _snapshot = snapshot;
        Epoch++;
    }

    /// <summary>Ends the transaction: releases its snapshot and forgets its reads and writes, keeping buffers of moderate size.</summary>
    public void Release()
    {
        Epoch++;
        Locker?.ReleaseAll();
        LockWrites = false;
        _activeScans = 0;
        _snapshot.Dispose();
        DisposeRetired();
        _writesStore = null;
        _rangeDeletesStore = null;
        _writeBytes = 0;
        _undoStore = _undoStore is { Capacity: <= 4096 } ? _undoStore : null;
        _undoStore?.Clear();
        _rangeReads = _rangeReads is { Capacity: <= 4096 } ? _rangeReads : null;
        _rangeReads?.Clear();
        _readKeyLength = 0;
        _readKeyCount = 0;
        if (_readKeyBytes.Length > 1 << 16 || _readKeyEnds.Length > 1 << 12)
        {
            _readKeyBytes = [];
            _readKeyEnds = [];
        }
    }

    public ulong ReadVersion => Snapshot.Version;

    public bool HasWrites => _writesStore is { Count: > 0 } || _rangeDeletesStore is { Count: > 0 };

    /// <summary>Approximate bytes of buffered writes (for the statement memory limit and staging).</summary>
    public long WriteBytes => _writeBytes;

    public int UndoMark => _undoStore?.Count ?? 0;

    /// <summary>Reads a key (own writes first), recording it in the read set.</summary>
    public byte[]? Get(byte[] key) => _writesStore is { Count: > 0 } writes && writes.TryGetValue(key, out var own) ? own : GetCommitted(key);

    /// <summary>Reads a key held in a scratch buffer (own writes first), recording it in the read set without allocating.</summary>
    public byte[]? Get(ReadOnlySpan<byte> key) =>
        _writesStore is { Count: > 0 } writes && writes.TryGetValue(key.ToArray(), out var own) ? own : GetCommitted(key);

    private byte[]? GetCommitted(ReadOnlySpan<byte> key)
    {
        RecordPointRead(key);
        if (IsRangeDeleted(key))
        {
            return null;
        }

        return _snapshot.Get(key).Value;
    }

    /// <summary>
    /// As <see cref="Get(ReadOnlySpan{byte})"/> without copying a committed value: <paramref name="value"/> is lent by
    /// the snapshot and valid only until the transaction ends, so decode it at once and keep nothing that points into it.
    /// </summary>
    public bool TryGetLent(ReadOnlySpan<byte> key, out ReadOnlySpan<byte> value)
    {
        if (_writesStore is { Count: > 0 } writes && writes.TryGetValue(key.ToArray(), out var own))
        {
            value = own;
            return own is not null;
        }

        RecordPointRead(key);
        if (IsRangeDeleted(key))
        {
            value = default;
            return false;
        }

        return _snapshot.TryGetLent(key, out value, out _);
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

    public void RecordPointRead(ReadOnlySpan<byte> key)
    {
        if (_readKeyLength + key.Length > _readKeyBytes.Length)
        {
            Array.Resize(ref _readKeyBytes, Math.Max(_readKeyLength + key.Length, Math.Max(256, _readKeyBytes.Length * 2)));
        }

        if (_readKeyCount == _readKeyEnds.Length)
        {
            Array.Resize(ref _readKeyEnds, Math.Max(16, _readKeyEnds.Length * 2));
        }

        key.CopyTo(_readKeyBytes.AsSpan(_readKeyLength));
        _readKeyLength += key.Length;
        _readKeyEnds[_readKeyCount++] = _readKeyLength;
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

        if (LockWrites && Locker is { } locker)
        {
            locker.Lock(key, ReadVersion);
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
        var epoch = Epoch;
        _activeScans++;
        try
        {
            // Without own writes (every read-only statement) there is nothing to merge: the snapshot's rows stream
            // through, minus any range a later statement step deletes (as MoveSnapshot does).
            if (Writes.Count == 0)
            {
                foreach (var entry in Snapshot.Scan(start, end, 0, reverse))
                {
                    if (_rangeDeletesStore is { Count: > 0 } && !Writes.ContainsKey(entry.Key) && IsRangeDeleted(entry.Key))
                    {
                        continue;
                    }

                    lastKey = entry.Key;
                    yield return new KeyValuePair<byte[], byte[]>(entry.Key, entry.Value);
                }

                completed = true;
                yield break;
            }

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
            // A scan left open by an earlier use of this object must not count against the current transaction.
            if (epoch == Epoch)
            {
                _activeScans--;
            }

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

    /// <summary>Forgets the reads recorded after <paramref name="mark"/> (an undone statement attempt that runs again).</summary>
    internal void DropReadsAfter(ReadMark mark)
    {
        _readKeyCount = Math.Min(_readKeyCount, mark.PointReads);
        _readKeyLength = Math.Min(_readKeyLength, mark.PointReadBytes);
        if (_rangeReads is { } ranges && ranges.Count > mark.RangeReads)
        {
            ranges.RemoveRange(mark.RangeReads, ranges.Count - mark.RangeReads);
        }
    }

    /// <summary>The read set alone, plus <paramref name="extraKey"/>, at the read version: what a read refresh validates.</summary>
    internal CommitRecord BuildReadRecord(byte[] extraKey)
    {
        var pointReads = DistinctPointReads();
        pointReads.Add(extraKey);
        IReadOnlyList<KeyRange> rangeReads = _rangeReads is { Count: > 0 } ? [.. _rangeReads] : [];
        return new CommitRecord(Tenant, ReadVersion, pointReads, rangeReads, []);
    }

    /// <summary>
    /// Moves the transaction to a newer snapshot after its reads were validated up to it (a read refresh): reads
    /// made so far are as true at the new version as at the old. The old snapshot stays open for earlier cursors.
    /// </summary>
    internal void AdvanceSnapshot(IKvSnapshot snapshot)
    {
        (_retiredSnapshots ??= []).Add(_snapshot);
        _snapshot = snapshot;
    }

    private void DisposeRetired()
    {
        if (_retiredSnapshots is { Count: > 0 } retired)
        {
            foreach (var snapshot in retired)
            {
                snapshot.Dispose();
            }

            retired.Clear();
        }
    }

    private List<ReadOnlyMemory<byte>> DistinctPointReads()
    {
        // The result owns copies: this object's buffers are reused by the session's next transaction.
        var pointReads = new List<ReadOnlyMemory<byte>>(_readKeyCount + 1);
        var seen = new HashSet<byte[]>(ByteArrayComparer.Instance);
        var offset = 0;
        for (var i = 0; i < _readKeyCount; i++)
        {
            var key = _readKeyBytes.AsSpan(offset, _readKeyEnds[i] - offset).ToArray();
            offset = _readKeyEnds[i];
            if (seen.Add(key))
            {
                pointReads.Add(key);
            }
        }

        return pointReads;
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

        var pointReads = DistinctPointReads();
        IReadOnlyList<KeyRange> rangeReads = _rangeReads is { Count: > 0 } ? [.. _rangeReads] : [];
        return new CommitRecord(Tenant, ReadVersion, pointReads, rangeReads, writes);
    }

    public void Dispose()
    {
        Locker?.ReleaseAll();
        _snapshot.Dispose();
        DisposeRetired();
    }

    private readonly record struct UndoEntry(byte[] Key, bool Existed, byte[]? Previous, List<KeyValuePair<byte[], byte[]?>>? RangeRemoved);
}

/// <summary>A position in a transaction's read set.</summary>
internal readonly record struct ReadMark(int PointReads, int PointReadBytes, int RangeReads);
