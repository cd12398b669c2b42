namespace Kdb.Storage;

/// <summary>How the write-ahead log reaches the disk in standalone mode.</summary>
public enum DurabilityMode : byte
{
    /// <summary>Every <see cref="IKvEngine.Apply"/> returns only after its WAL record is fsynced;
    /// concurrent writers share one fsync (group commit).</summary>
    SyncPerBatch = 0,

    /// <summary>The WAL is written and fsynced every <see cref="EngineOptions.SyncIntervalMs"/>;
    /// a crash loses at most that window.</summary>
    Periodic = 1,

    /// <summary>No fsync; the WAL is written when its buffer fills and on flush or dispose.</summary>
    None = 2,
}

/// <summary>Options of one engine instance.</summary>
public sealed record EngineOptions
{
    /// <summary>Raft mode: no WAL of its own; the version of every batch is the Raft index and the
    /// last applied index is recorded in the manifest with each flush.</summary>
    public bool RaftMode { get; init; }

    /// <summary>WAL durability in standalone mode (ignored in Raft mode).</summary>
    public DurabilityMode Durability { get; init; } = DurabilityMode.SyncPerBatch;

    /// <summary>Sync period for <see cref="DurabilityMode.Periodic"/>.</summary>
    public int SyncIntervalMs { get; init; } = 10;

    /// <summary>Approximate memory of the in-memory delta before it is frozen and flushed.</summary>
    public long MemtableBytes { get; init; } = 64L << 20;

    /// <summary>Size of one WAL file before a new one is started (also rotated at every freeze).</summary>
    public long WalFileBytes { get; init; } = 64L << 20;

    /// <summary>Run size-tiered compaction in the background.</summary>
    public bool BackgroundCompaction { get; init; } = true;

    /// <summary>Number of similar-sized adjacent segments that triggers a merge.</summary>
    public int CompactionWidth { get; init; } = 4;

    /// <summary>Verify the keys, entry table and index checksums of every segment when it is opened
    /// (values are verified on every read by a per-entry checksum).</summary>
    public bool VerifyChecksumsOnOpen { get; init; } = true;
}

/// <summary>Result of a point read.</summary>
public readonly struct GetResult
{
    internal GetResult(byte[] value, ulong version)
    {
        Value = value;
        Version = version;
    }

    /// <summary>True when the key has a live value; false when it was never written, deleted, or
    /// covered by a range delete.</summary>
    public bool Found => Value is not null;

    /// <summary>The value, or null when <see cref="Found"/> is false.</summary>
    public byte[]? Value { get; }

    /// <summary>The version of the batch that wrote the value; 0 when not found (use
    /// <see cref="IKvReader.NewestVersion"/> to learn the version of a tombstone).</summary>
    public ulong Version { get; }
}

/// <summary>One live key-value pair returned by a scan.</summary>
/// <param name="Key">The key.</param>
/// <param name="Value">The value.</param>
/// <param name="Version">The version of the batch that wrote it.</param>
public readonly record struct KvEntry(byte[] Key, byte[] Value, ulong Version);

/// <summary>The state of one key changed after a version (see <see cref="IKvSnapshot.ChangesSince"/>).</summary>
/// <param name="Key">The key.</param>
/// <param name="Value">Its value at the snapshot, or null when it is deleted there (a tombstone, or a value hidden by a
/// newer range tombstone).</param>
/// <param name="Version">The newest version that touched the key.</param>
public readonly record struct KvChange(byte[] Key, byte[]? Value, ulong Version);

/// <summary>A range tombstone over [<paramref name="Start"/>, <paramref name="End"/>) written after a version (see
/// <see cref="IKvSnapshot.RangeDeletesSince"/>), clipped to the range asked for.</summary>
/// <param name="Start">First key covered.</param>
/// <param name="End">First key past the range.</param>
/// <param name="Version">The version of the batch that wrote it.</param>
public readonly record struct KvRangeDelete(byte[] Start, byte[] End, ulong Version);

