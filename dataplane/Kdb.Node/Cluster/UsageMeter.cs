using System.Collections.Concurrent;
using System.Text.Json;

namespace Kdb.Node.Cluster;

/// <summary>
/// Per-database usage counters of this node. Counters accumulate in memory and are sealed every few seconds into
/// numbered records appended to <c>usage.jsonl</c>; readers fetch records after a cursor, so the control plane
/// counts each one once (it ignores a (node, sequence) it has seen) and a restart never re-issues a number.
/// </summary>
public sealed class UsageMeter : Kdb.Cluster.IUsageSink, IDisposable
{
    private readonly ConcurrentDictionary<string, Counters> _live = new(StringComparer.Ordinal);
    private readonly List<UsageRecordData> _sealed = [];
    private readonly Lock _sealLock = new();
    private readonly string _path;
    private readonly TimeProvider _time;
    private readonly Func<string, long> _storageBytes;
    private ulong _sequence;

    public UsageMeter(string dataDirectory, TimeProvider time, Func<string, long> storageBytes)
    {
        _path = Path.Combine(dataDirectory, "usage.jsonl");
        _time = time;
        _storageBytes = storageBytes;
        if (File.Exists(_path))
        {
            foreach (var line in File.ReadLines(_path))
            {
                if (line.Length == 0)
                {
                    continue;
                }
                try
                {
                    var record = JsonSerializer.Deserialize<UsageRecordData>(line);
                    if (record is not null)
                    {
                        _sealed.Add(record);
                        _sequence = Math.Max(_sequence, record.Sequence);
                    }
                }
                catch (JsonException)
                {
                    // A torn last line from a crash: its counters were never handed out.
                }
            }
        }
    }

    public void AddRead(string databaseId, long rows, long bytes)
    {
        var c = _live.GetOrAdd(databaseId, static _ => new Counters());
        Interlocked.Add(ref c.RowsRead, rows);
        Interlocked.Add(ref c.BytesRead, bytes);
    }

    public void AddWrite(string databaseId, long rows, long bytes)
    {
        var c = _live.GetOrAdd(databaseId, static _ => new Counters());
        Interlocked.Add(ref c.RowsWritten, rows);
        Interlocked.Add(ref c.BytesWritten, bytes);
    }

    /// <summary>Adds statement time in <see cref="System.Diagnostics.Stopwatch"/> ticks (summed before rounding, so short statements count).</summary>
    public void AddStatementTime(string databaseId, long stopwatchTicks)
    {
        var c = _live.GetOrAdd(databaseId, static _ => new Counters());
        Interlocked.Add(ref c.CpuTicks, stopwatchTicks);
    }

    public void Connected(string databaseId, int delta)
    {
        var c = _live.GetOrAdd(databaseId, static _ => new Counters());
        Interlocked.Add(ref c.OpenConnections, delta);
        if (delta > 0)
        {
            Interlocked.Increment(ref c.Connections);
        }
    }

    /// <summary>Turns what accumulated into numbered records (durably) and returns those after <paramref name="since"/>.</summary>
    public (IReadOnlyList<UsageRecordData> Records, ulong Cursor) ReadSince(ulong since)
    {
        lock (_sealLock)
        {
            Seal();
            var list = new List<UsageRecordData>();
            foreach (var r in _sealed)
            {
                if (r.Sequence > since)
                {
                    list.Add(r);
                }
            }
            return (list, _sequence);
        }
    }

    private void Seal()
    {
        var hour = _time.GetUtcNow();
        var hourStart = new DateTimeOffset(hour.Year, hour.Month, hour.Day, hour.Hour, 0, 0, TimeSpan.Zero).ToUnixTimeSeconds();
        var fresh = new List<UsageRecordData>();
        foreach (var (db, c) in _live)
        {
            var rowsRead = Interlocked.Exchange(ref c.RowsRead, 0);
            var rowsWritten = Interlocked.Exchange(ref c.RowsWritten, 0);
            var bytesRead = Interlocked.Exchange(ref c.BytesRead, 0);
            var bytesWritten = Interlocked.Exchange(ref c.BytesWritten, 0);
            var ticks = Interlocked.Exchange(ref c.CpuTicks, 0);
            var cpu = ticks * 1000 / System.Diagnostics.Stopwatch.Frequency;
            // Keep the sub-millisecond remainder for the next record.
            Interlocked.Add(ref c.CpuTicks, ticks - (cpu * System.Diagnostics.Stopwatch.Frequency / 1000));
            var connections = Interlocked.Exchange(ref c.Connections, 0) + Volatile.Read(ref c.OpenConnections);
            if (rowsRead == 0 && rowsWritten == 0 && bytesRead == 0 && bytesWritten == 0 && cpu == 0 && connections == 0)
            {
                continue;
            }
            fresh.Add(new UsageRecordData(++_sequence, db, hourStart, rowsRead, rowsWritten, bytesRead, bytesWritten, _storageBytes(db), cpu, connections));
        }
        if (fresh.Count == 0)
        {
            return;
        }
        using (var stream = new FileStream(_path, FileMode.Append, FileAccess.Write))
        using (var writer = new StreamWriter(stream))
        {
            foreach (var r in fresh)
            {
                writer.WriteLine(JsonSerializer.Serialize(r));
            }
            writer.Flush();
            stream.Flush(flushToDisk: true);
        }
        _sealed.AddRange(fresh);
        // Keep a day's worth in memory: a reader further behind than that starts from what remains.
        if (_sealed.Count > 100_000)
        {
            _sealed.RemoveRange(0, _sealed.Count - 100_000);
        }
    }

    public void Dispose()
    {
    }

    private sealed class Counters
    {
        public long RowsRead;
        public long RowsWritten;
        public long BytesRead;
        public long BytesWritten;
        public long CpuTicks;
        public long Connections;
        public long OpenConnections;
    }
}

/// <summary>One sealed usage record (DESIGN's usage batch fields).</summary>
public sealed record UsageRecordData(ulong Sequence, string DatabaseId, long HourStartUnix, long RowsRead, long RowsWritten, long BytesRead, long BytesWritten,
    long StorageBytes, long CpuMs, long Connections);
