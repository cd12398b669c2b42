namespace Kdb.Transactions;

/// <summary>Kind of one write of a commit record. Persisted in Raft entries: values are only ever appended.</summary>
public enum WriteKind : byte
{
    /// <summary>Sets a key to a value.</summary>
    Put = 1,

    /// <summary>Deletes one key (leaves a tombstone at the commit's version).</summary>
    Delete = 2,

    /// <summary>Deletes every key in [Key, End) with one range tombstone.</summary>
    DeleteRange = 3,
}

/// <summary>One write: a put (key, value), a delete (key) or a range delete ([key, end)).</summary>
public readonly record struct TxWrite(WriteKind Kind, ReadOnlyMemory<byte> Key, ReadOnlyMemory<byte> ValueOrEnd)
{
    /// <summary>A put of <paramref name="value"/> at <paramref name="key"/>.</summary>
    public static TxWrite Put(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte> value) => new(WriteKind.Put, key, value);

    /// <summary>A delete of <paramref name="key"/>.</summary>
    public static TxWrite Delete(ReadOnlyMemory<byte> key) => new(WriteKind.Delete, key, ReadOnlyMemory<byte>.Empty);

    /// <summary>A delete of every key in [<paramref name="start"/>, <paramref name="end"/>).</summary>
    public static TxWrite DeleteRange(ReadOnlyMemory<byte> start, ReadOnlyMemory<byte> end) => new(WriteKind.DeleteRange, start, end);
}

/// <summary>A key range [Start, End) that a transaction scanned.</summary>
public readonly record struct KeyRange(ReadOnlyMemory<byte> Start, ReadOnlyMemory<byte> End);

/// <summary>
/// What a SQL transaction hands to the committer (DESIGN, "Keys, versions and transactions"): the snapshot
/// it read at, every key and range it read, and its writes. Applied, it is valid when nothing it read has
/// a version above <see cref="ReadVersion"/>; then its writes apply atomically at the entry's version.
/// </summary>
public sealed record CommitRecord(
    ulong Tenant,
    ulong ReadVersion,
    IReadOnlyList<ReadOnlyMemory<byte>> PointReads,
    IReadOnlyList<KeyRange> RangeReads,
    IReadOnlyList<TxWrite> Writes)
{
    /// <summary>
    /// For a transaction larger than one Raft entry: the id under which its writes were staged in chunks
    /// beforehand. This record then makes them visible atomically. Zero when nothing was staged.
    /// </summary>
    public ulong StagedTransactionId { get; init; }
}