/// <summary>Counters and index statistics of an engine.</summary>
public sealed record EngineStats
{
    /// <summary>Highest version applied (the Raft index in Raft mode).</summary>
    public ulong LastVersion { get; init; }
    /// <summary>Highest version stored in segments (durable in Raft mode).</summary>
    public ulong PersistedVersion { get; init; }
    /// <summary>Number of live segment files.</summary>
    public int SegmentCount { get; init; }
    /// <summary>Entries (values and tombstones) in live segments.</summary>
    public long SegmentEntries { get; init; }
    /// <summary>Bytes of live segment files.</summary>
    public long SegmentBytes { get; init; }
    /// <summary>Frozen deltas waiting to be flushed.</summary>
    public int FrozenDeltas { get; init; }
    /// <summary>Approximate bytes in the active delta.</summary>
    public long DeltaBytes { get; init; }
    /// <summary>Flushes and compactions done since open.</summary>
    public long Flushes { get; init; }
    /// <summary>Compactions done since open.</summary>
    public long Compactions { get; init; }
    /// <summary>Bytes written by flushes and compactions since open (write amplification numerator).</summary>
    public long BytesWrittenBySegments { get; init; }
    /// <summary>Learned-index model bytes over all segments.</summary>
    public long ModelBytes { get; init; }
    /// <summary>Key-weighted average of log2(2·err+1), the search window of the learned index.</summary>
    public double AvgLog2Error { get; init; }
    /// <summary>Largest leaf error (positions) over all segments.</summary>
    public long MaxError { get; init; }
    /// <summary>log2(2·<see cref="MaxError"/>+1): the widest search window, in binary-search steps.</summary>
    public double MaxLog2Error { get; init; }
    /// <summary>Index lookups since open.</summary>
    public long IndexLookups { get; init; }
    /// <summary>Average number of positions in the searched window per lookup.</summary>
    public double AvgProbeWindow { get; init; }
    /// <summary>Current GC threshold.</summary>
    public ulong GcThreshold { get; init; }
    /// <summary>WAL fsyncs since open; batches applied per fsync show how well group commit shares them.</summary>
    public long WalSyncs { get; init; }
    /// <summary>Upper bounds of <see cref="ProbeLengthBuckets"/> (keys compared per lookup); the last bucket is unbounded.</summary>
    public static IReadOnlyList<long> ProbeLengthBounds => Index.ProbeCounters.Bounds;
    /// <summary>Learned-index lookups by keys compared (not cumulative), since open, over every segment the engine had.</summary>
    public IReadOnlyList<long> ProbeLengthBuckets { get; init; } = [];
    /// <summary>Keys compared by all lookups since open (the histogram's sum).</summary>
    public long ProbeLengthSum { get; init; }
    /// <summary>Lookups whose key was not at the position the model predicted (the window had to be searched).</summary>
    public long Mispredicts { get; init; }
    /// <summary>Upper bounds, in seconds, of the duration histograms' buckets; the last bucket is unbounded.</summary>
    public static IReadOnlyList<double> DurationBounds => Index.DurationHistogram.Bounds;
    /// <summary>Learned-index model builds (one per segment written by a flush or compaction), by duration.</summary>
    public DurationSnapshot IndexBuilds { get; init; } = DurationSnapshot.Empty;
    /// <summary>Compactions (merge, index build, install), by duration.</summary>
    public DurationSnapshot CompactionDurations { get; init; } = DurationSnapshot.Empty;
    /// <summary>Bytes of segment files written by compactions since open.</summary>
    public long CompactionBytes { get; init; }
}

/// <summary>A duration histogram: counts per bucket of <see cref="EngineStats.DurationBounds"/> (not cumulative), their total and the sum in seconds.</summary>
/// <param name="Buckets">Counts per bucket, the unbounded one last.</param>
/// <param name="Count">Events recorded.</param>
/// <param name="SumSeconds">Their total duration.</param>
public sealed record DurationSnapshot(IReadOnlyList<long> Buckets, long Count, double SumSeconds)
{
    /// <summary>Nothing recorded.</summary>
    public static DurationSnapshot Empty { get; } = new(new long[Index.DurationHistogram.Bounds.Length + 1], 0, 0);
}

/// <summary>Read methods shared by the engine (latest state) and snapshots (a fixed version).</summary>
public interface IKvReader
{
    /// <summary>Reads one key. See <see cref="GetResult"/>.</summary>
    GetResult Get(ReadOnlySpan<byte> key);

    /// <summary>Enumerates live pairs with <paramref name="start"/> ≤ key &lt; <paramref name="end"/>
    /// (null end: unbounded), in ascending key order or descending when <paramref name="reverse"/>,
    /// at most <paramref name="limit"/> of them (0: no limit).</summary>
    IEnumerable<KvEntry> Scan(byte[] start, byte[]? end, int limit = 0, bool reverse = false);

    /// <summary>The newest version that touched the key — a value, a tombstone or a range
    /// tombstone covering it — or 0 when the key was never written (or its tombstones were
    /// garbage-collected at or below the GC threshold).</summary>
    ulong NewestVersion(ReadOnlySpan<byte> key);

