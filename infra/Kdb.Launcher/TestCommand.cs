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

        // Again at the end, where a log's tail shows them: each suite's output above can be long (a failing browser test
        // prints the services' logs), and CI often keeps only the tail.
        foreach (var failure in Failures(results))
        {
            console.Profile.Out.Writer.WriteLine(failure);
        }

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
            XElement? counters;
            try
            {
                counters = XDocument.Load(trx).Descendants().FirstOrDefault(e => e.Name.LocalName == "Counters");
            }
            catch (System.Xml.XmlException)
            {
                counters = null; // a test host killed while writing it
            }

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

    /// <summary>
    /// Each failed test of the run's TRX files as a short block: its name, the first lines of its message and of its
    /// stack trace. Only the beginning of each: the whole output is in the suite's log above and in the TRX.
    /// </summary>
    public static IReadOnlyList<string> Failures(string resultsDirectory)
    {
        const int MessageLines = 12, StackLines = 6, MaxChars = 2000;
        var failures = new List<string>();
        foreach (var trx in Directory.EnumerateFiles(resultsDirectory, "*.trx", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            XDocument document;
            try
            {
                document = XDocument.Load(trx);
            }
            catch (System.Xml.XmlException e)
            {
                failures.Add($"FAILED (unreadable results) {Path.GetFileName(trx)}: {e.Message}");
                continue;
            }

            foreach (var result in document.Descendants().Where(e => e.Name.LocalName == "UnitTestResult" && (string?)e.Attribute("outcome") is "Failed" or "Error" or "Timeout" or "Aborted"))
            {
                var error = result.Descendants().FirstOrDefault(e => e.Name.LocalName == "ErrorInfo");
                string Lines(string element, int count) =>
                    string.Join('\n', (error?.Elements().FirstOrDefault(e => e.Name.LocalName == element)?.Value ?? string.Empty)
                        .Split('\n', StringSplitOptions.RemoveEmptyEntries).Take(count).Select(l => "    " + l.TrimEnd()));
                var block = $"FAILED {(string?)result.Attribute("testName")} ({Path.GetFileNameWithoutExtension(trx)}, {(string?)result.Attribute("duration")})\n{Lines("Message", MessageLines)}\n{Lines("StackTrace", StackLines)}";
                failures.Add(block.Length > MaxChars ? block[..MaxChars] + " …" : block.TrimEnd());
            }
        }

        return failures;
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
