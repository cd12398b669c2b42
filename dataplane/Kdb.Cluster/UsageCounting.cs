using Kdb.Storage;

namespace Kdb.Cluster;

/// <summary>Receives what tenant statements read and wrote (the node meters it per database).</summary>
public interface IUsageSink
{
    void AddRead(string databaseId, long rows, long bytes);

    void AddWrite(string databaseId, long rows, long bytes);
}

/// <summary>A snapshot that counts the key-value pairs a statement reads (rows of tables and of indexes) and reports
/// them once, when the statement disposes it.</summary>
internal sealed class CountingSnapshot(IKvSnapshot inner, IUsageSink sink, string databaseId) : IKvSnapshot
{
    private long _rows;
    private long _bytes;

    public ulong Version => inner.Version;

    public GetResult Get(ReadOnlySpan<byte> key)
    {
        var r = inner.Get(key);
        if (r.Found)
        {
            _rows++;
            _bytes += key.Length + r.Value!.Length;
        }
        return r;
    }

    public bool TryGetLent(ReadOnlySpan<byte> key, out ReadOnlySpan<byte> value, out ulong version)
    {
        if (!inner.TryGetLent(key, out value, out version))
        {
            return false;
        }
        _rows++;
        _bytes += key.Length + value.Length;
        return true;
    }

    public IEnumerable<KvEntry> Scan(byte[] start, byte[]? end, int limit = 0, bool reverse = false)
    {
        foreach (var e in inner.Scan(start, end, limit, reverse))
        {
            _rows++;
            _bytes += e.Key.Length + e.Value.Length;
            yield return e;
        }
    }

    public ulong NewestVersion(ReadOnlySpan<byte> key) => inner.NewestVersion(key);

    public ulong NewestVersionInRange(byte[] start, byte[]? end) => inner.NewestVersionInRange(start, end);

    // Change streams are admin reads (a database move), not a statement's: not metered.
    public IReadOnlyList<KvRangeDelete> RangeDeletesSince(ulong since, byte[] start, byte[]? end) => inner.RangeDeletesSince(since, start, end);

    public IEnumerable<KvChange> ChangesSince(ulong since, byte[] start, byte[]? end) => inner.ChangesSince(since, start, end);

    public void Dispose()
    {
        if (_rows > 0)
        {
            sink.AddRead(databaseId, _rows, _bytes);
            _rows = 0;
            _bytes = 0;
        }
        inner.Dispose();
    }
}
