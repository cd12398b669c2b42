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
        Console.Error.WriteLine("usage: crash-writer <dir>");
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
}
