using System.Globalization;
using Kdb.Sql.Benchmarks;

// SQL benchmarks, kdb's engine beside SQLite in-process on the same data and queries:
// `./kdb bench sql [--quick]` or `dotnet run -c Release --project bench/Kdb.Sql.Benchmarks -- [--quick]`.
// Figures are printed at the end as `BENCH <name> <value> <unit>`; progress goes to stderr.
var quick = args.Contains("--quick");
var figures = new List<string>();
void Emit(string name, double value, string unit)
{
    var line = string.Create(CultureInfo.InvariantCulture, $"BENCH {name} {value:0.####} {unit}");
    figures.Add(line);
    Console.Error.WriteLine("# " + line);
}

var root = Path.Combine(Path.GetTempPath(), "kdb-sql-bench-" + Environment.ProcessId);
Directory.CreateDirectory(root);
try
{
    var settings = quick ? BenchSettings.Quick : BenchSettings.Full;
    Console.WriteLine($"# durability: kdb storage engine DurabilityMode.Periodic (WAL fsynced every {KdbSide.SyncIntervalMs} ms); SQLite journal_mode=WAL, synchronous=NORMAL (fsync at checkpoints). Both in-process, one thread.");
    Console.WriteLine($"# sizes: point select over {settings.PointRows:N0} rows, join {settings.JoinRows:N0} x {settings.JoinRows:N0}, GROUP BY over {settings.GroupRows:N0} rows; {settings.Seconds} s per timed figure after {settings.WarmupSeconds} s warm-up");
    await using var kdb = await KdbSide.OpenAsync(Path.Combine(root, "kdb"));
    using var sqlite = SqliteSide.Open(Path.Combine(root, "sqlite.db"));
    await SqlBench.RunAsync(kdb, sqlite, settings, Emit);
}
finally
{
    try
    {
        Directory.Delete(root, recursive: true);
    }
    catch (IOException)
    {
    }
}

foreach (var line in figures)
{
    Console.WriteLine(line);
}
