using System.Diagnostics;
using System.Text;

namespace Kdb.Node.Tests.Standalone;

/// <summary>Runs PostgreSQL 15's client programs (psql, pgbench) against a node and captures their output.</summary>
internal static class Tools
{
    public static string Bin(string name)
    {
        var fromEnv = Environment.GetEnvironmentVariable("KDB_TEST_PG_BIN");
        var directory = string.IsNullOrEmpty(fromEnv) ? "/usr/lib/postgresql/15/bin" : fromEnv;
        var path = Path.Combine(directory, name);
        return File.Exists(path) ? path : throw new FileNotFoundException($"{path} is missing: install PostgreSQL 15's client programs (apt-get install postgresql-15).", path);
    }

    public sealed record Result(int ExitCode, string Output, string Error)
    {
        public string All => Output + "\n" + Error;
    }

    public static async Task<Result> RunAsync(string program, IEnumerable<string> arguments, string password, string? stdin = null, TimeSpan? timeout = null)
    {
        var info = new ProcessStartInfo(Bin(program))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["PGPASSWORD"] = password;
        info.Environment["PGCONNECT_TIMEOUT"] = "20";
        info.Environment.Remove("PGSERVICE");
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
        }

        process.StandardInput.Close();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(3));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {string.Join(' ', arguments)} did not finish: {await output}\n{await error}");
        }

        return new Result(process.ExitCode, await output, await error);
    }

    public static Task<Result> PsqlAsync(StandaloneNode node, string user, string password, params string[] arguments) =>
        RunAsync("psql", ["-X", "-h", "127.0.0.1", "-p", node.PgPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", user, "-d", StandaloneNode.Database, "-v", "ON_ERROR_STOP=1", .. arguments], password);

    public static Task<Result> PgbenchAsync(StandaloneNode node, TimeSpan timeout, params string[] arguments) =>
        RunAsync("pgbench", ["-h", "127.0.0.1", "-p", node.PgPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", StandaloneNode.Owner, .. arguments, StandaloneNode.Database], StandaloneNode.OwnerPassword, timeout: timeout);

    public static string Describe(Result r) => new StringBuilder().Append("exit ").Append(r.ExitCode).Append('\n').Append(r.Output).Append('\n').Append(r.Error).ToString();
}
