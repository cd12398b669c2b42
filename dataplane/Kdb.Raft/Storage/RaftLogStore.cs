using System.Buffers;
using System.Globalization;

namespace Kdb.Raft.Storage;

/// <summary>The durable log of one group: hard state, entries and the latest snapshot.</summary>
public interface IRaftLogStore : IDisposable
{
    /// <summary>What was recovered when the store was opened.</summary>
    PersistedState Recovered { get; }

    /// <summary>Bytes cut from a torn tail when the store was opened (0 if the log ended cleanly).</summary>
    long TornBytesDiscarded { get; }

    /// <summary>Appends entries (superseding any at the same or later indexes) and the hard state; fsyncs when <paramref name="sync"/>.
    /// Nothing that depends on these may be acknowledged before this returns with sync.</summary>
    void Append(IReadOnlyList<Entry> entries, HardState? hardState, bool sync);

    /// <summary>Stores a snapshot atomically. <paramref name="replacesLog"/>: it came from the leader and voids the whole log.</summary>
    void SaveSnapshot(SnapshotMetadata meta, ReadOnlyMemory<byte> data, bool replacesLog);

    /// <summary>Stores a snapshot whose data is a complete, fsynced file (packed off the host's loop, or staged by
    /// <see cref="CreateSnapshotSink"/>): the file is moved into the log's directory by rename, never copied or read, and
    /// the metadata (with <paramref name="checksum"/>, the data's CRC32C) replaces the previous snapshot atomically. A crash
    /// at any point leaves the previous snapshot or this one. Returns the data mapped read-only, for the core to send; the
    /// store keeps the mapping valid until two newer snapshots replaced it or the store is disposed.</summary>
    ReadOnlyMemory<byte> SaveSnapshotFile(SnapshotMetadata meta, string path, uint checksum, bool replacesLog);

    /// <summary>A staging file in the log's directory for a snapshot streamed from the leader (<see cref="RaftConfig.SnapshotSink"/>):
    /// memory stays bounded by one chunk; completing it fsyncs and maps the file, disposing it uncompleted deletes it.</summary>
    ISnapshotSink CreateSnapshotSink(SnapshotMetadata meta);

    /// <summary>Deletes whole segments that hold only entries at or below <paramref name="index"/> (which must be covered by a saved snapshot).</summary>
    void Compact(ulong index);

    /// <summary>Number of segment files currently on disk.</summary>
    int SegmentCount { get; }

    /// <summary>Makes everything appended so far durable (what earlier <see cref="Append"/> calls with <c>sync: false</c> wrote).
    /// Many groups share one durability point through <see cref="RaftLogStore.SyncAll"/>.</summary>
    void Sync() => Append([], null, sync: true);
}

/// <summary>Options of the segmented log.</summary>
public sealed record RaftLogStoreOptions
{
    /// <summary>A segment is closed and a new one started past this size.</summary>
    public long SegmentBytes { get; init; } = 64L << 20;
}

/// <summary>Opens segmented logs.</summary>
public static class RaftLogStore
{
    /// <summary>Opens (creating if needed) the log in <paramref name="directory"/>, recovering from a torn tail.
    /// Throws <see cref="InvalidDataException"/> on corruption that a crash cannot explain.</summary>
    public static IRaftLogStore Open(IRaftFileSystem fs, string directory, RaftLogStoreOptions? options = null) =>
        SegmentedLogStore.Open(fs, directory, options ?? new RaftLogStoreOptions());

    /// <summary>Shared log writing for a multi-Raft host: append every group's Ready with <c>sync: false</c>, then call this once
    /// and send the groups' messages after it returns. The fsyncs run concurrently, so the file system folds them into one
    /// journal commit instead of one disk flush per group in turn. Throws (after all have finished) if any store failed;
    /// nothing that depends on a failed store may be acknowledged.</summary>
    public static void SyncAll(IReadOnlyList<IRaftLogStore> stores) => LogSyncWorkers.SyncAll(stores);
}

