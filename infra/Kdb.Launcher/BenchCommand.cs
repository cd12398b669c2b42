using Spectre.Console;

namespace Kdb.Launcher;

/// <summary><c>./kdb bench SUITE [--quick]</c>: runs one benchmark program of <c>bench/</c>, passing its BENCH lines through.</summary>
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
            names = Suites.Keys.Where(s => File.Exists(ProjectPath(s)));
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
        foreach (var name in names)
        {
            console.MarkupLineInterpolated($"[bold]bench {name}[/]{(quick ? " (quick)" : string.Empty)}");
            List<string> args = ["run", "-c", "Release", "--project", ProjectPath(name), "--"];
            if (quick)
            {
                args.Add("--quick");
            }

            var code = await TestCommand.RunProcessAsync("dotnet", args, new Dictionary<string, string> { ["KDB_ROOT"] = paths.Root }, cancellationToken);
            worst = Math.Max(worst, code);
        }

        return worst;
    }

    private string ProjectPath(string suite) => Path.Combine(paths.Root, "bench", Suites[suite], Suites[suite] + ".csproj");
}
