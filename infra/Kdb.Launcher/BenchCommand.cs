using System.Diagnostics;
using System.Globalization;
using System.Text;
using Spectre.Console;

namespace Kdb.Launcher;

/// <summary>
/// <c>./kdb bench SUITE [--quick]</c>: runs one benchmark program of <c>bench/</c>, passing its BENCH lines through.
/// <c>all</c> runs every suite and writes the figures, each beside its in-run baseline, to <c>bench/results/&lt;date&gt;.md</c>.
/// </summary>
internal sealed class BenchCommand(KdbPaths paths, IAnsiConsole console)
{
    public static readonly IReadOnlyDictionary<string, string> Suites = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["storage"] = "Kdb.Storage.Benchmarks",
        ["raft"] = "Kdb.Raft.Benchmarks",
        ["sql"] = "Kdb.Sql.Benchmarks",
        ["pgwire"] = "Kdb.PgWire.Benchmarks",
        ["node"] = "Kdb.Node.Benchmarks",
        ["controlplane"] = "Kdb.ControlPlane.Benchmarks",
        ["provisioning"] = "Kdb.Provisioning.Benchmarks",
        ["proxy"] = "Kdb.Proxy.Benchmarks",
        ["portal"] = "Kdb.Portal.Benchmarks",
        ["e2e"] = "Kdb.EndToEnd.Benchmarks",
    };

    public async Task<int> RunAsync(string suite, bool quick, CancellationToken cancellationToken)
    {
        IEnumerable<string> names;
        if (suite == "all")
        {
            // KDB_BENCH_SUITES=a,b limits `all` to some suites (a partial report, or a retry of the ones that failed).
            var only = Environment.GetEnvironmentVariable("KDB_BENCH_SUITES")?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            names = Suites.Keys.Where(s => File.Exists(ProjectPath(s)) && (only is not { Length: > 0 } || only.Contains(s)));
        }
        else if (!Suites.ContainsKey(suite))
        {
            throw new LauncherException($"unknown suite '{suite}'; suites: {string.Join(", ", Suites.Keys)}, all", 2);
        }
        else if (!File.Exists(ProjectPath(suite)))
        {
            throw new LauncherException($"suite '{suite}' has no benchmark yet ({Path.GetRelativePath(paths.Root, ProjectPath(suite))} does not exist)", 2);
        }
        else
        {
            names = [suite];
        }

        var worst = 0;
        var figures = new List<(string Suite, string Line)>();
        foreach (var name in names)
        {
            console.MarkupLineInterpolated($"[bold]bench {name}[/]{(quick ? " (quick)" : string.Empty)}");
            List<string> args = ["run", "-c", "Release", "--project", ProjectPath(name), "--"];
            if (quick)
            {
                args.Add("--quick");
            }

            var env = new Dictionary<string, string> { ["KDB_ROOT"] = paths.Root };
            var code = suite == "all"
                ? await RunCollectingAsync(args, env, line => figures.Add((name, line)), cancellationToken)
                : await TestCommand.RunProcessAsync("dotnet", args, env, cancellationToken);
            if (code != 0)
            {
                console.MarkupLineInterpolated($"[red]bench {name} exited {code}[/]");
            }
            worst = Math.Max(worst, code);
        }

        if (suite == "all")
        {
            var file = Path.Combine(paths.Root, "bench", "results", DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) + ".md");
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            var load = File.Exists("/proc/loadavg") ? (await File.ReadAllTextAsync("/proc/loadavg", cancellationToken)).Split(' ')[0] : "unknown";
            var report = Report(figures, quick, DateTime.UtcNow, CpuModel(), Environment.ProcessorCount) + $"\nLoad average (1 min) when the run ended: {load}. Absolute figures move with it; the ratios to the in-run baselines less so.\n";
            await File.WriteAllTextAsync(file, report, cancellationToken);
            console.MarkupLineInterpolated($"wrote {Path.GetRelativePath(paths.Root, file)} ({figures.Count} figures)");
        }

        return worst;
    }

    /// <summary>Suffixes of the figures a suite measures as its in-run baseline (<c>name.postgres</c> beside <c>name</c> or <c>name.kdb</c>).</summary>
    private static readonly string[] BaselineSuffixes = ["postgres", "direct", "baseline", "sqlite"];

    /// <summary>
    /// The results page: one row per figure, with the in-run baseline of the same stem beside it (the suffix after the
    /// last dot names the side), then the machine. Baselines with no figure to stand beside get a row of their own.
    /// </summary>
    internal static string Report(IReadOnlyList<(string Suite, string Line)> lines, bool quick, DateTime when, string cpu, int cores)
    {
        var parsed = new List<(string Suite, string Name, string Value, string Unit)>();
        foreach (var (suite, line) in lines)
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length >= 4 && parts[0] == "BENCH")
            {
                parsed.Add((suite, parts[1], parts[2], string.Join(' ', parts[3..])));
            }
        }

        static (string Stem, string? Side) Split(string name) =>
            name.LastIndexOf('.') is var dot and > 0 ? (name[..dot], name[(dot + 1)..]) : (name, null);

        var baselines = parsed.Where(f => Split(f.Name).Side is { } side && BaselineSuffixes.Contains(side))
            .GroupBy(f => (f.Suite, Split(f.Name).Stem)).ToDictionary(g => g.Key, g => g.First());
        var shown = new HashSet<string>(StringComparer.Ordinal);
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"# Benchmark results, {when:yyyy-MM-dd HH:mm} UTC");
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"`./kdb bench all{(quick ? " --quick" : string.Empty)}` on {cpu}, {cores} cores. Each baseline was measured in the same run.");
        text.AppendLine();
        text.AppendLine("| suite | figure | value | baseline |");
        text.AppendLine("|---|---|---|---|");
        foreach (var f in parsed)
        {
            var (stem, side) = Split(f.Name);
            var isBaseline = side is not null && BaselineSuffixes.Contains(side);
            if (!isBaseline && (baselines.TryGetValue((f.Suite, stem), out var b) || baselines.TryGetValue((f.Suite, f.Name), out b)))
            {
                shown.Add(f.Suite + " " + b.Name);
                text.AppendLine(CultureInfo.InvariantCulture, $"| {f.Suite} | `{f.Name}` | {f.Value} {f.Unit} | {b.Value} {b.Unit} (`{b.Name}`) |");
            }
            else if (!isBaseline)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"| {f.Suite} | `{f.Name}` | {f.Value} {f.Unit} | — |");
            }
        }

        foreach (var f in parsed.Where(f => !shown.Contains(f.Suite + " " + f.Name) && Split(f.Name).Side is { } side && BaselineSuffixes.Contains(side)))
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"| {f.Suite} | `{f.Name}` (baseline) | {f.Value} {f.Unit} | — |");
        }

        if (parsed.Count == 0)
        {
            text.AppendLine("| — | no figures | — | — |");
        }

        return text.ToString();
    }

    private static string CpuModel()
    {
        try
        {
            return File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU";
        }
        catch (IOException)
        {
            return "unknown CPU";
        }
    }

    /// <summary>Runs a suite with stdout read line by line: echoed as it comes, BENCH lines also kept. Stderr stays the console's.</summary>
    private async Task<int> RunCollectingAsync(IEnumerable<string> args, IReadOnlyDictionary<string, string> env, Action<string> onBench, CancellationToken cancellationToken)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true };
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in env)
        {
            psi.Environment[key] = value;
        }

        using var process = Process.Start(psi) ?? throw new LauncherException("could not start dotnet");
        while (await process.StandardOutput.ReadLineAsync(cancellationToken) is { } line)
        {
            console.Profile.Out.Writer.WriteLine(line);
            if (line.StartsWith("BENCH ", StringComparison.Ordinal))
            {
                onBench(line);
            }
        }

        await process.WaitForExitAsync(cancellationToken);
        return process.ExitCode;
    }

    private string ProjectPath(string suite) => Path.Combine(paths.Root, "bench", Suites[suite], Suites[suite] + ".csproj");
}