    /// <summary>The newest version of any value, tombstone or range tombstone intersecting
    /// [<paramref name="start"/>, <paramref name="end"/>) (null end: unbounded); 0 when none.</summary>
    ulong NewestVersionInRange(byte[] start, byte[]? end);
}

/// <summary>A consistent point-in-time read view; writes continue meanwhile. Dispose it to release
/// the files it pins.</summary>
public interface IKvSnapshot : IKvReader, IDisposable
{
    /// <summary>Reads see every batch with a version ≤ this and nothing newer.</summary>
    ulong Version { get; }

    /// <summary>Reads one key without copying its value: <paramref name="value"/> is lent and stays valid until
    /// this snapshot is disposed (never write through it or keep it longer). False when <see cref="GetResult.Found"/>
    /// would be. Wrappers that do not override it fall back to a copying <see cref="IKvReader.Get"/>.</summary>
    bool TryGetLent(ReadOnlySpan<byte> key, out ReadOnlySpan<byte> value, out ulong version)
    {
        var r = Get(key);
        value = r.Value;
        version = r.Version;
        return r.Found;
    }

    /// <summary>The range tombstones with a version above <paramref name="since"/> intersecting [<paramref name="start"/>,
    /// <paramref name="end"/>) (null end: unbounded), clipped to it. Applied first, then <see cref="ChangesSince"/>, onto the
    /// state at <paramref name="since"/>, they reproduce this snapshot's state of the range — as long as the GC threshold
    /// was at most <paramref name="since"/> when the snapshot was opened (compaction drops older tombstones).</summary>
    IReadOnlyList<KvRangeDelete> RangeDeletesSince(ulong since, byte[] start, byte[]? end);

    /// <summary>One change, in ascending key order, for every key in [<paramref name="start"/>, <paramref name="end"/>)
    /// whose newest value or tombstone at this snapshot has a version above <paramref name="since"/>; a value hidden by a
    /// newer range tombstone is reported deleted. Keys touched only by range tombstones are left to
    /// <see cref="RangeDeletesSince"/>.</summary>
    IEnumerable<KvChange> ChangesSince(ulong since, byte[] start, byte[]? end);

    /// <summary>Like <see cref="IKvReader.Scan"/> (forward, no limit), but keys and values are lent instead of copied into
    /// fresh arrays: for exports that copy every pair somewhere anyway. Dispose the scan before this snapshot. Wrappers
    /// that do not override it fall back to a copying <see cref="IKvReader.Scan"/>.</summary>
    IKvLentScan ScanLent(byte[] start, byte[]? end) => new Engine.CopyingLentScan(Scan(start, end));
}

/// <summary>A forward scan whose <see cref="Key"/> and <see cref="Value"/> are lent: valid until the next
/// <see cref="MoveNext"/> or <see cref="IDisposable.Dispose"/> (never write through them or keep them longer). Reading
/// <see cref="Value"/> verifies a stored value's checksum each time: read it once per pair.</summary>
public interface IKvLentScan : IDisposable
{
    /// <summary>Moves to the next live pair in ascending key order; false at the end of the range.</summary>
    bool MoveNext();

    /// <summary>The current pair's key.</summary>
    ReadOnlySpan<byte> Key { get; }

    /// <summary>The current pair's value.</summary>
    ReadOnlySpan<byte> Value { get; }

    /// <summary>The version of the batch that wrote the current pair.</summary>
    ulong Version { get; }
}

/// <summary>The storage engine: a durable ordered key-value store with versions.</summary>
public interface IKvEngine : IKvReader, IDisposable
{
    /// <summary>Applies a batch atomically and returns its version: <paramref name="version"/> when
    /// given (required in Raft mode: the Raft index; must exceed every earlier version), else the
    /// next engine sequence. In standalone mode the batch is durable on return per
    /// <see cref="EngineOptions.Durability"/>.</summary>
    ulong Apply(WriteBatch batch, ulong? version = null);

    /// <summary>Highest version applied. In Raft mode, after reopen it is the last applied index
    /// recorded by the last <see cref="Flush"/>.</summary>
    ulong LastAppliedIndex { get; }

    /// <summary>Opens a snapshot at <see cref="LastAppliedIndex"/>.</summary>
    IKvSnapshot OpenSnapshot();

    /// <summary>Writes the delta to a segment and the manifest; afterwards everything applied is
    /// durable (also in Raft mode and with relaxed durability).</summary>
    void Flush();

    /// <summary>Merges all segments into one (dropping what the GC threshold allows) and waits.</summary>
    void Compact();

