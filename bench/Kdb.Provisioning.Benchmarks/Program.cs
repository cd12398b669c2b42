using System.Diagnostics;
using System.Globalization;
using Kdb.Testing.Postgres;

namespace Kdb.Provisioning.Benchmarks;

/// <summary>
/// Provisioning benchmarks (issue 9): <c>./kdb bench provisioning [--quick]</c>. A private PostgreSQL 15, the real
/// control plane process (provisioning embedded, in-memory bus) and three real clustered node processes, driven
/// through the public REST API like a user. Figures go to stdout as <c>BENCH &lt;name&gt; &lt;value&gt; &lt;unit&gt;</c>
/// at the end; progress to stderr.
/// </summary>
internal static class BenchMain
{
    public static async Task<int> Main(string[] args)
    {
        var quick = args.Contains("--quick");
        // `--only ready` measures request → ready alone (with its stages), skipping backups and the concurrent burst;
        // `--only backup` measures backup and restore alone (with the codec and their baselines); `--only move` a move of a
        // loaded database (the backup sample's size) with a client writing throughout; `--only concurrent` the burst of
        // concurrent creates alone (1,000 in a full run).
        var only = args.SkipWhile(a => a != "--only").Skip(1).FirstOrDefault();
        var settings = (quick ? BenchSettings.Quick : BenchSettings.Full) with { ReadyOnly = only == "ready", BackupOnly = only == "backup", MoveOnly = only == "move", ConcurrentOnly = only == "concurrent" };
        // `--backup-mb N`: the backed-up sample's size (fixed costs weigh less in a larger one).
        if (args.SkipWhile(a => a != "--backup-mb").Skip(1).FirstOrDefault() is { } mb)
        {
            settings = settings with { BackupMegabytes = int.Parse(mb, CultureInfo.InvariantCulture) };
        }
        var figures = new List<string>();
        var clock = Stopwatch.StartNew();
        void Emit(string name, double value, string unit)
        {
            var line = string.Create(CultureInfo.InvariantCulture, $"BENCH {name} {value:0.###} {unit}");
            figures.Add(line);
            Console.Error.WriteLine("# " + line);
        }
        void Progress(string what) => Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{clock.Elapsed.TotalSeconds,6:0.0} s] {what}"));

        if (!settings.ReadyOnly && !settings.MoveOnly && !settings.ConcurrentOnly)
        {
            Progress($"codec: {settings.CodecMegabytes} MB sealed into and opened from the filesystem object store");
            await CodecBench.RunAsync(settings.CodecMegabytes, new ProvisioningOptions().BackupChunkBytes, Emit);
        }
        if (args.Contains("--codec-only"))
        {
            figures.ForEach(Console.WriteLine);
            return 0;
        }

        Progress("starting PostgreSQL 15, the control plane and three nodes");
        var postgres = new PostgresFixture();
        await postgres.InitializeAsync();
        var cloud = new BenchCloud(postgres);
        try
        {
            await cloud.InitializeAsync();
            var bench = new ProvisioningBench(cloud, postgres, settings, Emit, Progress);
            await bench.RunAsync();
        }
        finally
        {
            await cloud.DisposeAsync();
            await postgres.DisposeAsync();
        }

        Console.WriteLine($"# mode: {(quick ? "quick" : "full")}; machine: {Environment.ProcessorCount} cores, load average {LoadAverage()} at the end of the run");
        Console.WriteLine("# setup: control plane (provisioning embedded, in-memory bus) + 3 clustered nodes as real processes on loopback, private PostgreSQL 15 (fsync off) as the control plane's database; client, services and disk shared");
        foreach (var line in figures)
        {
            Console.WriteLine(line);
        }
        return 0;
    }

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ')[..3]) : "unknown";
}

/// <summary>Sizes of one run.</summary>
internal sealed record BenchSettings(int ReadyDatabases, int ConcurrentDatabases, int BackupMegabytes, int CodecMegabytes)
{
    public bool ReadyOnly { get; init; }

    public bool BackupOnly { get; init; }

    public bool MoveOnly { get; init; }

    /// <summary>Only the concurrent creates (`--only concurrent`): the issue's 1,000 at once without the minutes of the other parts.</summary>
    public bool ConcurrentOnly { get; init; }

    public static readonly BenchSettings Quick = new(20, 200, 16, 64);
    // 128 MB end to end: the control plane's fixed event round trips (~0.3 s) would cap a small sample's figure.
    public static readonly BenchSettings Full = new(60, 1000, 128, 256);
}

/// <summary>The local cloud with time-outs sized for a thousand concurrent requests on a loaded 2-core machine.</summary>
internal sealed class BenchCloud(PostgresFixture postgres) : Kdb.Testing.Provisioning.LocalCloud(postgres)
{
    protected override IEnumerable<string> ControlPlaneArguments => ["--Operations:Timeout=00:15:00", "--Operations:RepublishAfter=00:02:00", "--Provisioning:UsageInterval=00:00:00"];
}
