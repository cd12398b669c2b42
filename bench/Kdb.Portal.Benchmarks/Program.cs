using System.Diagnostics;
using System.Globalization;
using System.Net;

namespace Kdb.Portal.Benchmarks;

/// <summary>
/// Portal benchmarks (issue 11): <c>./kdb bench portal [--quick]</c>. First render of each page in Debian's headless
/// Chromium, with 1,000 databases in the org, against the control plane's own answer time for the API calls that
/// page makes (the baseline, measured in the same run). Figures go to stdout as <c>BENCH &lt;name&gt; &lt;value&gt;
/// &lt;unit&gt;</c>, progress to stderr. Not called <c>Program</c>: that name is the control plane's, which the host starts.
/// </summary>
internal static class BenchMain
{
    private const int Databases = 1_000;

    public static async Task<int> Main(string[] args)
    {
        var quick = args.Contains("--quick");
        var (warmup, timed) = quick ? (1, 5) : (5, 30);
        var clock = Stopwatch.StartNew();
        void Progress(string what) => Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{clock.Elapsed.TotalSeconds,6:0.0} s] {what}"));

        Progress("starting PostgreSQL 15, the control plane and the portal");
        await using var cloud = await BenchCloud.StartAsync();
        const string Email = "portal-bench@example.com";
        const string Password = "a long enough benchmark password";
        var (token, orgId) = await cloud.SignupAsync(Email, Password);

        Progress($"seeding {Databases:N0} databases and what the other pages list");
        var seeded = await Seed.OrgAsync(cloud, token, orgId, Databases);
        var pages = PageSet.For(orgId, seeded.DatabaseId, DateTimeOffset.UtcNow);

        Progress($"rendering {pages.Count} pages in Chromium: {warmup} warm-up and {timed} timed loads each");
        Dictionary<string, RenderSamples> renders;
        try
        {
            renders = await BrowserTimer.MeasureAsync(cloud.PortalUrl, Email, Password, pages, warmup, timed);
        }
        catch (InvalidOperationException)
        {
            foreach (var line in cloud.PortalProblems)
            {
                Console.Error.WriteLine(line);
            }

            throw;
        }

        Progress("baseline: the same pages' API calls, straight to the control plane");
        var baselines = new Dictionary<string, double[]>(StringComparer.Ordinal);
        foreach (var page in pages)
        {
            var samples = new double[timed];
            for (var i = -warmup; i < timed; i++)
            {
                var start = Stopwatch.GetTimestamp();
                foreach (var call in page.ApiCalls)
                {
                    await cloud.SendAsync(HttpMethod.Get, call, token, null, HttpStatusCode.OK);
                }

                if (i >= 0)
                {
                    samples[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                }
            }

            baselines[page.Name] = samples;
        }

        Progress("done");
        Console.WriteLine($"# mode: {(quick ? "quick" : "full")}; machine: {Environment.ProcessorCount} cores, load average {LoadAverage()} at the end of the run");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"# setup: private PostgreSQL 15, the control plane in this process on Kestrel, the portal as its own process (Release build), Chromium headless; all on loopback; one org with {Databases:N0} ready databases (seeded into the store), {seeded.Backups} backups, {seeded.ConnectionEvents} connection events, {seeded.UsageRecords:N0} hourly usage records, {seeded.ApiKeys} API keys, {seeded.Invitations} invitations"));
        Console.WriteLine($"# first render: median over {timed} loads (after {warmup} warm-up) of Chromium's first-contentful-paint, from navigation start, signed in, cache off (pages are no-store)");
        Console.WriteLine("# baseline: median time of the GETs that page makes to the management API, made one after another by an HttpClient with the same user's token");
        Console.WriteLine("# network: median count of requests a load sends (the page and every stylesheet or script the browser cache did not serve) and their bytes on the wire");
        var figures = new List<string>();
        var worst = 0.0;
        foreach (var page in pages)
        {
            var render = Median(renders[page.Name].FirstPaint);
            var server = Median(renders[page.Name].ResponseStart);
            var api = Median(baselines[page.Name]);
            worst = Math.Max(worst, render);
            figures.Add(Line($"portal_first_render_ms.{page.Name}", render, "ms"));
            figures.Add(Line($"portal_server_ms.{page.Name}", server, "ms"));
            figures.Add(Line($"portal_api_baseline_ms.{page.Name}", api, "ms"));
            figures.Add(Line($"portal_network_requests.{page.Name}", Median(renders[page.Name].NetworkRequests), "requests"));
            figures.Add(Line($"portal_transfer_kb.{page.Name}", Median(renders[page.Name].TransferBytes) / 1024, "KiB"));
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"# target portal_first_render_ms.<page> <= 300 ms: slowest page {worst:0.#} ms, {(worst <= 300 ? "met" : "MISSED")}"));
        foreach (var line in figures)
        {
            Console.WriteLine(line);
        }

        return 0;
    }

    private static string Line(string name, double value, string unit) => string.Create(CultureInfo.InvariantCulture, $"BENCH {name} {value:0.#} {unit}");

    private static double Median(double[] samples)
    {
        var sorted = (double[])samples.Clone();
        Array.Sort(sorted);
        var middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ')[..3]) : "unknown";
}