    /// <summary>Writes a consistent copy of the live files into an empty or missing directory;
    /// opening it yields the state at the returned version.</summary>
    ulong Checkpoint(string directory);

    /// <summary>Compaction may drop tombstones and range tombstones whose version is ≤ this.</summary>
    void SetGcThreshold(ulong threshold);

    /// <summary>Current statistics.</summary>
    EngineStats Stats { get; }
}

/// <summary>
/// Group commit for callers that serialize commits under a lock of their own (validate, then apply): apply under
/// that lock without waiting for the WAL, then wait for durability after releasing it, so concurrent committers share
/// one fsync. A batch applied this way is visible to readers before it is durable; the caller must not acknowledge
/// it (or let a reader's result depend on it) before <see cref="WaitDurable"/> returned. The storage engine
/// implements it: cast an <see cref="IKvEngine"/> from <see cref="KvEngine.Open"/>.
/// </summary>
public interface IKvGroupCommit
{
    /// <summary>Like <see cref="IKvEngine.Apply"/>, but returns as soon as the batch is applied in memory and buffered
    /// for the WAL, without waiting for its fsync.</summary>
    ulong ApplyWithoutWaiting(WriteBatch batch, ulong? version = null);

    /// <summary>The newest version durable per <see cref="EngineOptions.Durability"/> (with Periodic or None durability
    /// and in Raft mode: the last applied version, as <see cref="WaitDurable"/> would not wait for it).</summary>
    ulong DurableVersion { get; }

    /// <summary>Returns once every batch up to <paramref name="version"/> is durable per
    /// <see cref="EngineOptions.Durability"/> (at once with Periodic or None durability, and in Raft mode).</summary>
    void WaitDurable(ulong version);
}

/// <summary>
/// Checkpoints for a caller whose thread must not wait for I/O (a Raft loop that also heartbeats): capturing costs no I/O,
/// writing the captured checkpoint out runs on any thread. The storage engine implements it: cast an
/// <see cref="IKvEngine"/> from <see cref="KvEngine.Open"/>.
/// </summary>
public interface IKvCheckpointSource
{
    /// <summary>Freezes the memtable and pins the segments that together hold the state at
    /// <see cref="IKvEngine.LastAppliedIndex"/>; no I/O. Writes applied afterwards are not part of it.</summary>
    IKvCapturedCheckpoint CaptureCheckpoint();
}

/// <summary>A checkpoint captured but not yet written out. It pins the engine's segment files until disposed.</summary>
public interface IKvCapturedCheckpoint : IDisposable
{
    /// <summary>Opening the written checkpoint yields the state at this version.</summary>
    ulong Version { get; }

    /// <summary>Writes the checkpoint into an empty or missing directory: links the pinned segments, writes the frozen
    /// memtables as segments, fsyncs. Reads no mutable engine state, so it runs on any thread, also while the engine
    /// keeps applying (or after it was disposed, as long as its directory still exists).</summary>
    void WriteTo(string directory, CancellationToken cancellation = default);

    /// <summary>True once the engine's own files hold every version up to <see cref="Version"/> (its background flush
    /// of what the capture froze): only then may a Raft log drop the entries up to it.</summary>
    bool IsPersisted { get; }
}

/// <summary>Opens engines.</summary>
public static class KvEngine
{
    /// <summary>Largest key accepted.</summary>
    public const int MaxKeyBytes = 4096;

    /// <summary>Largest value accepted.</summary>
    public const int MaxValueBytes = 4 << 20;

    /// <summary>Opens (or creates) the engine in <paramref name="directory"/>: manifest, segments,
    /// then WAL replay. Throws <see cref="StorageCorruptionException"/> when a file is corrupt (a torn
    /// final WAL record is truncated instead).</summary>
    public static IKvEngine Open(string directory, EngineOptions? options = null) =>
        Engine.StorageEngine.Open(directory, options ?? new EngineOptions());
}

/// <summary>A file failed its checksum or structure check. <see cref="FilePath"/> and
/// <see cref="Offset"/> locate the damage; nothing was silently dropped.</summary>
public sealed class StorageCorruptionException : IOException
{
    /// <summary>Creates the exception.</summary>
    public StorageCorruptionException(string filePath, long offset, string reason)
        : base($"corrupt storage file '{filePath}' at offset {offset}: {reason}")
    {
        FilePath = filePath;
        Offset = offset;
    }

    /// <summary>The damaged file.</summary>
    public string FilePath { get; }

    /// <summary>Byte offset of the damaged record or region.</summary>
    public long Offset { get; }
}
