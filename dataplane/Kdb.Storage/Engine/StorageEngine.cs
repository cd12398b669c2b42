using System.Diagnostics;
using Kdb.Storage.Memtable;
using Kdb.Storage.Segments;
using Kdb.Storage.Wal;

namespace Kdb.Storage.Engine;

/// <summary>
/// The engine. Writes: WAL (standalone) → active delta; a full delta is frozen and flushed to a
/// segment by the background thread. Reads take a reference on the current <see cref="VersionSet"/>
/// (lock-free) and never wait for flushes or compactions.
/// Locks, always taken in this order: _applyLock → _stateLock; _flushLock → _stateLock;
/// _compactionLock → _stateLock. _stateLock guards installing version sets and writing the manifest.
/// </summary>
internal sealed partial class StorageEngine : IKvEngine, IKvGroupCommit
{
    private const int MaxFrozenBeforeStall = 4;

    private readonly string _dir;
    private readonly EngineOptions _options;
    private readonly FileStream _lockFile;
    private readonly object _applyLock = new();
    private readonly object _stateLock = new();
    private readonly object _flushLock = new();
    private readonly object _compactionLock = new();
    private readonly ByteWriter _encode = new(4096);
    private readonly List<BatchOp> _replayOps = [];
    private readonly WalWriter? _wal;
    private readonly Thread _background;
    private readonly AutoResetEvent _wake = new(false);
    private readonly Timer? _syncTimer;
    private VersionSet _current;
    private ulong _lastVersion;
    private ulong _persistedVersion;
    private ulong _gcThreshold;
    private ulong _nextFileNo;
    private ulong _walStartFileNo;
    private volatile bool _disposed;
    private Exception? _backgroundError;
    private long _flushes;
    private long _compactions;
    private long _segmentBytesWritten;
    private long _compactionBytes;
    private readonly Index.ProbeCounters _probes = new();
    private readonly Index.DurationHistogram _indexBuilds = new();
    private readonly Index.DurationHistogram _compactionDurations = new();

    private StorageEngine(string dir, EngineOptions options, FileStream lockFile, Manifest manifest, Segment[] segments)
    {
        _dir = dir;
        _options = options;
        _lockFile = lockFile;
        _persistedVersion = manifest.PersistedVersion;
        _lastVersion = manifest.PersistedVersion;
        _gcThreshold = manifest.GcThreshold;
        _nextFileNo = manifest.NextFileNo;
        _walStartFileNo = manifest.WalStartFileNo;
        var active = new Delta(_walStartFileNo);
        foreach (var segment in segments)
        {
            Track(segment);
        }

        _current = new VersionSet(active, [], segments);
        if (!options.RaftMode)
        {
            ReplayWal(active);
            // New writes go to a fresh file; the replayed files stay until the delta is flushed.
            var fileNo = _nextFileNo++;
            _wal = new WalWriter(dir, fileNo, _lastVersion);
            if (active.IsEmpty && active.MaxVersion <= _persistedVersion)
            {
                _current = new VersionSet(new Delta(fileNo), [], segments);
                _walStartFileNo = fileNo;
            }
            if (options.Durability == DurabilityMode.Periodic)
            {
                _syncTimer = new Timer(_ => SyncWalQuietly(), null, options.SyncIntervalMs, options.SyncIntervalMs);
            }
        }
        WriteManifestLocked(_current);
        DeleteObsoleteWalFiles();
        _background = new Thread(BackgroundLoop) { IsBackground = true, Name = "kdb-storage-bg" };
        _background.Start();
    }

