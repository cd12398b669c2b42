using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Npgsql;

// pgbench against the standalone kdb node and a private PostgreSQL 15 in the same run (fsync on for both, TLS off
// for both), then the node's memory per idle connection. Prints BENCH lines; `--quick` shortens each pgbench run.
var quick = args.Contains("--quick");
var seconds = quick ? 5 : 30;
const int Scale = 10;
var pgBin = Environment.GetEnvironmentVariable("KDB_TEST_PG_BIN") is { Length: > 0 } b ? b : "/usr/lib/postgresql/15/bin";
var root = FindRoot();
var work = Path.Combine(Path.GetTempPath(), "kdb-pgwire-bench-" + Guid.NewGuid().ToString("N")[..8]);
Directory.CreateDirectory(work);
var isRoot = Environment.UserName == "root";
Process? node = null;
string? pgData = null;
try
{
    var nodePort = FreePort();
    var nodeData = Path.Combine(work, "node");
    node = StartNode(root, nodeData, nodePort, FreePort());
    await WaitForPortAsync(nodePort, node);

    var pgPort = FreePort();
    pgData = Path.Combine(work, "pg");
    StartPostgres(pgBin, pgData, pgPort, isRoot);

    const string Password = "bench-secret";
    var kdb = new Target("kdb", nodePort, "owner", Password, "app");
    var postgres = new Target("postgres", pgPort, "postgres", Password, "postgres");
    foreach (var target in new[] { postgres, kdb })
    {
        Console.Error.WriteLine($"# pgbench -i -s {Scale} on {target.Name}");
        Pgbench(pgBin, target, TimeSpan.FromMinutes(30), "-i", "-s", Scale.ToString(CultureInfo.InvariantCulture), "-q");
    }

    foreach (var (script, figure) in new[] { ("-S", "select"), ("-N", "update") })
    {
        var tps = new Dictionary<string, double>();
        foreach (var target in new[] { postgres, kdb })
        {
            var output = Pgbench(pgBin, target, TimeSpan.FromSeconds(seconds + 120), script, "-c", "8", "-j", "2", "-M", "prepared", "--max-tries=10", "-T", seconds.ToString(CultureInfo.InvariantCulture));
            var failed = Regex.Match(output, @"number of failed transactions: (\d+)");
            if (failed.Success && failed.Groups[1].Value != "0")
            {
                Console.Error.WriteLine($"# {target.Name} {script}: {failed.Groups[1].Value} failed transactions");
            }

            tps[target.Name] = double.Parse(Regex.Match(output, @"tps = ([\d.]+) \(without initial connection time\)").Groups[1].Value, CultureInfo.InvariantCulture);
        }

        Console.WriteLine(FormattableString.Invariant($"BENCH pgbench_{figure}_tps.kdb {tps["kdb"]:F1} tps"));
        Console.WriteLine(FormattableString.Invariant($"BENCH pgbench_{figure}_tps.postgres {tps["postgres"]:F1} tps"));
        Console.WriteLine(FormattableString.Invariant($"BENCH pgbench_{figure}_over_postgres.single_node {tps["kdb"] / tps["postgres"]:F3} x"));
    }

    Console.WriteLine(FormattableString.Invariant($"BENCH pgwire_idle_conn_kb {await IdleConnectionKbAsync(kdb, node.Id):F1} KB"));
}
finally
{
    NpgsqlConnection.ClearAllPools();
    if (node is { HasExited: false })
    {
        node.Kill(entireProcessTree: true);
        node.WaitForExit();
    }

    if (pgData is not null)
    {
        Run(isRoot ? "runuser" : Path.Combine(pgBin, "pg_ctl"), isRoot ? ["-u", "postgres", "--", Path.Combine(pgBin, "pg_ctl"), "-D", pgData, "-m", "immediate", "stop"] : ["-D", pgData, "-m", "immediate", "stop"], TimeSpan.FromMinutes(1), check: false);
    }

    Directory.Delete(work, recursive: true);
}

// Opens 200 idle sessions and divides the node's resident-set growth by their number.
static async Task<double> IdleConnectionKbAsync(Target target, int pid)
{
    const int Connections = 200;
    var connectionString = target.ConnectionString + ";Pooling=false";
    await using (var warm = new NpgsqlConnection(connectionString))
    {
        await warm.OpenAsync();
    }

    await Task.Delay(1000);
    var before = RssKb(pid);
    var open = new List<NpgsqlConnection>();
    try
    {
        for (var i = 0; i < Connections; i++)
        {
            var c = new NpgsqlConnection(connectionString);
            await c.OpenAsync();
            open.Add(c);
        }

        await Task.Delay(2000);
        return (RssKb(pid) - before) / (double)Connections;
    }
    finally
    {
        foreach (var c in open)
        {
            await c.DisposeAsync();
        }
    }
}