/// <summary>Blocked-in-fsync threads cost no CPU; a few dedicated ones keep fsyncs concurrent even when the thread pool is busy.</summary>
internal static class LogSyncWorkers
{
    private const int Workers = 16;
    private static readonly System.Collections.Concurrent.BlockingCollection<(IRaftLogStore Store, Batch Batch)> Queue = [];
    private static int _started;

    private sealed class Batch(int count)
    {
        private int _left = count;
        public readonly ManualResetEventSlim Done = new(false);
        public Exception? Error;

        public void Complete(Exception? error)
        {
            if (error is not null)
            {
                Interlocked.CompareExchange(ref Error, error, null);
            }
            if (Interlocked.Decrement(ref _left) == 0)
            {
                Done.Set();
            }
        }
    }

    public static void SyncAll(IReadOnlyList<IRaftLogStore> stores)
    {
        if (stores.Count <= 1)
        {
            if (stores.Count == 1)
            {
                stores[0].Sync();
            }
            return;
        }
        if (Interlocked.Exchange(ref _started, 1) == 0)
        {
            for (var i = 0; i < Workers; i++)
            {
                new Thread(Run) { IsBackground = true, Name = "raft-log-sync" }.Start();
            }
        }
        var batch = new Batch(stores.Count);
        // The caller syncs one store itself rather than waiting idle.
        for (var i = 1; i < stores.Count; i++)
        {
            Queue.Add((stores[i], batch));
        }
        Exception? own = null;
        try
        {
            stores[0].Sync();
        }
        catch (Exception e)
        {
            own = e;
        }
        batch.Complete(own);
        batch.Done.Wait();
        batch.Done.Dispose();
        if (batch.Error is { } error)
        {
            throw new IOException("a raft log could not be made durable: " + error.Message, error);
        }
    }

    private static void Run()
    {
        foreach (var (store, batch) in Queue.GetConsumingEnumerable())
        {
            Exception? error = null;
            try
            {
                store.Sync();
            }
            catch (Exception e)
            {
                error = e;
            }
            batch.Complete(error);
        }
    }
}

internal sealed partial class SegmentedLogStore : IRaftLogStore
{
    private const string SnapshotFile = "snapshot";
    private readonly IRaftFileSystem _fs;
    private readonly string _dir;
    private readonly RaftLogStoreOptions _options;
    // Sequence -> highest entry index written in that segment, for compaction.
    private readonly SortedDictionary<ulong, ulong> _segments = [];
    private IAppendFile _current;
    private ulong _currentSeq;
    private HardState _hardState;
    private ulong _snapshotIndex;
    private bool _unsynced;

    private SegmentedLogStore(IRaftFileSystem fs, string dir, RaftLogStoreOptions options, IAppendFile current, ulong seq)
    {
        _fs = fs;
        _dir = dir;
        _options = options;
        _current = current;
        _currentSeq = seq;
        Recovered = PersistedState.Empty;
    }

    public PersistedState Recovered { get; private set; }
    public long TornBytesDiscarded { get; private set; }
    public int SegmentCount => _segments.Count;

    private static string SegmentName(ulong seq) => $"seg-{seq.ToString("D16", CultureInfo.InvariantCulture)}.log";

