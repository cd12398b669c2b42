using System.CommandLine;
using Spectre.Console;

namespace Kdb.Launcher;

/// <summary>The <c>./kdb</c> command line.</summary>
internal static class KdbCli
{
    public static RootCommand Build(KdbPaths paths, IAnsiConsole console)
    {
        var root = new RootCommand("Kdb.Cloud local launcher: ./kdb up brings up the whole local cloud, ./kdb test runs every test.");

        var nodes = new Option<int?>("--nodes") { Description = "Number of data-plane nodes (default: as many as the running local cloud has, else 3)" };
        var bus = new Option<string?>("--bus") { Description = "Message bus: inmemory (default; provisioning runs in the control plane) or rabbitmq (private broker, provisioning as its own process)" };
        bus.AcceptOnlyFromAmong("inmemory", "rabbitmq");
        var detach = new Option<bool>("--detach", "-d") { Description = "Return once everything is ready instead of staying in the foreground" };
        var noBuild = new Option<bool>("--no-build") { Description = "Skip the Release build" };
        var up = new Command("up", "Build and start every service (idempotent: starts only what is not running)") { nodes, bus, detach, noBuild };
        up.SetAction((result, ct) => new UpCommand(paths, console).RunAsync(result.GetValue(nodes), result.GetValue(bus), result.GetValue(detach), !result.GetValue(noBuild), ct));

        var down = new Command("down", "Stop every service; data stays under .kdb/");
        down.SetAction((_, _) => new DownCommand(paths, console).RunAsync());

        var json = new Option<bool>("--json") { Description = "Print a JSON array of {service, pid, url, ready}" };
        var status = new Command("status", "Show each service with its pid, address and readiness") { json };
        status.SetAction((result, ct) => new StatusCommand(paths, console).RunAsync(result.GetValue(json), ct));

        var service = new Argument<string>("service") { Description = "postgres, rabbitmq, controlplane, provisioning, proxy, portal, node1, node2, …" };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing as the log grows" };
        var lines = new Option<int>("--lines", "-n") { Description = "Only the last N lines (0 = all)", DefaultValueFactory = _ => 0 };
        var logs = new Command("logs", "Print a service's log") { service, follow, lines };
        logs.SetAction((result, ct) => new LogsCommand(paths, console).RunAsync(result.GetValue(service)!, result.GetValue(follow), result.GetValue(lines), ct));

        var filter = new Option<string?>("--filter") { Description = "dotnet test filter expression, passed through" };
        var soak = new Option<bool>("--soak") { Description = "Also run the long soak and fault suites (KDB_SOAK=1)" };
        var test = new Command("test", "Install test prerequisites, build, run every test; ends with 'N passed, N failed'") { filter, soak };
        test.SetAction((result, ct) => new TestCommand(paths, console).RunAsync(result.GetValue(filter), result.GetValue(soak), ct));

        var suite = new Argument<string>("suite") { Description = $"One of: {string.Join(", ", BenchCommand.Suites.Keys)}, all" };
        var quick = new Option<bool>("--quick") { Description = "Short run (about 5 minutes per suite), same BENCH lines" };
        var bench = new Command("bench", "Run a benchmark suite from bench/ and print its BENCH lines") { suite, quick };
        bench.SetAction((result, ct) => new BenchCommand(paths, console).RunAsync(result.GetValue(suite)!, result.GetValue(quick), ct));

        var mailLimit = new Option<int>("--limit", "-n") { Description = "Only the newest N messages (0 = all)", DefaultValueFactory = _ => 0 };
        var mail = new Command("mail", "List the mail the local control plane sent (.kdb/mail): newest first, with its link") { mailLimit };
        mail.SetAction((result, ct) => new MailCommand(paths, console).RunAsync(result.GetValue(mailLimit), ct));

        root.Subcommands.Add(up);
        root.Subcommands.Add(down);
        root.Subcommands.Add(status);
        root.Subcommands.Add(logs);
        root.Subcommands.Add(test);
        root.Subcommands.Add(bench);
        root.Subcommands.Add(mail);
        return root;
    }

    /// <summary>Parses and runs; bad usage prints the errors and the usage and returns 2.</summary>
    public static async Task<int> RunAsync(string[] args, KdbPaths paths, IAnsiConsole console, TextWriter error)
    {
        var root = Build(paths, console);
        var parsed = root.Parse(args);
        var output = console.Profile.Out.Writer;
        if (args.Length == 0 || parsed.Errors.Count > 0)
        {
            foreach (var parseError in parsed.Errors)
            {
                await error.WriteLineAsync("error: " + parseError.Message);
            }

            // Usage of the deepest command that parsed, so "./kdb up --nodes x" shows up's options.
            var helpArgs = parsed.CommandResult.Command == root ? new[] { "--help" } : new[] { parsed.CommandResult.Command.Name, "--help" };
            await root.Parse(helpArgs).InvokeAsync(new InvocationConfiguration { Output = output, Error = error });
            return 2;
        }

        try
        {
            return await parsed.InvokeAsync(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        }
        catch (LauncherException ex)
        {
            await error.WriteLineAsync("error: " + ex.Message);
            return ex.ExitCode;
        }
        catch (OperationCanceledException)
        {
            await error.WriteLineAsync("cancelled");
            return 130;
        }
    }
}