    public static IKvEngine Open(string directory, EngineOptions options)
    {
        Directory.CreateDirectory(directory);
        var lockFile = new FileStream(Path.Combine(directory, "LOCK"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        var segments = new List<Segment>();
        try
        {
            var manifest = Manifest.Read(directory);
            if (manifest is null)
            {
                manifest = new Manifest(1, 1, 0, 0, options.RaftMode, []);
                manifest.Write(directory);
            }
            if (manifest.RaftMode != options.RaftMode)
            {
                throw new InvalidOperationException($"'{directory}' was created with RaftMode={manifest.RaftMode}");
            }
            var live = new HashSet<ulong>(manifest.Segments);
            ulong maxFileNo = 0;
            foreach (var f in Directory.EnumerateFiles(directory))
            {
                var name = Path.GetFileName(f);
                if (name.EndsWith(".tmp", StringComparison.Ordinal))
                {
                    File.Delete(f);
                }
                else if (TryFileNo(name, ".seg", out var no))
                {
                    maxFileNo = Math.Max(maxFileNo, no);
                    if (!live.Contains(no))
                    {
                        File.Delete(f); // written by a flush or compaction that never reached the manifest
                    }
                }
                else if (TryFileNo(name, ".wal", out no))
                {
                    maxFileNo = Math.Max(maxFileNo, no);
                }
            }
            foreach (var no in manifest.Segments)
            {
                var path = SegmentPath(directory, no);
                if (!File.Exists(path))
                {
                    throw new StorageCorruptionException(path, 0, "segment listed in the manifest is missing");
                }
                segments.Add(Segment.Open(path, no, options.VerifyChecksumsOnOpen));
            }
            manifest = manifest with { NextFileNo = Math.Max(manifest.NextFileNo, maxFileNo + 1) };
            return new StorageEngine(directory, options, lockFile, manifest, segments.ToArray());
        }
        catch
        {
            foreach (var s in segments)
            {
                s.Release();
            }
            lockFile.Dispose();
            throw;
        }
    }

    private static bool TryFileNo(string name, string ext, out ulong no)
    {
        no = 0;
        return name.EndsWith(ext, StringComparison.Ordinal) && ulong.TryParse(name.AsSpan(0, name.Length - ext.Length), out no);
    }

    internal static string SegmentPath(string dir, ulong no) => Path.Combine(dir, $"{no:D10}.seg");

    private void ReplayWal(Delta active)
    {
        var files = new List<(ulong, string)>();
        foreach (var f in Directory.EnumerateFiles(_dir, "*.wal"))
        {
            if (TryFileNo(Path.GetFileName(f), ".wal", out var no) && no >= _walStartFileNo)
            {
                files.Add((no, f));
            }
        }
        files.Sort((a, b) => a.Item1.CompareTo(b.Item1));
        WalReader.Replay(files, (seq, payload, file, offset) =>
        {
            if (seq <= _persistedVersion)
            {
                return; // already in a segment
            }
            _replayOps.Clear();
            try
            {
                WalFormat.DecodeBatch(payload, _replayOps);
            }
            catch (FormatException e)
            {
                throw new StorageCorruptionException(file, offset, "undecodable batch: " + e.Message);
            }
            foreach (var op in _replayOps)
            {
                active.Add(op.Kind, op.Key, op.Value, seq);
            }
            active.NoteVersion(seq);
            _lastVersion = seq;
        });
    }

    public ulong LastAppliedIndex => Volatile.Read(ref _lastVersion);

    private VersionSet Acquire()
    {
        while (true)
        {
            var vs = Volatile.Read(ref _current);
            if (vs.TryAddRef())
            {
                return vs;
            }
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    public ulong Apply(WriteBatch batch, ulong? version = null)
    {
        var v = ApplyCore(batch, version, out var ticket);
        if (_wal is not null && _options.Durability == DurabilityMode.SyncPerBatch)
        {
            _wal.Sync(ticket);
        }
        return v;
    }

    public ulong ApplyWithoutWaiting(WriteBatch batch, ulong? version = null) => ApplyCore(batch, version, out _);

    public ulong DurableVersion =>
        _wal is null || _options.Durability != DurabilityMode.SyncPerBatch ? LastAppliedIndex : _wal.DurableSeq;

    public void WaitDurable(ulong version)
    {
        if (_wal is null || _options.Durability != DurabilityMode.SyncPerBatch || _wal.DurableSeq >= version)
        {
            return;
        }
        ArgumentOutOfRangeException.ThrowIfGreaterThan(version, LastAppliedIndex);
        // Versions and WAL positions grow together, so syncing everything appended so far covers it;
        // callers that arrive while one fsync runs are covered by the next one (group commit).
        _wal.Sync(_wal.AppendedTicket);
    }

    /// <summary>Appends the batch to the WAL buffer and the delta; durability is the caller's to wait for.</summary>
    private ulong ApplyCore(WriteBatch batch, ulong? version, out long ticket)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ticket = 0;
        ulong v;
        lock (_applyLock)
        {
            ThrowIfDisposed();
            if (_backgroundError is { } err)
            {
                throw new IOException("background flush or compaction failed; the engine must be reopened", err);
            }
            if (_options.RaftMode && version is null)
            {
                throw new ArgumentException("Raft mode needs the Raft index as the version", nameof(version));
            }
            while (_current.Frozen.Length >= MaxFrozenBeforeStall)
            {
                // Write stall: flushes are behind; wait instead of growing memory without bound.
                _wake.Set();
                Monitor.Wait(_applyLock, 100);
                ThrowIfDisposed();
            }
            v = version ?? _lastVersion + 1;
            if (v <= _lastVersion)
            {
                throw new ArgumentOutOfRangeException(nameof(version), v, $"version must exceed the last applied version {_lastVersion}");
            }
            if (_wal is not null)
            {
                _encode.Reset();
                WalFormat.EncodeBatch(batch, _encode);
                ticket = _wal.Append(v, _encode.WrittenSpan, spill: true);
            }
            var active = _current.Active;
            foreach (var op in batch.Ops)
            {
                active.Add(op.Kind, op.Key, op.Value, v);
            }
            active.NoteVersion(v);
            Volatile.Write(ref _lastVersion, v);
            if (active.ApproximateBytes >= _options.MemtableBytes
                || (_wal is not null && _wal.FileBytes >= _options.WalFileBytes))
            {
                FreezeLocked();
            }
        }
        return v;
    }

    /// <summary>Under _applyLock: the active delta becomes frozen and a new one (with a new WAL file) starts.</summary>
    private void FreezeLocked()
    {
        var cur = _current;
        if (cur.Active.IsEmpty && cur.Active.MaxVersion <= _persistedVersion && cur.Frozen.Length == 0)
        {
            return;
        }
        if (cur.Active.IsEmpty && cur.Active.MaxVersion <= FrozenMax(cur))
        {
            return;
        }
        lock (_stateLock)
        {
            var fileNo = _nextFileNo++;
            _wal?.Rotate(fileNo);
            cur = _current;
            var frozen = new Delta[cur.Frozen.Length + 1];
            frozen[0] = cur.Active;
            cur.Frozen.CopyTo(frozen, 1);
            Install(VersionSet.Create(new Delta(fileNo), frozen, cur.Segments));
        }
        _wake.Set();
    }

    private static ulong FrozenMax(VersionSet vs) => vs.Frozen.Length == 0 ? 0 : vs.Frozen[0].MaxVersion;

    /// <summary>Under _stateLock.</summary>
    private void Install(VersionSet next)
    {
        var old = _current;
        Volatile.Write(ref _current, next);
        old.Release();
    }

    /// <summary>Under _stateLock.</summary>
    private void WriteManifestLocked(VersionSet vs)
    {
        var segs = new ulong[vs.Segments.Length];
        for (var i = 0; i < segs.Length; i++)
        {
            segs[i] = vs.Segments[i].FileNo;
        }
        new Manifest(_nextFileNo, _walStartFileNo, _persistedVersion, Volatile.Read(ref _gcThreshold), _options.RaftMode, segs).Write(_dir);
    }

    private void DeleteObsoleteWalFiles()
    {
        foreach (var f in Directory.EnumerateFiles(_dir, "*.wal"))
        {
            if (TryFileNo(Path.GetFileName(f), ".wal", out var no) && no < Volatile.Read(ref _walStartFileNo))
            {
                File.Delete(f);
            }
        }
    }

    public void Flush()
    {
        lock (_applyLock)
        {
            ThrowIfDisposed();
            _wal?.SyncAll();
            FreezeLocked();
        }
        FlushFrozen();
    }

    /// <summary>Flushes every frozen delta, oldest first.</summary>
    private void FlushFrozen()
    {
        lock (_flushLock)
        {
            while (true)
            {
                var frozen = Volatile.Read(ref _current).Frozen;
                if (frozen.Length == 0)
                {
                    break;
                }
                FlushOne(frozen[^1]);
                lock (_applyLock)
                {
                    Monitor.PulseAll(_applyLock);
                }
            }
        }
    }

    private void FlushOne(Delta d)
    {
        Segment? seg = null;
        if (d.Count > 0 || d.RangeTombstones.Length > 0)
        {
            ulong no;
            lock (_stateLock)
            {
                no = _nextFileNo++;
            }
            var path = SegmentPath(_dir, no);
            Interlocked.Add(ref _segmentBytesWritten, WriteSegment(d, path, _indexBuilds));
            seg = Track(Segment.Open(path, no, verify: false));
        }
        lock (_stateLock)
        {
            var cur = _current;
            var frozen = cur.Frozen.AsSpan(0, cur.Frozen.Length - 1).ToArray();
            Debug.Assert(ReferenceEquals(cur.Frozen[^1], d));
            Segment[] segs;
            if (seg is null)
            {
                segs = cur.Segments;
            }
            else
            {
                segs = new Segment[cur.Segments.Length + 1];
                segs[0] = seg;
                cur.Segments.CopyTo(segs, 1);
            }
            var next = VersionSet.Create(cur.Active, frozen, segs, seg);
            _persistedVersion = Math.Max(_persistedVersion, d.MaxVersion);
            Volatile.Write(ref _walStartFileNo, frozen.Length > 0 ? frozen[^1].WalFileNo : cur.Active.WalFileNo);
            try
            {
                WriteManifestLocked(next);
            }
            catch
            {
                next.Release();
                throw;
            }
            Install(next);
            _flushes++;
        }
        DeleteObsoleteWalFiles();
    }

    /// <summary>Writes a (frozen) delta as a segment file; returns its size.</summary>
    private static long WriteSegment(Delta d, string path, Index.DurationHistogram? indexBuilds = null)
    {
        using var w = new SegmentWriter(path);
        // Only the newest version of each key is kept: snapshots that need older versions
        // still reference this delta object itself.
        for (var n = d.Seek([]); n is not null; n = Delta.NextOf(n))
        {
            w.Add(n.Key, n.Version, n.Kind, n.Value);
            var k = n.Key;
            while (Delta.NextOf(n) is { } nx && nx.Key.AsSpan().SequenceEqual(k))
            {
                n = nx;
            }
        }
        foreach (var rt in d.RangeTombstones)
        {
            w.AddRangeTombstone(rt);
        }
        var size = w.Finish();
        indexBuilds?.Record(w.IndexBuildTicks);
        return size;
    }

    /// <summary>Points a segment's learned index at this engine's probe counters (they outlive segments).</summary>
    private Segment Track(Segment segment)
    {
        segment.Index.Probes = _probes;
        return segment;
    }

    private void SyncWalQuietly()
    {
        try
        {
            if (!_disposed)
            {
                _wal?.SyncAll();
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            _backgroundError ??= e;
        }
    }

    private void BackgroundLoop()
    {
        while (!_disposed)
        {
            _wake.WaitOne(1000);
            if (_disposed)
            {
                break;
            }
            try
            {
                FlushFrozen();
                if (_options.BackgroundCompaction)
                {
                    while (!_disposed && CompactOnce(force: false))
                    {
                    }
                }
            }
            catch (Exception e) when (!_disposed)
            {
                _backgroundError = e;
                return;
            }
            catch (Exception)
            {
                return;
            }
        }
    }

    public void SetGcThreshold(ulong threshold) => Volatile.Write(ref _gcThreshold, threshold);

    public GetResult Get(ReadOnlySpan<byte> key)
    {
        var vs = Acquire();
        try
        {
            return Reads.Get(vs, key, Volatile.Read(ref _lastVersion));
        }
        finally
        {
            vs.Release();
        }
    }

    public ulong NewestVersion(ReadOnlySpan<byte> key)
    {
        var vs = Acquire();
        try
        {
            return Reads.NewestVersion(vs, key, Volatile.Read(ref _lastVersion));
        }
        finally
        {
            vs.Release();
        }
    }

    public ulong NewestVersionInRange(byte[] start, byte[]? end)
    {
        ArgumentNullException.ThrowIfNull(start);
        var vs = Acquire();
        try
        {
            return Reads.NewestVersionInRange(vs, start, end, Volatile.Read(ref _lastVersion));
        }
        finally
        {
            vs.Release();
        }
    }

    public IEnumerable<KvEntry> Scan(byte[] start, byte[]? end, int limit = 0, bool reverse = false)
    {
        ArgumentNullException.ThrowIfNull(start);
        return ScanIterator(start, end, limit, reverse);
    }

    private IEnumerable<KvEntry> ScanIterator(byte[] start, byte[]? end, int limit, bool reverse)
    {
        var vs = Acquire();
        foreach (var e in Reads.Scan(vs, start, end, limit, reverse, Volatile.Read(ref _lastVersion), vs.Release))
        {
            yield return e;
        }
    }

    public IKvSnapshot OpenSnapshot()
    {
        lock (_applyLock)
        {
            ThrowIfDisposed();
            return new Snapshot(Acquire(), _lastVersion);
        }
    }

    public ulong Checkpoint(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (Directory.Exists(directory) && Directory.EnumerateFileSystemEntries(directory).Any())
        {
            throw new IOException($"checkpoint directory '{directory}' is not empty");
        }
        Flush();
        VersionSet vs;
        ulong persisted;
        lock (_stateLock)
        {
            vs = Acquire();
            persisted = _persistedVersion;
        }
        try
        {
            Directory.CreateDirectory(directory);
            var segs = new ulong[vs.Segments.Length];
            ulong maxNo = 0;
            for (var i = 0; i < segs.Length; i++)
            {
                var s = vs.Segments[i];
                segs[i] = s.FileNo;
                maxNo = Math.Max(maxNo, s.FileNo);
                FileUtil.LinkOrCopy(s.Path, SegmentPath(directory, s.FileNo));
            }
            FileUtil.FsyncDirectory(directory);
            new Manifest(maxNo + 1, maxNo + 1, persisted, Volatile.Read(ref _gcThreshold), _options.RaftMode, segs).Write(directory);
            return persisted;
        }
        finally
        {
            vs.Release();
        }
    }

    public EngineStats Stats
    {
        get
        {
            var vs = Acquire();
            try
            {
                long entries = 0, bytes = 0, model = 0, maxErr = 0, lookups = 0, window = 0;
                var probes = _probes.Snapshot();
                double log2 = 0;
                foreach (var s in vs.Segments)
                {
                    entries += s.Count;
                    bytes += s.FileSize;
                    model += s.Index.ModelBytes;
                    maxErr = Math.Max(maxErr, s.Index.MaxError);
                    log2 += s.Index.WeightedLog2Error;
                    lookups += s.Index.Lookups;
                    window += s.Index.WindowSum;
                }
                return new EngineStats
                {
                    LastVersion = LastAppliedIndex,
                    PersistedVersion = _persistedVersion,
                    SegmentCount = vs.Segments.Length,
                    SegmentEntries = entries,
                    SegmentBytes = bytes,
                    FrozenDeltas = vs.Frozen.Length,
                    DeltaBytes = vs.Active.ApproximateBytes,
                    Flushes = _flushes,
                    Compactions = _compactions,
                    BytesWrittenBySegments = Interlocked.Read(ref _segmentBytesWritten),
                    ModelBytes = model,
                    AvgLog2Error = entries == 0 ? 0 : log2 / entries,
                    MaxError = maxErr,
                    MaxLog2Error = Math.Log2((2.0 * maxErr) + 1),
                    IndexLookups = lookups,
                    AvgProbeWindow = lookups == 0 ? 0 : (double)window / lookups,
                    GcThreshold = Volatile.Read(ref _gcThreshold),
                    WalSyncs = _wal?.Syncs ?? 0,
                    ProbeLengthBuckets = probes.Buckets,
                    ProbeLengthSum = probes.Sum,
                    Mispredicts = probes.Mispredicts,
                    IndexBuilds = _indexBuilds.Snapshot(),
                    CompactionDurations = _compactionDurations.Snapshot(),
                    CompactionBytes = Interlocked.Read(ref _compactionBytes),
                };
            }
            finally
            {
                vs.Release();
            }
        }
    }

    public void Dispose()
    {
        lock (_applyLock)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            Monitor.PulseAll(_applyLock);
        }
        _wake.Set();
        _background.Join();
        _syncTimer?.Dispose();
        lock (_flushLock)
        {
            lock (_compactionLock)
            {
                lock (_stateLock)
                {
                    try
                    {
                        _wal?.Dispose();
                    }
                    finally
                    {
                        _current.Release();
                        _encode.Dispose();
                        _wake.Dispose();
                        _lockFile.Dispose();
                    }
                }
            }
        }
    }

    private sealed class Snapshot(VersionSet vs, ulong version) : IKvSnapshot
    {
        private int _disposed;

        public ulong Version => version;

        private void Check() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

        public GetResult Get(ReadOnlySpan<byte> key)
        {
            Check();
            return Reads.Get(vs, key, version);
        }

        // The snapshot's reference on vs keeps its segments mapped until Dispose, so the lent span outlives this call.
        public bool TryGetLent(ReadOnlySpan<byte> key, out ReadOnlySpan<byte> value, out ulong valueVersion)
        {
            Check();
            return Reads.TryGetLent(vs, key, version, out value, out valueVersion);
        }

        public ulong NewestVersion(ReadOnlySpan<byte> key)
        {
            Check();
            return Reads.NewestVersion(vs, key, version);
        }

        public ulong NewestVersionInRange(byte[] start, byte[]? end)
        {
            Check();
            return Reads.NewestVersionInRange(vs, start, end, version);
        }

        public IEnumerable<KvEntry> Scan(byte[] start, byte[]? end, int limit = 0, bool reverse = false)
        {
            Check();
            ArgumentNullException.ThrowIfNull(start);
            return Iterate(start, end, limit, reverse);
        }

        public IReadOnlyList<KvRangeDelete> RangeDeletesSince(ulong since, byte[] start, byte[]? end)
        {
            Check();
            ArgumentNullException.ThrowIfNull(start);
            return Changes.RangeDeletesSince(vs, since, start, end, version);
        }

        public IEnumerable<KvChange> ChangesSince(ulong since, byte[] start, byte[]? end)
        {
            Check();
            ArgumentNullException.ThrowIfNull(start);
            return IterateChanges(since, start, end);
        }

        public IKvLentScan ScanLent(byte[] start, byte[]? end)
        {
            Check();
            ArgumentNullException.ThrowIfNull(start);
            // The scan holds its own reference: disposing this snapshot first does not unmap what it lends.
            return vs.TryAddRef() ? new LentScan(vs, start, end, version, vs.Release) : throw new ObjectDisposedException(nameof(IKvSnapshot));
        }

        private IEnumerable<KvChange> IterateChanges(ulong since, byte[] start, byte[]? end)
        {
            if (!vs.TryAddRef())
            {
                throw new ObjectDisposedException(nameof(IKvSnapshot));
            }
            foreach (var c in Changes.ChangesSince(vs, since, start, end, version, vs.Release))
            {
                yield return c;
            }
        }

        private IEnumerable<KvEntry> Iterate(byte[] start, byte[]? end, int limit, bool reverse)
        {
            if (!vs.TryAddRef())
            {
                throw new ObjectDisposedException(nameof(IKvSnapshot));
            }
            foreach (var e in Reads.Scan(vs, start, end, limit, reverse, version, vs.Release))
            {
                yield return e;
            }
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                vs.Release();
            }
        }
    }
}
