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

    public void AddRead(string databaseId, long rows, long bytes) => Update(databaseId, (rows, bytes), static (c, a) =>
    {
        c.RowsRead += a.rows;
        c.BytesRead += a.bytes;
        c.Totals.RowsRead += a.rows;
        c.Totals.BytesRead += a.bytes;
    });

    public void AddWrite(string databaseId, long rows, long bytes) => Update(databaseId, (rows, bytes), static (c, a) =>
    {
        c.RowsWritten += a.rows;
        c.BytesWritten += a.bytes;
        c.Totals.RowsWritten += a.rows;
        c.Totals.BytesWritten += a.bytes;
    });

    /// <summary>Adds statement time in <see cref="System.Diagnostics.Stopwatch"/> ticks (summed before rounding, so short statements count).</summary>
    public void AddStatementTime(string databaseId, long stopwatchTicks) => Update(databaseId, stopwatchTicks, static (c, ticks) =>
    {
        c.CpuTicks += ticks;
        c.Totals.StatementTicks += ticks;
    });

    public void Connected(string databaseId, int delta) => Update(databaseId, delta, static (c, d) =>
    {
        c.OpenConnections += d;
        if (d > 0)
        {
            c.Connections++;
            c.Totals.Connections++;
        }
    });

    /// <summary>Applies an update to a database's counters under their lock; counters a seal retired meanwhile are replaced
    /// by fresh ones, so no increment is lost.</summary>
    private void Update<T>(string databaseId, T argument, Action<Counters, T> update)
    {
        while (true)
        {
            var c = _live.GetOrAdd(databaseId, static _ => new Counters());
            lock (c)
            {
                if (!c.Retired)
                {
                    update(c, argument);
                    return;
                }
            }
        }
    }

    /// <summary>Databases with counters in memory now (those active since the last seal or holding connections).</summary>
    public int TrackedDatabases => _live.Count;

    /// <summary>Totals since this process started (or since the database was last idle through a whole seal) of every
    /// tracked database, for the top-N metrics. Visits each under its lock; no allocation per database.</summary>
    public void VisitTotals<TState>(ref TState state, VisitTotalsAction<TState> visit)
    {
        foreach (var (db, c) in _live)
        {
            DatabaseTotals totals;
            lock (c)
            {
                totals = c.Totals with { OpenConnections = c.OpenConnections };
            }
            visit(ref state, db, totals);
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
            long rowsRead, rowsWritten, bytesRead, bytesWritten, cpu, connections;
            lock (c)
            {
                rowsRead = c.RowsRead;
                rowsWritten = c.RowsWritten;
                bytesRead = c.BytesRead;
                bytesWritten = c.BytesWritten;
                cpu = c.CpuTicks * 1000 / System.Diagnostics.Stopwatch.Frequency;
                // Keep the sub-millisecond remainder for the next record.
                c.CpuTicks -= cpu * System.Diagnostics.Stopwatch.Frequency / 1000;
                connections = c.Connections + c.OpenConnections;
                c.RowsRead = c.RowsWritten = c.BytesRead = c.BytesWritten = c.Connections = 0;
                if (rowsRead == 0 && rowsWritten == 0 && bytesRead == 0 && bytesWritten == 0 && cpu == 0 && connections == 0)
                {
                    // Idle through a whole seal: its counters leave memory (an idle database costs nothing here); a
                    // writer holding this object sees it retired and adds to a fresh one.
                    c.Retired = true;
                    _live.TryRemove(new KeyValuePair<string, Counters>(db, c));
                    continue;
                }
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

    // Guarded by its own lock: a seal must read and reset a database's counters at once, and retire idle ones without
    // losing an increment that races with it.
    private sealed class Counters
    {
        public long RowsRead;
        public long RowsWritten;
        public long BytesRead;
        public long BytesWritten;
        public long CpuTicks;
        public long Connections;
        public long OpenConnections;
        public bool Retired;
        public DatabaseTotals Totals;
    }
}

/// <summary>What a database did since its counters were created (the per-database metrics).</summary>
public record struct DatabaseTotals(long RowsRead, long RowsWritten, long BytesRead, long BytesWritten, long StatementTicks, long Connections, long OpenConnections);

public delegate void VisitTotalsAction<TState>(ref TState state, string databaseId, DatabaseTotals totals);

/// <summary>One sealed usage record (DESIGN's usage batch fields).</summary>
public sealed record UsageRecordData(ulong Sequence, string DatabaseId, long HourStartUnix, long RowsRead, long RowsWritten, long BytesRead, long BytesWritten,
    long StorageBytes, long CpuMs, long Connections);
