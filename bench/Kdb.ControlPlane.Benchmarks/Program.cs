using System.Diagnostics;
using System.Globalization;

namespace Kdb.ControlPlane.Benchmarks;

/// <summary>
/// Control-plane benchmarks (issue 8): <c>./kdb bench controlplane [--quick]</c> or
/// <c>dotnet run -c Release --project bench/Kdb.ControlPlane.Benchmarks -- [--quick]</c>. A private PostgreSQL 15
/// and the control plane in this process on a real Kestrel port; figures are printed at the end as
/// <c>BENCH &lt;name&gt; &lt;value&gt; &lt;unit&gt;</c>, progress goes to stderr. The class is not called
/// <c>Program</c> so that it does not hide the control plane's own, which the host starts.
/// </summary>
internal static class BenchMain
{
    public static async Task Main(string[] args)
    {
        var quick = args.Contains("--quick");
        var settings = quick ? BenchSettings.Quick : BenchSettings.Full;
        // --only tokens,ingest (any of create, list, tokens, ingest) runs a subset, for profiling one path.
        var onlyAt = Array.IndexOf(args, "--only");
        var only = onlyAt >= 0 && onlyAt + 1 < args.Length ? args[onlyAt + 1].Split(',', StringSplitOptions.RemoveEmptyEntries) : null;
        bool Runs(string part) => only is null || only.Contains(part, StringComparer.Ordinal);
        var figures = new List<string>();
        void Emit(string name, double value, string unit)
        {
            var line = string.Create(CultureInfo.InvariantCulture, $"BENCH {name} {value:0.###} {unit}");
            figures.Add(line);
            Console.Error.WriteLine("# " + line);
        }

        var clock = Stopwatch.StartNew();
        void Progress(string what) => Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{clock.Elapsed.TotalSeconds,6:0.0} s] {what}"));

        Progress("starting PostgreSQL 15 and the control plane");
        await using var host = await ControlPlaneHost.StartAsync();
        const string Email = "bench-owner@example.com";
        const string Password = "a long enough benchmark password";
        var (userId, userToken) = await host.SignupAsync(Email, Password);

        Progress($"seeding {settings.TotalDatabases:N0} databases");
        var seedClock = Stopwatch.StartNew();
        var seeded = await Seeder.SeedAsync(host.ConnectionString, userId, settings.Orgs, settings.DatabasesPerOrg, CancellationToken.None);
        var seedSeconds = seedClock.Elapsed.TotalSeconds;

        var bench = new ControlPlaneBench(host, seeded, userToken, settings, Emit);
        Progress("baselines");
        await bench.BaselinesAsync();
        var create = double.NaN;
        var list = double.NaN;
        var tokens = double.NaN;
        var ingest = double.NaN;
        if (Runs("create"))
        {
            Progress($"create: {settings.Creates} timed creates after {settings.CreateWarmup} warm-up");
            create = await bench.CreateAsync();
        }

        if (Runs("list"))
        {
            Progress($"list: {settings.Lists} timed requests per endpoint after {settings.ListWarmup} warm-up");
            list = await bench.ListAsync();
        }

        if (Runs("tokens"))
        {
            Progress($"tokens: {settings.TokenWorkers} concurrent clients, {settings.TokenSeconds.TotalSeconds} s per grant");
            tokens = await bench.TokensAsync(Email, Password);
        }

        if (Runs("ingest"))
        {
            Progress($"usage ingest: {settings.IngestWorkers} senders, batches of {settings.BatchSize:N0}, {settings.IngestSeconds.TotalSeconds} s");
            ingest = await bench.IngestAsync();
        }

        Progress("done");

        static string Verdict(bool met) => met ? "met" : "MISSED";
        if (only is not null)
        {
            Console.WriteLine($"# only: {string.Join(',', only)} (figures of the other parts not measured)");
        }

        Console.WriteLine($"# mode: {(quick ? "quick" : "full")}; machine: {Environment.ProcessorCount} cores, load average {LoadAverage()} at the end of the run");
        Console.WriteLine("# setup: private PostgreSQL 15 (fsync off, as Kdb.Testing starts it) and the control plane in this process on a real Kestrel loopback port; client, server and database share the machine");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"# rate limits raised through RateLimits:TokenRequestsPerMinute and RateLimits:ApiRequestsPerMinute = {ControlPlaneHost.RaisedRateLimitPerMinute:N0}: the figures measure the service, not the limiter"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"# seeded {settings.TotalDatabases:N0} databases ({settings.Orgs} enterprise orgs x {settings.DatabasesPerOrg}) with binary COPY straight into orgs, memberships, databases, database_roles, operations and audit_log (one owner role, one succeeded operation and one audit entry per database), then ANALYZE: {seedSeconds:0.0} s"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"# create: {settings.Creates} sequential POST /v1/orgs/{{orgId}}/databases over 5 seeded orgs (202, provisioning not included)"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"# list: {settings.Lists} sequential GETs of the first page (50 items) of each of /v1/orgs/{{orgId}}/databases and /v1/orgs/{{orgId}}/audit-log, over all seeded orgs; cp_list_p95_ms is the p95 of both together"));
        Console.WriteLine($"# tokens: {settings.TokenWorkers} concurrent closed-loop clients; client_credentials over the proxy, node and provisioning clients; refresh_token with rotation, one family per client; cp_tokens_per_s is the lower of the two");
        Console.WriteLine($"# usage: {settings.IngestWorkers} concurrent senders (service token of kdb-node), batches of {settings.BatchSize:N0} records over 1,000 databases each; every acknowledged record checked to have its receipt");
        if (!double.IsNaN(create))
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"# target cp_create_db_p95_ms <= 50 ms: {create:0.##} ms, {Verdict(create <= 50)}"));
        }

        if (!double.IsNaN(list))
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"# target cp_list_p95_ms <= 30 ms: {list:0.##} ms, {Verdict(list <= 30)}"));
        }

        if (!double.IsNaN(tokens))
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"# target cp_tokens_per_s >= 1,000 tokens/s: {tokens:0} tokens/s, {Verdict(tokens >= 1_000)}"));
        }

        if (!double.IsNaN(ingest))
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"# target cp_usage_ingest_per_s >= 50,000 records/s: {ingest:0} records/s, {Verdict(ingest >= 50_000)}"));
        }

        foreach (var line in figures)
        {
            Console.WriteLine(line);
        }
    }

    private static string LoadAverage()
    {
        try
        {
            var parts = File.ReadAllText("/proc/loadavg").Split(' ');
            return string.Join(' ', parts[0], parts[1], parts[2]);
        }
        catch (IOException)
        {
            return "unknown";
        }
    }
}
