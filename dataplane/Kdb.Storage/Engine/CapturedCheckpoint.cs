namespace Kdb.Storage.Engine;

internal sealed partial class StorageEngine : IKvCheckpointSource
{
    public IKvCapturedCheckpoint CaptureCheckpoint()
    {
        lock (_applyLock)
        {
            ThrowIfDisposed();
            // After the freeze every version so far is in a frozen delta or a segment; both are immutable, so the
            // pinned version set describes exactly the state at _lastVersion however long writing it out takes.
            FreezeLocked();
            VersionSet vs;
            lock (_stateLock)
            {
                vs = Acquire();
            }
            return new CapturedCheckpoint(this, vs, _lastVersion, Volatile.Read(ref _gcThreshold));
        }
    }

    private sealed class CapturedCheckpoint(StorageEngine engine, VersionSet vs, ulong version, ulong gcThreshold) : IKvCapturedCheckpoint
    {
        private int _disposed;

        public ulong Version => version;

        public bool IsPersisted => Volatile.Read(ref engine._persistedVersion) >= version;

        public void WriteTo(string directory, CancellationToken cancellation = default)
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            if (Directory.Exists(directory) && Directory.EnumerateFileSystemEntries(directory).Any())
            {
                throw new IOException($"checkpoint directory '{directory}' is not empty");
            }
            Directory.CreateDirectory(directory);
            ulong maxNo = 0;
            foreach (var s in vs.Segments)
            {
                maxNo = Math.Max(maxNo, s.FileNo);
            }
            var frozen = vs.Frozen;
            var segs = new List<ulong>(frozen.Length + vs.Segments.Length);
            // Newest first, as in the engine's manifest: the frozen deltas (numbered above every linked segment), then the segments.
            for (var i = 0; i < frozen.Length; i++)
            {
                cancellation.ThrowIfCancellationRequested();
                var d = frozen[i];
                if (d.Count == 0 && d.RangeTombstones.Length == 0)
                {
                    continue;
                }
                var no = maxNo + (ulong)(frozen.Length - i);
                WriteSegment(d, SegmentPath(directory, no));
                segs.Add(no);
            }
            foreach (var s in vs.Segments)
            {
                cancellation.ThrowIfCancellationRequested();
                FileUtil.LinkOrCopy(s.Path, SegmentPath(directory, s.FileNo));
                segs.Add(s.FileNo);
            }
            FileUtil.FsyncDirectory(directory);
            var next = maxNo + (ulong)frozen.Length + 1;
            new Manifest(next, next, version, gcThreshold, engine._options.RaftMode, [.. segs]).Write(directory);
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