    public static SegmentedLogStore Open(IRaftFileSystem fs, string dir, RaftLogStoreOptions options)
    {
        fs.CreateDirectory(dir);
        var (snap, snapData, snapChecksum, dataSeq, mapping) = OpenSnapshot(fs, dir);
        var seqs = new List<ulong>();
        foreach (var name in fs.ListFiles(dir))
        {
            if (name.StartsWith("seg-", StringComparison.Ordinal) && name.EndsWith(".log", StringComparison.Ordinal)
                && ulong.TryParse(name.AsSpan(4, name.Length - 8), NumberStyles.None, CultureInfo.InvariantCulture, out var seq))
            {
                seqs.Add(seq);
            }
        }
        seqs.Sort();

        var entries = new List<Entry>();
        var hardState = default(HardState);
        var segMax = new SortedDictionary<ulong, ulong>();
        long torn = 0;
        for (var s = 0; s < seqs.Count; s++)
        {
            var path = Path.Combine(dir, SegmentName(seqs[s]));
            var bytes = fs.ReadAllBytes(path);
            var last = s == seqs.Count - 1;
            if (!LogFormat.TryReadSegmentHeader(bytes, out var headerSeq) || headerSeq != seqs[s])
            {
                if (!last)
                {
                    throw new InvalidDataException($"raft log segment {path} has a bad header and is not the last segment");
                }
                // The newest segment's header write was torn: the file held nothing acknowledged.
                torn += bytes.Length;
                fs.Delete(path);
                seqs.RemoveAt(s);
                break;
            }
            ulong max = 0;
            var offset = LogFormat.SegmentHeaderBytes;
            while (offset < bytes.Length)
            {
                if (!LogFormat.TryReadRecord(bytes, offset, out var type, out var payload, out var next))
                {
                    if (!last)
                    {
                        throw new InvalidDataException($"raft log segment {path} is corrupt at offset {offset} and is not the last segment");
                    }
                    // Zeros after the last record are a preallocated tail (a crash before the segment was closed), not a
                    // torn write.
                    if (bytes.AsSpan(offset).ContainsAnyExcept((byte)0))
                    {
                        torn += bytes.Length - offset;
                    }
                    fs.Truncate(path, offset);
                    break;
                }
                switch (type)
                {
                    case LogRecordType.Entry:
                        var e = LogFormat.ReadEntry(payload);
                        AddReplayed(entries, e, path);
                        max = Math.Max(max, e.Index);
                        break;
                    case LogRecordType.HardState:
                        hardState = LogFormat.ReadHardState(payload);
                        break;
                    case LogRecordType.SnapshotInstalled:
                        entries.Clear();
                        break;
                    default:
                        throw new InvalidDataException($"raft log segment {path}: unknown record type {(byte)type} at offset {offset}");
                }
                offset = next;
            }
            segMax[seqs[s]] = max;
        }

        var live = Reconcile(entries, snap);
        IAppendFile current;
        ulong currentSeq;
        if (seqs.Count == 0)
        {
            currentSeq = 1;
            current = fs.CreateLog(Path.Combine(dir, SegmentName(currentSeq)));
            Span<byte> header = stackalloc byte[LogFormat.SegmentHeaderBytes];
            LogFormat.WriteSegmentHeader(header, currentSeq);
            current.Write(header);
            current.Sync();
            segMax[currentSeq] = 0;
        }
        else
        {
            currentSeq = seqs[^1];
            current = fs.OpenLog(Path.Combine(dir, SegmentName(currentSeq)));
        }
        var store = new SegmentedLogStore(fs, dir, options, current, currentSeq)
        {
            _hardState = hardState,
            _snapshotIndex = snap?.Index ?? 0,
            _dataSeq = dataSeq,
            _nextFileSeq = dataSeq + 1,
            TornBytesDiscarded = torn,
        };
        store.Track(mapping);
        foreach (var (k, v) in segMax)
        {
            store._segments[k] = v;
        }
        store.Recovered = new PersistedState(hardState, snap, snapData, live) { SnapshotChecksum = snapChecksum };
        return store;
    }

    private static void AddReplayed(List<Entry> entries, Entry e, string path)
    {
        if (entries.Count > 0)
        {
            var first = entries[0].Index;
            var lastIndex = entries[^1].Index;
            if (e.Index <= lastIndex)
            {
                // A later write superseded a conflicting suffix.
                var keep = e.Index > first ? (int)(e.Index - first) : 0;
                entries.RemoveRange(keep, entries.Count - keep);
            }
            else if (e.Index != lastIndex + 1)
            {
                throw new InvalidDataException($"raft log segment {path}: entry {e.Index} leaves a gap after {lastIndex}");
            }
        }
        entries.Add(e);
    }

