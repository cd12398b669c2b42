using System.Globalization;
using Kdb.Storage.Benchmarks;

// Storage benchmarks: `dotnet run -c Release --project bench/Kdb.Storage.Benchmarks -- [--quick]`.
// Every figure is printed at the end as `BENCH <name> <value> <unit>`; progress goes to stderr.
var quick = args.Contains("--quick");
var figures = new List<string>();
void Emit(string name, double value, string unit)
{
    var line = string.Create(CultureInfo.InvariantCulture, $"BENCH {name} {value:0.####} {unit}");
    figures.Add(line);
    Console.Error.WriteLine("# " + line);
}

var root = Path.Combine(Path.GetTempPath(), "kdb-storage-bench-" + Environment.ProcessId);
Directory.CreateDirectory(root);
try
{
    const int TenM = 10_000_000;
    var queries = quick ? 1_000_000 : 4_000_000;
    foreach (var d in Datasets.U64Names)
    {
        LookupBench.RunU64(d, TenM, queries, withTrees: !quick || d == "uniform", Emit);
        GC.Collect();
    }
    LookupBench.RunPrefixed(TenM, queries, Emit);
    GC.Collect();
    if (!quick)
    {
        var available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        if (available > 12L << 30)
        {
            foreach (var d in Datasets.U64Names)
            {
                LookupBench.RunU64(d, 100_000_000, queries, withTrees: false, Emit);
                GC.Collect();
            }
        }
        else
        {
            Console.Error.WriteLine("# 100M lookups skipped: not enough memory");
        }
    }
    EngineBench.RunGets(root, TenM, quick ? 1_000_000 : 2_000_000, Emit);
    GC.Collect();
    EngineBench.RunPuts(root, quick ? 2.0 : 5.0, Emit);
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
Console.Error.WriteLine($"# sink {LookupBench.Sink}");
foreach (var f in figures)
{
    Console.WriteLine(f);
}
