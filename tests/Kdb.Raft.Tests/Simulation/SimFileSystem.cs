using Kdb.Raft.Storage;

namespace Kdb.Raft.Tests.Simulation;

/// <summary>A disk in memory that, on <see cref="Crash"/>, keeps only synced bytes plus possibly some later writes, the last of them torn.
/// Create, delete, rename and truncate are durable at once, as the real implementation fsyncs the directory for each.</summary>
internal sealed class SimFileSystem : IRaftFileSystem
{
    private readonly Dictionary<string, SimFile> _files = new(StringComparer.Ordinal);
    private readonly HashSet<string> _dirs = new(StringComparer.Ordinal);

    public long SyncCount { get; private set; }

    private sealed class SimFile
    {
        public List<byte> Durable { get; } = [];
        public List<byte[]> Pending { get; } = [];
        public long Length => Durable.Count + Pending.Sum(p => p.Length);
    }

    /// <summary>Loses unsynced data: a random number of pending writes survive in order, the next one possibly torn.</summary>
    public void Crash(Random rng, bool tear)
    {
        foreach (var f in _files.Values)
        {
            var keep = rng.Next(f.Pending.Count + 1);
            for (var i = 0; i < keep; i++)
            {
                f.Durable.AddRange(f.Pending[i]);
            }
            if (tear && keep < f.Pending.Count)
            {
                var w = f.Pending[keep];
                var cut = rng.Next(w.Length);
                for (var i = 0; i < cut; i++)
                {
                    f.Durable.Add(w[i]);
                }
            }
            f.Pending.Clear();
        }
    }

    public void CreateDirectory(string path) => _dirs.Add(path);

    public IReadOnlyList<string> ListFiles(string directory)
    {
        var prefix = directory + "/";
        var result = new List<string>();
        foreach (var k in _files.Keys)
        {
            if (k.StartsWith(prefix, StringComparison.Ordinal) && k.IndexOf('/', prefix.Length) < 0)
            {
                result.Add(k[prefix.Length..]);
            }
        }
        return result;
    }

    public bool FileExists(string path) => _files.ContainsKey(path);

    public byte[] ReadAllBytes(string path)
    {
        var f = _files[path];
        var all = new List<byte>(f.Durable);
        foreach (var p in f.Pending)
        {
            all.AddRange(p);
        }
        return [.. all];
    }

    public IAppendFile CreateNew(string path)
    {
        if (_files.ContainsKey(path))
        {
            throw new IOException($"{path} exists");
        }
        var f = new SimFile();
        _files[path] = f;
        return new Handle(this, f);
    }

    public IAppendFile OpenAppend(string path) => new Handle(this, _files[path]);

    public void WriteAtomic(string path, ReadOnlySpan<byte> data)
    {
        var f = new SimFile();
        f.Durable.AddRange(data.ToArray());
        _files[path] = f;
        SyncCount++;
    }

    public void Delete(string path) => _files.Remove(path);

    public void Truncate(string path, long length)
    {
        var f = _files[path];
        var all = ReadAllBytes(path);
        f.Pending.Clear();
        f.Durable.Clear();
        f.Durable.AddRange(all.AsSpan(0, (int)length).ToArray());
    }

    /// <summary>Overwrites one durable byte (corruption that no crash explains).</summary>
    public void FlipByte(string path, long offset)
    {
        var f = _files[path];
        f.Durable[(int)offset] ^= 0x5A;
    }

    private sealed class Handle(SimFileSystem owner, SimFile file) : IAppendFile
    {
        public long Length => file.Length;

        public void Write(ReadOnlySpan<byte> data) => file.Pending.Add(data.ToArray());

        public void Sync()
        {
            foreach (var p in file.Pending)
            {
                file.Durable.AddRange(p);
            }
            file.Pending.Clear();
            owner.SyncCount++;
        }

        public void Dispose()
        {
        }
    }
}