    /// <summary>Keeps only the entries that continue the snapshot (a crash may fall between saving a snapshot and its marker).</summary>
    private static List<Entry> Reconcile(List<Entry> entries, SnapshotMetadata? snap)
    {
        if (snap is null)
        {
            if (entries.Count > 0 && entries[0].Index != 1)
            {
                throw new InvalidDataException($"raft log starts at {entries[0].Index} but there is no snapshot");
            }
            return entries;
        }
        var result = new List<Entry>();
        if (entries.Count == 0 || entries[^1].Index <= snap.Index)
        {
            return result;
        }
        var first = entries[0].Index;
        if (first > snap.Index + 1)
        {
            throw new InvalidDataException($"raft log starts at {first}, after the snapshot at {snap.Index}");
        }
        if (first <= snap.Index && entries[(int)(snap.Index - first)].Term != snap.Term)
        {
            // The entries do not continue the snapshot: they belong to a log the snapshot replaced.
            return result;
        }
        for (var i = 0; i < entries.Count; i++)
        {
            if (entries[i].Index > snap.Index)
            {
                result.Add(entries[i]);
            }
        }
        return result;
    }

    public void Append(IReadOnlyList<Entry> entries, HardState? hardState, bool sync)
    {
        var len = hardState is null ? 0 : LogFormat.HardStateRecordLength;
        ulong max = 0;
        for (var i = 0; i < entries.Count; i++)
        {
            len += LogFormat.EntryRecordLength(entries[i]);
            max = Math.Max(max, entries[i].Index);
        }
        if (len > 0)
        {
            if (_current.Length > _options.SegmentBytes)
            {
                Rotate();
            }
            var buf = ArrayPool<byte>.Shared.Rent(len);
            try
            {
                var p = 0;
                for (var i = 0; i < entries.Count; i++)
                {
                    p += LogFormat.WriteEntry(buf.AsSpan(p), entries[i]);
                }
                if (hardState is { } hs)
                {
                    p += LogFormat.WriteHardState(buf.AsSpan(p), hs);
                    _hardState = hs;
                }
                // One write per batch, so a crash tears at most this batch.
                _current.Write(buf.AsSpan(0, p));
                _unsynced = true;
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buf);
            }
            _segments[_currentSeq] = Math.Max(_segments[_currentSeq], max);
        }
        if (sync)
        {
            Sync();
        }
    }

    public void Sync()
    {
        // Rotation and snapshot markers sync on their own; only appends leave bytes waiting.
        if (_unsynced)
        {
            _current.Sync();
            _unsynced = false;
        }
    }

    private void Rotate()
    {
        _current.Sync();
        _current.Dispose();
        _currentSeq++;
        _current = _fs.CreateLog(Path.Combine(_dir, SegmentName(_currentSeq)));
        Span<byte> buf = stackalloc byte[LogFormat.SegmentHeaderBytes + LogFormat.HardStateRecordLength];
        LogFormat.WriteSegmentHeader(buf, _currentSeq);
        // Every segment starts with the hard state, so compaction may delete any older segment.
        LogFormat.WriteHardState(buf[LogFormat.SegmentHeaderBytes..], _hardState);
        _current.Write(buf);
        _current.Sync();
        _segments[_currentSeq] = 0;
    }

    public void SaveSnapshot(SnapshotMetadata meta, ReadOnlyMemory<byte> data, bool replacesLog)
    {
        _fs.WriteAtomic(Path.Combine(_dir, SnapshotFile), LogFormat.EncodeSnapshot(meta, data.Span));
        DropDataFile(0);
        SnapshotSaved(meta, replacesLog);
    }

    private void SnapshotSaved(SnapshotMetadata meta, bool replacesLog)
    {
        _snapshotIndex = Math.Max(_snapshotIndex, meta.Index);
        if (replacesLog)
        {
            Span<byte> buf = stackalloc byte[LogFormat.MarkerRecordLength];
            LogFormat.WriteMarker(buf, meta.Index, meta.Term);
            _current.Write(buf);
            _current.Sync();
        }
    }

    public void Compact(ulong index)
    {
        index = Math.Min(index, _snapshotIndex);
        List<ulong>? drop = null;
        foreach (var (seq, max) in _segments)
        {
            if (seq == _currentSeq || max > index)
            {
                break;
            }
            (drop ??= []).Add(seq);
        }
        if (drop is null)
        {
            return;
        }
        foreach (var seq in drop)
        {
            _fs.Delete(Path.Combine(_dir, SegmentName(seq)));
            _segments.Remove(seq);
        }
    }

    public void Dispose()
    {
        _current.Dispose();
        DisposeMappings();
    }
}
