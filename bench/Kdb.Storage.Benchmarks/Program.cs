using System.Globalization;
using Kdb.Storage.Benchmarks;

// Storage benchmarks: `dotnet run -c Release --project bench/Kdb.Storage.Benchmarks -- [--quick]`.
// Every figure is printed at the end as `BENCH <name> <value> <unit>`; progress goes to stderr.
var quick = args.Contains("--quick");
// `--only lookup|prefixed|get|put|lookup100m` runs one part (A/B runs while tuning, or the 100M-key
// lookups alone on a loaded machine); the default runs all.
var onlyAt = Array.IndexOf(args, "--only");
var only = onlyAt >= 0 && onlyAt + 1 < args.Length ? args[onlyAt + 1] : null;
bool Part(string name) => only is null || only == name;
var figures = new List<string>();
void Emit(string name, double value, string unit)
{
    var line = string.Create(CultureInfo.InvariantCulture, $"BENCH {name} {value:0.####} {unit}");
    figures.Add(line);
    Console.Error.WriteLine("# " + line);
}

// The machine is shared: the load average goes beside the figures so they can be read in context.
static double Load() =>
    double.TryParse(File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "", NumberStyles.Float, CultureInfo.InvariantCulture, out var l) ? l : -1;
Emit("host_load_avg_1m.start", Load(), "load");

var root = Path.Combine(Path.GetTempPath(), "kdb-storage-bench-" + Environment.ProcessId);
Directory.CreateDirectory(root);
try
{
    const int TenM = 10_000_000;
    var queries = quick ? 1_000_000 : 2_000_000;
    foreach (var d in Datasets.U64Names)
    {
        if (Part("lookup"))
        {
            LookupBench.RunU64(d, TenM, queries, withSorted: !quick || d == "uniform", withHash: !quick || d == "uniform", Emit);
            GC.Collect();
        }
    }
    if (Part("lookup") || Part("prefixed"))
    {
        LookupBench.RunPrefixed(TenM, queries, Emit);
        GC.Collect();
    }
    // KDB_BENCH_SKIP_100M=1: the full 10M mode without the 100M-key lookups (about 45 minutes of
    // their own; `./kdb bench` passes no options, so this is an environment variable).
    var skip100m = Environment.GetEnvironmentVariable("KDB_BENCH_SKIP_100M") == "1";
    if (!quick && (Part("lookup") || only == "lookup100m") && (!skip100m || only == "lookup100m"))
    {
        var available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        if (available > 12L << 30)
        {
            // SortedDictionary is skipped at 100M (about 8 GB of nodes; the issue allows it).
            foreach (var d in Datasets.U64Names)
            {
                LookupBench.RunU64(d, 100_000_000, queries / 2, withSorted: false, withHash: true, Emit);
                GC.Collect();
            }
            LookupBench.RunPrefixed(100_000_000, queries / 2, Emit);
            GC.Collect();
            Emit("host_load_avg_1m.after_100m", Load(), "load");
        }
        else
        {
            Console.Error.WriteLine("# 100M lookups skipped: not enough memory");
        }
    }
    if (Part("get"))
    {
        EngineBench.RunGets(root, TenM, quick ? 1_000_000 : 2_000_000, Emit);
        GC.Collect();
    }
    if (Part("put"))
    {
        EngineBench.RunPuts(root, quick ? 2.0 : 5.0, Emit);
    }
    Emit("host_load_avg_1m.end", Load(), "load");
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
