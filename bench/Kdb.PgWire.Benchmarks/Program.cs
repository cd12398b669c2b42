using Kdb.Bench.Common;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Npgsql;

// pgbench against the standalone kdb node and a private PostgreSQL 15 in the same run (fsync on for both, TLS off
// for both), then the node's memory per idle connection. Prints BENCH lines; `--quick` shortens each pgbench run.
var quick = args.Contains("--quick");
var seconds = quick ? 5 : 30;
const int Scale = 10;
var root = FindRoot();
var work = Path.Combine(Path.GetTempPath(), "kdb-pgwire-bench-" + Guid.NewGuid().ToString("N")[..8]);
Directory.CreateDirectory(work);
Process? node = null;
BenchPostgres? pg = null;
try
{
    var nodePort = BenchTools.FreePort();
    var nodeData = Path.Combine(work, "node");
    node = StartNode(root, nodeData, nodePort, BenchTools.FreePort());
    await WaitForPortAsync(nodePort, node);
    pg = BenchPostgres.Start(Path.Combine(work, "postgres"));

    var kdb = new PgTarget("kdb", nodePort, "owner", BenchPostgres.Password, "app");
    var postgres = pg.Target;
    foreach (var target in new[] { postgres, kdb })
    {
        Console.Error.WriteLine($"# pgbench -i -s {Scale} on {target.Name}");
        BenchTools.Pgbench(target, TimeSpan.FromMinutes(30), "-i", "-s", Scale.ToString(CultureInfo.InvariantCulture), "-q");
    }

    foreach (var (script, figure) in new[] { ("-S", "select"), ("-N", "update") })
    {
        var tpsPostgres = BenchTools.PgbenchTps(postgres, script, seconds);
        var tpsKdb = BenchTools.PgbenchTps(kdb, script, seconds);
        Console.WriteLine(FormattableString.Invariant($"BENCH pgbench_{figure}_tps.kdb {tpsKdb:F1} tps"));
        Console.WriteLine(FormattableString.Invariant($"BENCH pgbench_{figure}_tps.postgres {tpsPostgres:F1} tps"));
        Console.WriteLine(FormattableString.Invariant($"BENCH pgbench_{figure}_over_postgres.single_node {tpsKdb / tpsPostgres:F3} x"));
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

    pg?.Dispose();
    Directory.Delete(work, recursive: true);
}

// Opens 200 idle sessions and divides the node's resident-set growth by their number.
static async Task<double> IdleConnectionKbAsync(PgTarget target, int pid)
{
    const int Connections = 200;
    var connectionString = target.ConnectionString + ";Pooling=false";
    await using (var warm = new NpgsqlConnection(connectionString))
    {
        await warm.OpenAsync();
    }

    await Task.Delay(1000);
    var before = BenchTools.RssKb(pid);
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
        return (BenchTools.RssKb(pid) - before) / (double)Connections;
    }
    finally
    {
        foreach (var c in open)
        {
            await c.DisposeAsync();
        }
    }
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
