using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Kdb.Raft.TestHost;

/// <summary>Three NodeHost processes on loopback, driven over their stdin/stdout. Compiled into the tests and the benchmarks.</summary>
internal sealed class ProcessCluster : IDisposable
{
    /// <summary>The node host built in the caller's configuration: the caller's project references tests/Kdb.Raft.TestHost
    /// (without its assembly), so <c>X/bin/&lt;Configuration&gt;/&lt;tfm&gt;</c> maps to <c>tests/Kdb.Raft.TestHost/bin/&lt;Configuration&gt;/&lt;tfm&gt;</c>.</summary>
    public static string HostDll()
    {
        var baseDir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var tfm = baseDir.Name;
        var config = baseDir.Parent!.Name;
        var repo = baseDir.Parent.Parent!.Parent!.Parent!.Parent!.FullName;
        return Path.Combine(repo, "tests", "Kdb.Raft.TestHost", "bin", config, tfm, "Kdb.Raft.TestHost.dll");
    }

    private readonly ConcurrentDictionary<string, TaskCompletionSource<string>> _pending = new();
    private readonly Process?[] _procs = new Process?[3];
    private readonly string[] _startArgs = new string[3];
    private readonly int[] _roles = new int[3];
    private readonly ConcurrentQueue<string>[] _trace = [new(), new(), new()];
    private readonly TaskCompletionSource[] _traceEnd = new TaskCompletionSource[3];
    // Request id -> when the driver wrote it and when its answer arrived (Stopwatch timestamps), with --trace only.
    private readonly ConcurrentDictionary<long, (long Sent, long Answered)> _clientTimes = new();
    private readonly bool _tracing;
    private long _nextReq;

    // extraArgs is appended to each node's command line (e.g. --async-append).
    public ProcessCluster(string dir, string hostDll, string extraArgs = "")
    {
        Dir = dir;
        _tracing = extraArgs.Contains("--trace", StringComparison.Ordinal);
        var ports = new int[3];
        for (var i = 0; i < 3; i++)
        {
            using var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            ports[i] = ((IPEndPoint)l.LocalEndpoint).Port;
        }
        var peers = string.Join(',', Enumerable.Range(0, 3).Select(i => $"{i + 1}=http://127.0.0.1:{ports[i]}"));
        for (var i = 0; i < 3; i++)
        {
            _startArgs[i] = $"\"{hostDll}\" node --id {i + 1} --dir \"{Path.Combine(dir, "n" + (i + 1))}\" --port {ports[i]} --peers {peers} {extraArgs}";
            Start(i);
        }
    }

    public string Dir { get; }

    private void Start(int i)
    {
        var psi = new ProcessStartInfo("dotnet", _startArgs[i])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, e) => OnLine(i, e.Data);
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        _procs[i] = p;
    }

    private void OnLine(int node, string? line)
    {
        if (line is null)
        {
            return;
        }
        var parts = line.Split(' ');
        switch (parts[0])
        {
            case "role":
                Volatile.Write(ref _roles[node], parts[1] == "Leader" ? int.Parse(parts[2], CultureInfo.InvariantCulture) : 0);
                break;
            case "trace":
                _trace[node].Enqueue(line);
                break;
            case "traceend":
                _traceEnd[node]?.TrySetResult();
                break;
            case "ok" or "val" or "fail":
                if (_tracing && long.TryParse(parts[1], CultureInfo.InvariantCulture, out var rid) && _clientTimes.TryGetValue(rid, out var times))
                {
                    _clientTimes[rid] = (times.Sent, System.Diagnostics.Stopwatch.GetTimestamp());
                }
                if (_pending.TryRemove(parts[1], out var tcs))
                {
                    tcs.TrySetResult(line);
                }
                break;
        }
    }

    /// <summary>The live node that last reported leadership in the highest term, or -1.</summary>
    public int Leader
    {
        get
        {
            var best = -1;
            var bestTerm = 0;
            for (var i = 0; i < 3; i++)
            {
                var t = Volatile.Read(ref _roles[i]);
                if (_procs[i] is { HasExited: false } && t > bestTerm)
                {
                    best = i;
                    bestTerm = t;
                }
            }
            return best;
        }
    }

    public async Task<string> RequestAsync(int node, string verb, string args, TimeSpan timeout)
    {
        var rid = Interlocked.Increment(ref _nextReq);
        var id = rid.ToString(CultureInfo.InvariantCulture);
        // Not inline on the output reader's thread: 64 proposers continuing there would slow the reading of every node's
        // stdout until the node's replies block its loop.
        var tcs = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = tcs;
        var p = _procs[node];
        if (p is null || p.HasExited)
        {
            return "fail";
        }
        lock (p)
        {
            if (_tracing)
            {
                _clientTimes[rid] = (System.Diagnostics.Stopwatch.GetTimestamp(), 0);
            }
            p.StandardInput.WriteLine($"{verb} {id} {args}");
            p.StandardInput.Flush();
        }
        try
        {
            return await tcs.Task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            _pending.TryRemove(id, out _);
            return "timeout";
        }
    }

    /// <summary>With <c>--trace</c>: every node's <c>trace</c> lines (index = node) and the driver's request times.</summary>
    public async Task<(string[][] NodeLines, IReadOnlyDictionary<long, (long Sent, long Answered)> Client)> CollectTraceAsync(TimeSpan timeout)
    {
        for (var i = 0; i < 3; i++)
        {
            var p = _procs[i];
            if (p is null || p.HasExited)
            {
                continue;
            }
            _traceEnd[i] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (p)
            {
                p.StandardInput.WriteLine("trace");
                p.StandardInput.Flush();
            }
            await _traceEnd[i].Task.WaitAsync(timeout);
        }
        return ([.. _trace.Select(q => q.ToArray())], _clientTimes);
    }

    /// <summary>CPU time used so far by the live node processes together.</summary>
    public TimeSpan CpuTime()
    {
        var total = TimeSpan.Zero;
        foreach (var p in _procs)
        {
            try
            {
                if (p is { HasExited: false })
                {
                    p.Refresh();
                    total += p.TotalProcessorTime;
                }
            }
            catch (InvalidOperationException)
            {
            }
        }
        return total;
    }

    /// <summary>SIGKILL: no chance to flush anything.</summary>
    public void Kill(int node)
    {
        _procs[node]?.Kill(entireProcessTree: true);
        _procs[node]?.WaitForExit();
        Volatile.Write(ref _roles[node], 0);
    }

    public void Dispose()
    {
        foreach (var p in _procs)
        {
            try
            {
                if (p is { HasExited: false })
                {
                    p.Kill(entireProcessTree: true);
                    p.WaitForExit();
                }
            }
            catch (InvalidOperationException)
            {
            }
            p?.Dispose();
        }
    }
}
