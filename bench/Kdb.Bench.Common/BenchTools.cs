using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace Kdb.Bench.Common;

/// <summary>A PostgreSQL-protocol endpoint pgbench can run against.</summary>
public sealed record PgTarget(string Name, int Port, string User, string Password, string Database)
{
    public string ConnectionString => $"Host=127.0.0.1;Port={Port};Username={User};Password={Password};Database={Database};Timeout=60";
}

/// <summary>Child processes and pgbench, as the benchmarks run them.</summary>
public static partial class BenchTools
{
    public static string PgBin => Environment.GetEnvironmentVariable("KDB_TEST_PG_BIN") is { Length: > 0 } b ? b : "/usr/lib/postgresql/15/bin";

    /// <summary>Runs a program to completion and returns stdout and stderr; throws on a non-zero exit when <paramref name="check"/>.</summary>
    public static string Run(string file, IEnumerable<string> arguments, TimeSpan timeout, string? password = null, bool check = true)
    {
        var info = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in arguments)
        {
            info.ArgumentList.Add(a);
        }
        if (password is not null)
        {
            info.Environment["PGPASSWORD"] = password;
        }
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', arguments)} timed out");
        }
        var output = stdout.Result + stderr.Result;
        if (check && process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', arguments)} exited {process.ExitCode}: {output}");
        }
        return output;
    }

    public static string Pgbench(PgTarget target, TimeSpan timeout, params string[] arguments) =>
        Run(Path.Combine(PgBin, "pgbench"), ["-h", "127.0.0.1", "-p", target.Port.ToString(CultureInfo.InvariantCulture), "-U", target.User, .. arguments, target.Database], timeout, password: target.Password);

    /// <summary>Runs a timed pgbench script (8 clients, prepared, retries) and returns its TPS without connection time.</summary>
    public static double PgbenchTps(PgTarget target, string script, int seconds, int clients = 8)
    {
        var output = Pgbench(target, TimeSpan.FromSeconds(seconds + 180), script, "-c", clients.ToString(CultureInfo.InvariantCulture), "-j", "2", "-M", "prepared", "--max-tries=10",
            "-T", seconds.ToString(CultureInfo.InvariantCulture));
        var failed = FailedRegex().Match(output);
        if (failed.Success && failed.Groups[1].Value != "0")
        {
            Console.Error.WriteLine($"# {target.Name} {script}: {failed.Groups[1].Value} failed transactions");
        }
        return double.Parse(TpsRegex().Match(output).Groups[1].Value, CultureInfo.InvariantCulture);
    }

    public static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    /// <summary>Resident set size of a process, from /proc.</summary>
    public static long RssKb(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
            }
        }
        return 0;
    }

    public static void Figure(string name, double value, string unit) =>
        Console.WriteLine(FormattableString.Invariant($"BENCH {name} {value:0.###} {unit}"));

    [GeneratedRegex(@"number of failed transactions: (\d+)")]
    private static partial Regex FailedRegex();

    [GeneratedRegex(@"tps = ([\d.]+) \(without initial connection time\)")]
    private static partial Regex TpsRegex();
}

/// <summary>A private PostgreSQL 15 with durable settings (fsync on), the baseline of the pgbench figures.</summary>
public sealed class BenchPostgres : IDisposable
{
    public const string Password = "bench-secret";
    private readonly string _data;
    private readonly bool _isRoot = Environment.UserName == "root";

    private BenchPostgres(string data, int port)
    {
        _data = data;
        Port = port;
    }

    public int Port { get; }

    public PgTarget Target => new("postgres", Port, "postgres", Password, "postgres");

    public static BenchPostgres Start(string workDirectory)
    {
        var data = Path.Combine(workDirectory, "pg");
        var port = BenchTools.FreePort();
        Directory.CreateDirectory(data);
        var pwFile = Path.Combine(workDirectory, "pwfile");
        File.WriteAllText(pwFile, Password + "\n");
        var pg = new BenchPostgres(data, port);
        if (pg._isRoot)
        {
            BenchTools.Run("chown", ["-R", "postgres:postgres", workDirectory], TimeSpan.FromMinutes(1));
            BenchTools.Run("chmod", ["755", workDirectory], TimeSpan.FromMinutes(1));
        }
        pg.RunAsPostgres([Path.Combine(BenchTools.PgBin, "initdb"), "-D", data, "-U", "postgres", "--auth=scram-sha-256", "--pwfile=" + pwFile, "-E", "UTF8", "--locale=C"]);
        pg.RunAsPostgres([Path.Combine(BenchTools.PgBin, "pg_ctl"), "-D", data, "-w", "-l", Path.Combine(data, "log"), "-o",
            $"-p {port} -c listen_addresses=127.0.0.1 -k {workDirectory} -c fsync=on -c synchronous_commit=on -c max_connections=300", "start"]);
        return pg;
    }

    public void Dispose() =>
        RunAsPostgres([Path.Combine(BenchTools.PgBin, "pg_ctl"), "-D", _data, "-m", "immediate", "stop"], check: false);

    private void RunAsPostgres(string[] command, bool check = true)
    {
        if (_isRoot)
        {
            BenchTools.Run("runuser", ["-u", "postgres", "--", .. command], TimeSpan.FromMinutes(3), check: check);
        }
        else
        {
            BenchTools.Run(command[0], command[1..], TimeSpan.FromMinutes(3), check: check);
        }
    }
}
