using System.Diagnostics;
using System.Xml.Linq;
using Spectre.Console;

namespace Kdb.Launcher;

/// <summary>
/// <c>./kdb test</c>: installs what the suites need, builds, runs every test project and ends with
/// one line <c>N passed, N failed</c> (<c>, N skipped</c> when any), totalled over all projects.
/// </summary>
internal sealed class TestCommand(KdbPaths paths, IAnsiConsole console)
{
    public sealed record Totals(int Passed, int Failed, int Skipped)
    {
        public override string ToString() =>
            Skipped > 0 ? $"{Passed} passed, {Failed} failed, {Skipped} skipped" : $"{Passed} passed, {Failed} failed";
    }

    public async Task<int> RunAsync(string? filter, bool soak, CancellationToken cancellationToken)
    {
        await Prerequisites.EnsureAsync(console, Prerequisites.PostgresServer, Prerequisites.RabbitMq, Prerequisites.Chromium);

        var build = await RunInheritedAsync("dotnet", ["build", paths.Solution, "-nologo", "-v", "q", "-clp:NoSummary"], null, cancellationToken);
        if (build != 0)
        {
            console.MarkupLine("[red]build failed[/]");
            console.Profile.Out.Writer.WriteLine("0 passed, 1 failed");
            return 1;
        }

        var results = Path.Combine(paths.TestResults, DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", System.Globalization.CultureInfo.InvariantCulture));
        Directory.CreateDirectory(results);
        var env = new Dictionary<string, string> { ["KDB_ROOT"] = paths.Root };
        if (soak)
        {
            env["KDB_SOAK"] = "1";
        }

        // One project at a time: each writes its own TRX (named after it), the real servers the suites
        // start do not compete for the two cores, and a crashed suite is attributed to its project.
        var projects = TestProjects(paths.Root);
        var exit = 0;
        foreach (var project in projects)
        {
            var name = Path.GetFileNameWithoutExtension(project);
            console.MarkupLineInterpolated($"[bold]── {name}[/]");
            List<string> args =
            [
                "test", project, "--no-build", "-nologo",
                "--logger", $"trx;LogFileName={name}.trx",
                "--logger", "console;verbosity=minimal",
                "--results-directory", results,
                // A hung suite must not eat CI's whole budget: dump and fail it instead.
                "--blame-hang-timeout", soak ? "120m" : "10m",
            ];
            if (!string.IsNullOrWhiteSpace(filter))
            {
                args.AddRange(["--filter", filter]);
            }

            var code = await RunInheritedAsync("dotnet", args, env, cancellationToken);
            exit = exit == 0 ? code : exit;
        }

        var totals = Summarize(results, projects.Count, exit, out var notes);
        foreach (var note in notes)
        {
            console.MarkupLineInterpolated($"[yellow]{note}[/]");
        }

        console.Profile.Out.Writer.WriteLine(totals.ToString());
        return totals.Failed > 0 || exit != 0 ? 1 : 0;
    }

    /// <summary>Every test project under <c>tests/</c>, in a stable order.</summary>
    public static IReadOnlyList<string> TestProjects(string root) =>
        Directory.EnumerateFiles(Path.Combine(root, "tests"), "*.Tests.csproj", SearchOption.AllDirectories)
            .Where(p => !p.Contains("/bin/", StringComparison.Ordinal) && !p.Contains("/obj/", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .ToList();

    /// <summary>
    /// Adds up the TRX files of one run. A project that wrote no TRX (its test host crashed) or a
    /// non-zero exit with no failed test counts as one failure, so the line never hides a broken run.
    /// </summary>
    public static Totals Summarize(string resultsDirectory, int expectedProjects, int exitCode, out List<string> notes)
    {
        notes = [];
        int passed = 0, failed = 0, skipped = 0, files = 0;
        foreach (var trx in Directory.EnumerateFiles(resultsDirectory, "*.trx", SearchOption.AllDirectories))
        {
            files++;
            var counters = XDocument.Load(trx).Descendants().FirstOrDefault(e => e.Name.LocalName == "Counters");
            if (counters is null)
            {
                notes.Add($"{Path.GetFileName(trx)} has no counters");
                failed++;
                continue;
            }

            int Get(string name) => int.TryParse(counters.Attribute(name)?.Value, out var v) ? v : 0;
            passed += Get("passed");
            failed += Get("failed") + Get("error") + Get("timeout") + Get("aborted");
            skipped += Get("notExecuted");
        }

        if (files < expectedProjects)
        {
            notes.Add($"{expectedProjects - files} test project(s) reported no results (crashed, hung or did not run): counted as failures");
            failed += expectedProjects - files;
        }

        if (exitCode != 0 && failed == 0)
        {
            notes.Add($"dotnet test exited {exitCode} without a failed test: counted as one failure");
            failed = 1;
        }

        return new Totals(passed, failed, skipped);
    }

    private static async Task<int> RunInheritedAsync(string fileName, IEnumerable<string> args, IReadOnlyDictionary<string, string>? env, CancellationToken cancellationToken)
    {
        var psi = new ProcessStartInfo(fileName) { UseShellExecute = false };
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        if (env is not null)
        {
            foreach (var (key, value) in env)
            {
                psi.Environment[key] = value;
            }
        }

        using var process = Process.Start(psi) ?? throw new LauncherException($"could not start {fileName}");
        await process.WaitForExitAsync(cancellationToken);
        return process.ExitCode;
    }

    internal static Task<int> RunProcessAsync(string fileName, IEnumerable<string> args, IReadOnlyDictionary<string, string>? env, CancellationToken cancellationToken) =>
        RunInheritedAsync(fileName, args, env, cancellationToken);
}
