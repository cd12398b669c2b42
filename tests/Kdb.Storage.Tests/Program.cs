namespace Kdb.Storage.Tests;

/// <summary>Entry point used only when the crash test launches this assembly as a child writer.</summary>
public static class Program
{
    /// <summary>Runs the crash-test writer: <c>crash-writer &lt;dir&gt;</c>.</summary>
    public static int Main(string[] args)
    {
        if (args.Length == 2 && args[0] == "crash-writer")
        {
            CrashWriter.Run(args[1]);
            return 0;
        }
        if (args.Length == 2 && args[0] == "crash-writers")
        {
            CrashWriter.RunConcurrent(args[1]);
            return 0;
        }
        Console.Error.WriteLine("usage: crash-writer|crash-writers <dir>");
        return 2;
    }
}

/// <summary>Writes batches forever with fsync per batch and acknowledges each on stdout.</summary>
internal static class CrashWriter
{
    public static int BatchSize(ulong id) => 1 + (int)(id % 5);

    public static byte[] KeyOf(ulong id, int j) => Keys.K($"b{id:D10}/{j}");

    public static void Run(string dir)
    {
        // Small delta so flushes, WAL rotation and compactions happen while we are killed.
        using var engine = KvEngine.Open(dir, new EngineOptions { MemtableBytes = 32 << 10, CompactionWidth = 2 });
        var rnd = new Random();
        while (true)
        {
            var id = engine.LastAppliedIndex + 1;
            var batch = new WriteBatch();
            for (var j = 0; j < BatchSize(id); j++)
            {
                var value = new byte[rnd.Next(1, 300)];
                rnd.NextBytes(value);
                batch.Put(KeyOf(id, j), value);
            }
            var v = engine.Apply(batch);
            if (v != id)
            {
                throw new InvalidOperationException($"expected version {id}, got {v}");
            }
            Console.Out.WriteLine($"ack {v}");
            Console.Out.Flush();
        }
    }

    public const int Writers = 4;

    public static byte[] KeyOf(int writer, long n, int j) => Keys.K($"g{writer}/{n:D10}/{j}");

    /// <summary>Several writers sharing group commits: each acknowledges "ack &lt;writer&gt; &lt;n&gt;" once its
    /// batch n is durable.</summary>
    public static void RunConcurrent(string dir)
    {
        using var engine = KvEngine.Open(dir, new EngineOptions { MemtableBytes = 32 << 10, CompactionWidth = 2 });
        var outLock = new object();
        var threads = new Thread[Writers];
        for (var w = 0; w < Writers; w++)
        {
            var writer = w;
            threads[w] = new Thread(() =>
            {
                var rnd = new Random(writer);
                // Resume after what an earlier round left, so batch numbers stay unique per writer.
                long n = 0;
                while (engine.Get(KeyOf(writer, n + 1, 0)).Found)
                {
                    n++;
                }
                while (true)
                {
                    n++;
                    var batch = new WriteBatch();
                    for (var j = 0; j < BatchSize((ulong)n); j++)
                    {
                        var value = new byte[rnd.Next(1, 300)];
                        rnd.NextBytes(value);
                        batch.Put(KeyOf(writer, n, j), value);
                    }
                    engine.Apply(batch);
                    lock (outLock)
                    {
                        Console.Out.WriteLine($"ack {writer} {n}");
                        Console.Out.Flush();
                    }
                }
            })
            { IsBackground = true };
            threads[w].Start();
        }
        threads[0].Join();
    }
}
