using System.Globalization;

namespace Kdb.Raft.Storage;

/// <summary>Snapshot data in files of its own (version 2 snapshot files): moved in by rename, read through a memory map.</summary>
internal sealed partial class SegmentedLogStore
{
    private const string DataPrefix = "snapshot-";
    private const string DataSuffix = ".data";
    private const string IncomingPrefix = "snapshot.incoming-";
    // Mappings handed out, oldest first: the core may still send from the one before the current (a message being written),
    // so a mapping is unmapped only once two newer snapshots replaced it.
    private const int MappingsKept = 3;
    private readonly List<IDisposable> _mappings = [];
    // Staging files completed by a sink and not yet saved, with their mappings.
    private readonly Dictionary<string, (ReadOnlyMemory<byte> Data, IDisposable? Owner)> _staged = new(StringComparer.Ordinal);
    // The data file of the current snapshot (0: none, the snapshot file holds its data), and the next data or staging number.
    private ulong _dataSeq;
    private ulong _nextFileSeq = 1;

    private static string DataName(ulong seq) => DataPrefix + seq.ToString("D16", CultureInfo.InvariantCulture) + DataSuffix;

    /// <summary>Reads the snapshot (either version), verifies its data and removes what a crash left behind: data files no
    /// snapshot names (moved in before the metadata was replaced, or replaced before they were deleted) and staging files.</summary>
    private static (SnapshotMetadata? Meta, ReadOnlyMemory<byte> Data, uint? Checksum, ulong DataSeq, IDisposable? Mapping) OpenSnapshot(
        IRaftFileSystem fs, string dir)
    {
        SnapshotMetadata? meta = null;
        ReadOnlyMemory<byte> data = ReadOnlyMemory<byte>.Empty;
        uint? checksum = null;
        ulong seq = 0;
        IDisposable? owner = null;
        var path = Path.Combine(dir, SnapshotFile);
        if (fs.FileExists(path))
        {
            var (m, inline, dataRef) = LogFormat.DecodeSnapshot(fs.ReadAllBytes(path));
            meta = m;
            if (inline is not null)
            {
                data = inline;
            }
            else
            {
                seq = dataRef.Seq;
                var dataPath = Path.Combine(dir, DataName(seq));
                if (!fs.FileExists(dataPath))
                {
                    throw new InvalidDataException($"raft snapshot data file {dataPath} is missing");
                }
                data = fs.ReadAllMapped(dataPath, out owner);
                if (data.Length != dataRef.Length || Crc32C.Compute(data.Span) != dataRef.Checksum)
                {
                    owner?.Dispose();
                    throw new InvalidDataException($"raft snapshot data file {dataPath}: length or checksum mismatch");
                }
                (owner as MappedFile)?.ReleaseResidentPages();
                checksum = dataRef.Checksum;
            }
        }
        var keep = seq == 0 ? null : DataName(seq);
        foreach (var name in fs.ListFiles(dir))
        {
            var stale = name.StartsWith(IncomingPrefix, StringComparison.Ordinal)
                || (name.StartsWith(DataPrefix, StringComparison.Ordinal) && name.EndsWith(DataSuffix, StringComparison.Ordinal) && name != keep);
            if (stale)
            {
                fs.Delete(Path.Combine(dir, name));
            }
        }
        return (meta, data, checksum, seq, owner);
    }

    public ReadOnlyMemory<byte> SaveSnapshotFile(SnapshotMetadata meta, string path, uint checksum, bool replacesLog)
    {
        ReadOnlyMemory<byte> data;
        IDisposable? owner;
        if (_staged.Remove(path, out var staged))
        {
            (data, owner) = staged;
        }
        else
        {
            // Maps without reading: the mapping follows the file through the rename.
            data = _fs.ReadAllMapped(path, out owner);
        }
        var seq = _nextFileSeq++;
        try
        {
            _fs.Rename(path, Path.Combine(_dir, DataName(seq)));
            // The new metadata names the new file; until it lands the old snapshot (and its file) stays the valid one.
            _fs.WriteAtomic(Path.Combine(_dir, SnapshotFile), LogFormat.EncodeSnapshotRef(meta, data.Length, checksum, seq));
        }
        catch
        {
            owner?.Dispose();
            throw;
        }
        Track(owner);
        DropDataFile(seq);
        SnapshotSaved(meta, replacesLog);
        return data;
    }

    public ISnapshotSink CreateSnapshotSink(SnapshotMetadata meta)
    {
        var path = Path.Combine(_dir, IncomingPrefix + (_nextFileSeq++).ToString("D16", CultureInfo.InvariantCulture));
        return new FileSnapshotSink(this, path, _fs.CreateNew(path));
    }

    /// <summary>The snapshot now in use has its data in file <paramref name="keepSeq"/> (0: inline): the previous data file goes.</summary>
    private void DropDataFile(ulong keepSeq)
    {
        if (_dataSeq != 0 && _dataSeq != keepSeq)
        {
            _fs.Delete(Path.Combine(_dir, DataName(_dataSeq)));
        }
        _dataSeq = keepSeq;
    }

    private void Track(IDisposable? mapping)
    {
        if (mapping is null)
        {
            return;
        }
        _mappings.Add(mapping);
        while (_mappings.Count > MappingsKept)
        {
            _mappings[0].Dispose();
            _mappings.RemoveAt(0);
        }
    }

    private void DisposeMappings()
    {
        foreach (var m in _mappings)
        {
            m.Dispose();
        }
        _mappings.Clear();
        foreach (var (_, staged) in _staged)
        {
            staged.Owner?.Dispose();
        }
        _staged.Clear();
    }

    private sealed class FileSnapshotSink(SegmentedLogStore store, string path, IAppendFile file) : ISnapshotSink
    {
        private bool _completed;
        private bool _disposed;

        public void Write(ReadOnlySpan<byte> chunk) => file.Write(chunk);

        public ReadOnlyMemory<byte> Complete(out string? staged)
        {
            file.Sync();
            file.Dispose();
            _completed = true;
            var data = store._fs.ReadAllMapped(path, out var owner);
            store._staged[path] = (data, owner);
            staged = path;
            return data;
        }

        public void Dispose()
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            if (!_completed)
            {
                file.Dispose();
                store._fs.Delete(path);
            }
        }
    }
}