static long RssKb(int pid)
{
    foreach (var line in File.ReadLines($"/proc/{pid}/status"))
    {
        if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
        {
            return long.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        }
    }

    throw new InvalidOperationException("no VmRSS in /proc status");
}

static Process StartNode(string root, string dataDirectory, int pgPort, int managementPort)
{
    var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/')).Parent!.Name;
    var dll = Path.Combine(root, "dataplane", "Kdb.Node", "bin", configuration, "net10.0", "Kdb.Node.dll");
    if (!File.Exists(dll))
    {
        throw new FileNotFoundException($"{dll} is missing: build dataplane/Kdb.Node -c {configuration}", dll);
    }

    var info = new ProcessStartInfo(Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet")
    {
        UseShellExecute = false,
        RedirectStandardOutput = true,
        RedirectStandardError = true,
    };
    foreach (var a in new[] { "exec", dll, "--standalone", "--Node:DataDirectory=" + dataDirectory, "--Node:PgPort=" + pgPort, "--Node:ManagementPort=" + managementPort })
    {
        info.ArgumentList.Add(a);
    }

    info.Environment["Standalone__Databases__app__Roles__owner__Password"] = "bench-secret";
    info.Environment["Standalone__MaxConnections"] = "300";
    info.Environment["Standalone__Durability"] = "SyncPerBatch";
    info.Environment["Logging__LogLevel__Default"] = "Warning";
    var process = Process.Start(info)!;
    process.OutputDataReceived += (_, _) => { };
    process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { Console.Error.WriteLine("# node: " + e.Data); } };
    process.BeginOutputReadLine();
    process.BeginErrorReadLine();
    return process;
}

static void StartPostgres(string pgBin, string data, int port, bool isRoot)
{
    Directory.CreateDirectory(data);
    var pwFile = Path.Combine(Path.GetDirectoryName(data)!, "pwfile");
    File.WriteAllText(pwFile, "bench-secret\n");
    if (isRoot)
    {
        Run("chown", ["-R", "postgres:postgres", Path.GetDirectoryName(data)!], TimeSpan.FromMinutes(1));
        Run("chmod", ["755", Path.GetDirectoryName(data)!], TimeSpan.FromMinutes(1));
    }

    string[] initdb = [Path.Combine(pgBin, "initdb"), "-D", data, "-U", "postgres", "--auth=scram-sha-256", "--pwfile=" + pwFile, "-E", "UTF8", "--locale=C"];
    string[] start = [Path.Combine(pgBin, "pg_ctl"), "-D", data, "-w", "-l", Path.Combine(data, "log"), "-o",
        $"-p {port} -c listen_addresses=127.0.0.1 -k {Path.GetDirectoryName(data)} -c fsync=on -c synchronous_commit=on -c max_connections=300", "start"];
    foreach (var command in new[] { initdb, start })
    {
        if (isRoot)
        {
            Run("runuser", ["-u", "postgres", "--", .. command], TimeSpan.FromMinutes(3));
        }
        else
        {
            Run(command[0], command[1..], TimeSpan.FromMinutes(3));
        }
    }
}

static string Pgbench(string pgBin, Target target, TimeSpan timeout, params string[] arguments) =>
    Run(Path.Combine(pgBin, "pgbench"), ["-h", "127.0.0.1", "-p", target.Port.ToString(CultureInfo.InvariantCulture), "-U", target.User, .. arguments, target.Database], timeout, password: target.Password);

static string Run(string file, IEnumerable<string> arguments, TimeSpan timeout, string? password = null, bool check = true)
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

static async Task WaitForPortAsync(int port, Process process)
{
    var deadline = DateTime.UtcNow.AddMinutes(2);
    while (DateTime.UtcNow < deadline)
    {
        if (process.HasExited)
        {
            throw new InvalidOperationException($"the node exited with {process.ExitCode}");
        }

        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, port);
            return;
        }
        catch (SocketException)
        {
            await Task.Delay(200);
        }
    }

    throw new TimeoutException("the node did not listen within 2 minutes");
}

static int FreePort()
{
    using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
    return ((IPEndPoint)socket.LocalEndPoint!).Port;
}

static string FindRoot()
{
    for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
    {
        if (File.Exists(Path.Combine(d.FullName, "global.json")) && File.Exists(Path.Combine(d.FullName, "Directory.Build.props")))
        {
            return d.FullName;
        }
    }

    throw new DirectoryNotFoundException("repository root not found");
}

internal sealed record Target(string Name, int Port, string User, string Password, string Database)
{
    public string ConnectionString => $"Host=127.0.0.1;Port={Port};Username={User};Password={Password};Database={Database};Timeout=60";
}
