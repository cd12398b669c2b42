using System.Buffers.Binary;
using System.Diagnostics;
using Microsoft.Data.Sqlite;

namespace Kdb.Storage.Benchmarks;

/// <summary>Engine figures (Get latency, puts, reopen) beside SQLite's, in the same run.</summary>
internal static class EngineBench
{
    private static byte[] Key16(ulong x)
    {
        var k = new byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(k, 1); // tenant 1
        BinaryPrimitives.WriteUInt64BigEndian(k.AsSpan(8), x);
        return k;
    }

    private static ulong[] KeySpace(int n)
    {
        // Uniform random suffixes under one tenant (seeded), sorted and distinct.
        var r = new Random(11);
        var xs = new ulong[n + (n / 100)];
        for (var i = 0; i < xs.Length; i++)
        {
            xs[i] = (ulong)r.NextInt64() << 1;
        }
        Array.Sort(xs);
        var u = 0;
        for (var i = 0; i < xs.Length && u < n; i++)
        {
            if (u == 0 || xs[i] != xs[u - 1])
            {
                xs[u++] = xs[i];
            }
        }
        return xs[..n];
    }

    public static void RunGets(string root, int n, int queries, Action<string, double, string> emit)
    {
        var tag = $"{n / 1_000_000}m";
        var dir = Path.Combine(root, "engine-get");
        var xs = KeySpace(n);
        var value = new byte[100];
        new Random(9).NextBytes(value);
        var sw = Stopwatch.StartNew();
        // Loaded in key order through the normal write path (WAL without fsync, delta, flushes),
        // then compacted to one segment.
        var opts = new EngineOptions { Durability = DurabilityMode.None, MemtableBytes = 256L << 20, WalFileBytes = 1L << 30, BackgroundCompaction = false };
        var engine = KvEngine.Open(dir, opts);
        var batch = new WriteBatch();
        for (var i = 0; i < n; i++)
        {
            batch.Put(Key16(xs[i]), value);
            if (batch.Count == 1000)
            {
                engine.Apply(batch);
                batch.Clear();
            }
        }
        if (batch.Count > 0)
        {
            engine.Apply(batch);
        }
        engine.Flush();
        Console.Error.WriteLine($"# engine: loaded {n} keys in {sw.Elapsed.TotalSeconds:F1}s, {engine.Stats.SegmentCount} segments");
        sw.Restart();
        engine.Compact();
        var st = engine.Stats;
        Console.Error.WriteLine($"# engine: compacted in {sw.Elapsed.TotalSeconds:F1}s to {st.SegmentCount} segment(s), {st.SegmentBytes >> 20} MiB");
        emit($"engine_model_bytes_per_key.{tag}", (double)st.ModelBytes / st.SegmentEntries, "B");
        emit($"engine_avg_log2_error.{tag}", st.AvgLog2Error, "log2");
        emit($"engine_max_error.{tag}", st.MaxError, "positions");

        // Reopen: manifest + segment open (checksums of keys, offsets, entry table, index verified).
        engine.Dispose();
        sw.Restart();
        engine = KvEngine.Open(dir, opts);
        emit($"reopen_s.{tag}", sw.Elapsed.TotalSeconds, "s");

        var r = new Random(4);
        var qk = new byte[queries][];
        for (var i = 0; i < queries; i++)
        {
            qk[i] = Key16(xs[r.Next(n)]);
        }
        // Warm: touch every page of the segment once through lookups and a scan.
        foreach (var k in qk)
        {
            if (!engine.Get(k).Found)
            {
                throw new InvalidOperationException("engine lost a key");
            }
        }
        var lat = new long[queries];
        for (var i = 0; i < queries; i++)
        {
            var s = Stopwatch.GetTimestamp();
            _ = engine.Get(qk[i]);
            lat[i] = Stopwatch.GetTimestamp() - s;
        }
        // Throughput in this thread's CPU time (see CpuClock), in a pass of its own without timestamps.
        var c0 = CpuClock.NowNs();
        foreach (var k in qk)
        {
            _ = engine.Get(k);
        }
        var total = (CpuClock.NowNs() - c0) / 1e9;
        Array.Sort(lat);
        var tickUs = 1e6 / Stopwatch.Frequency;
        emit($"get_p50_us.{tag}", lat[queries / 2] * tickUs, "us");
        emit($"get_p99_us.{tag}", lat[(int)(queries * 0.99)] * tickUs, "us");
        var engineOps = queries / total;
        emit($"get_per_s.{tag}", engineOps, "ops/s");
        var stats = engine.Stats;
        emit($"get_avg_probe_window.{tag}", stats.AvgProbeWindow, "positions");
        engine.Dispose();

        // SQLite: the same keys and values in a WITHOUT ROWID table, page cache warm.
        var dbPath = Path.Combine(root, "sqlite-get.db");
        sw.Restart();
        using var conn = new SqliteConnection($"Data Source={dbPath}");
        conn.Open();
        Exec(conn, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-4000000; PRAGMA mmap_size=4000000000;");
        Exec(conn, "CREATE TABLE kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID");
        var sorted = xs;
        using (var tx = conn.BeginTransaction())
        using (var ins = conn.CreateCommand())
        {
            ins.Transaction = tx;
            ins.CommandText = "INSERT INTO kv (k, v) VALUES ($k, $v)";
            var pk = ins.Parameters.Add("$k", SqliteType.Blob);
            var pv = ins.Parameters.Add("$v", SqliteType.Blob);
            pv.Value = value;
            ins.Prepare();
            foreach (var x in sorted)
            {
                pk.Value = Key16(x);
                ins.ExecuteNonQuery();
            }
            tx.Commit();
        }
        Console.Error.WriteLine($"# sqlite: loaded {n} rows in {sw.Elapsed.TotalSeconds:F1}s");
        using var sel = conn.CreateCommand();
        sel.CommandText = "SELECT v FROM kv WHERE k = $k";
        var sk = sel.Parameters.Add("$k", SqliteType.Blob);
        sel.Prepare();
        foreach (var k in qk)
        {
            sk.Value = k;
            if (sel.ExecuteScalar() is not byte[])
            {
                throw new InvalidOperationException("sqlite lost a key");
            }
        }
        c0 = CpuClock.NowNs();
        foreach (var k in qk)
        {
            sk.Value = k;
            _ = sel.ExecuteScalar();
        }
        var sqliteOps = queries / ((CpuClock.NowNs() - c0) / 1e9);
        emit($"get_sqlite_per_s.{tag}", sqliteOps, "ops/s");
        emit($"get_over_sqlite.{tag}", engineOps / sqliteOps, "x");
        conn.Close();
        SqliteConnection.ClearAllPools();
    }

    public static void RunPuts(string root, double seconds, Action<string, double, string> emit)
    {
        var value = new byte[100];
        // The disk's own rate of small write + fsync, in the directory the engine writes to: with one
        // put per batch and 8 writers, group commit can reach at most 8 puts per fsync.
        var fsyncs = DiskFsyncsPerSecond(root, Math.Min(seconds, 2.0));
        emit("disk_fsync_per_s", fsyncs, "fsync/s");
        emit("put_durable_ceiling_per_s", 8 * fsyncs, "puts/s");
        // Durable: 8 writers, fsync per batch shared through group commit.
        var dir = Path.Combine(root, "engine-put-durable");
        double durable;
        using (var e = KvEngine.Open(dir, new EngineOptions { Durability = DurabilityMode.SyncPerBatch }))
        {
            long count = 0;
            var until = Stopwatch.GetTimestamp() + (long)(seconds * Stopwatch.Frequency);
            var threads = new Thread[8];
            for (var t = 0; t < threads.Length; t++)
            {
                var id = (ulong)t;
                threads[t] = new Thread(() =>
                {
                    ulong i = 0;
                    var b = new WriteBatch();
                    while (Stopwatch.GetTimestamp() < until)
                    {
                        b.Clear();
                        b.Put(Key16((id << 40) | i++), value);
                        e.Apply(b);
                        Interlocked.Increment(ref count);
                    }
                });
            }
            var s = Stopwatch.GetTimestamp();
            foreach (var th in threads)
            {
                th.Start();
            }
            foreach (var th in threads)
            {
                th.Join();
            }
            var elapsed = Stopwatch.GetElapsedTime(s).TotalSeconds;
            durable = count / elapsed;
            var syncs = e.Stats.WalSyncs;
            emit("put_durable_batches_per_fsync", (double)count / Math.Max(1, syncs), "batches");
            emit("put_durable_wal_fsync_per_s", syncs / elapsed, "fsync/s");
        }
        emit("put_durable_per_s", durable, "puts/s");

        // Random keys (a skip-list search per put), then keys in ascending order (appended at the
        // delta's tail: serial ids, time series, bulk loads).
        var (cpu, wall) = NonDurablePuts(Path.Combine(root, "engine-put-nondurable"), seconds, i => (ulong)i * 0x9E3779B97F4A7C15UL);
        emit("put_nondurable_per_s", cpu, "puts/s");
        emit("put_nondurable_wall_per_s", wall, "puts/s");
        (cpu, _) = NonDurablePuts(Path.Combine(root, "engine-put-nondurable-seq"), seconds, i => (ulong)i);
        emit("put_nondurable_sequential_per_s", cpu, "puts/s");

        var full = SqlitePuts(Path.Combine(root, "sqlite-full.db"), "FULL", seconds);
        var normal = SqlitePuts(Path.Combine(root, "sqlite-normal.db"), "NORMAL", seconds);
        emit("put_sqlite_wal_full_per_s", full, "puts/s");
        emit("put_sqlite_wal_normal_per_s", normal, "puts/s");
        emit("put_durable_over_sqlite_full", durable / full, "x");
    }

    /// <summary>One thread, one put per Apply, no fsync: puts/s in the writer thread's CPU time
    /// (flushes run on the engine's background thread) and in wall time.</summary>
    private static (double Cpu, double Wall) NonDurablePuts(string dir, double seconds, Func<long, ulong> keyOf)
    {
        var value = new byte[100];
        using var e = KvEngine.Open(dir, new EngineOptions { Durability = DurabilityMode.None });
        long count = 0;
        var b = new WriteBatch();
        var s = Stopwatch.GetTimestamp();
        var c0 = CpuClock.NowNs();
        var until = s + (long)(seconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < until)
        {
            for (var j = 0; j < 1000; j++)
            {
                b.Clear();
                b.Put(Key16(keyOf(count++)), value);
                e.Apply(b);
            }
        }
        return (count / ((CpuClock.NowNs() - c0) / 1e9), count / Stopwatch.GetElapsedTime(s).TotalSeconds);
    }

    private static double DiskFsyncsPerSecond(string root, double seconds)
    {
        var path = Path.Combine(root, "fsync-probe");
        var rec = new byte[128];
        long n = 0;
        using (var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 0))
        {
            var s = Stopwatch.GetTimestamp();
            var until = s + (long)(seconds * Stopwatch.Frequency);
            while (Stopwatch.GetTimestamp() < until)
            {
                fs.Write(rec);
                fs.Flush(true);
                n++;
            }
            var rate = n / Stopwatch.GetElapsedTime(s).TotalSeconds;
            File.Delete(path);
            return rate;
        }
    }

    // SQLite allows one writer at a time, so its baseline is one connection, one row per transaction.
    private static double SqlitePuts(string path, string sync, double seconds)
    {
        using var conn = new SqliteConnection($"Data Source={path}");
        conn.Open();
        Exec(conn, $"PRAGMA journal_mode=WAL; PRAGMA synchronous={sync};");
        Exec(conn, "CREATE TABLE kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID");
        using var ins = conn.CreateCommand();
        ins.CommandText = "INSERT INTO kv (k, v) VALUES ($k, $v)";
        var pk = ins.Parameters.Add("$k", SqliteType.Blob);
        ins.Parameters.Add("$v", SqliteType.Blob).Value = new byte[100];
        ins.Prepare();
        long count = 0;
        var s = Stopwatch.GetTimestamp();
        var until = s + (long)(seconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < until)
        {
            pk.Value = Key16((ulong)count++ * 0x9E3779B97F4A7C15UL);
            ins.ExecuteNonQuery();
        }
        var rate = count / Stopwatch.GetElapsedTime(s).TotalSeconds;
        conn.Close();
        SqliteConnection.ClearAllPools();
        return rate;
    }

    private static void Exec(SqliteConnection c, string sql)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }
}
