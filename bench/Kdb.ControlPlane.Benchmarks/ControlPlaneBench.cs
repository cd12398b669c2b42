using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Npgsql;

namespace Kdb.ControlPlane.Benchmarks;

/// <summary>Sizes of one run.</summary>
internal sealed record BenchSettings(int Orgs, int DatabasesPerOrg, int Creates, int CreateWarmup, int Lists, int ListWarmup, int TokenWorkers, TimeSpan TokenSeconds, int IngestWorkers, int BatchSize, TimeSpan IngestSeconds, TimeSpan Warmup)
{
    // 500 databases per enterprise org: the plan allows 1,000, so the create figure can add its own
    // databases to seeded orgs and count against a full-sized org.
    public static readonly BenchSettings Quick = new(20, 500, 100, 20, 200, 50, 8, TimeSpan.FromSeconds(5), 2, 5_000, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(2));

    public static readonly BenchSettings Full = new(200, 500, 500, 50, 1_000, 100, 8, TimeSpan.FromSeconds(15), 2, 5_000, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(3));

    public int TotalDatabases => Orgs * DatabasesPerOrg;
}

/// <summary>The four figures of issue 8 and their in-run baselines.</summary>
internal sealed class ControlPlaneBench(ControlPlaneHost host, SeededOrgs seeded, string userToken, BenchSettings settings, Action<string, double, string> emit)
{
    private const int CreateOrgs = 5;

    public async Task BaselinesAsync()
    {
        // What the figures stand on: an anonymous HTTP round trip through the same Kestrel and middleware,
        // and a PostgreSQL round trip on an open connection.
        var http = await Measure.LatenciesAsync(100, 500, async _ =>
        {
            using var response = await host.Client.GetAsync(new Uri("/health/live", UriKind.Relative));
            await ControlPlaneHost.EnsureAsync(response, HttpStatusCode.OK);
        });
        emit("cp_baseline_http_p95_ms", Measure.Percentile(http, 95), "ms");
        var httpRate = await Measure.ThroughputAsync(settings.TokenWorkers, settings.Warmup, settings.TokenSeconds, async _ =>
        {
            using var response = await host.Client.GetAsync(new Uri("/health/live", UriKind.Relative));
            await ControlPlaneHost.EnsureAsync(response, HttpStatusCode.OK);
            return 1;
        });
        emit("cp_baseline_http_per_s", httpRate.PerSecond, "requests/s");
        emit("cp_baseline_http_cpu_ms", httpRate.CpuMsPerUnit, "ms/request");

        await using var connection = new NpgsqlConnection(host.ConnectionString);
        await connection.OpenAsync();
        await using var select = new NpgsqlCommand("SELECT 1", connection);
        var pg = await Measure.LatenciesAsync(100, 500, async _ =>
        {
            if (await select.ExecuteScalarAsync() is not 1)
            {
                throw new InvalidOperationException("SELECT 1 did not answer 1");
            }
        });
        emit("cp_baseline_pg_p95_ms", Measure.Percentile(pg, 95), "ms");
    }

    public async Task<double> CreateAsync()
    {
        // Warm-up creates go to an org the timed ones do not use, so each timed org ends at
        // DatabasesPerOrg + Creates / CreateOrgs databases, under the enterprise plan's 1,000.
        var warmOrg = seeded.OrgIds[CreateOrgs];
        var samples = await Measure.LatenciesAsync(settings.CreateWarmup, settings.Creates, async i =>
        {
            var warm = i < settings.CreateWarmup;
            var orgId = warm ? warmOrg : seeded.OrgIds[i % CreateOrgs];
            using var response = await host.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", userToken, JsonContent.Create(new { name = $"bench-{i:D5}" }));
            await ControlPlaneHost.EnsureAsync(response, HttpStatusCode.Accepted);
            var body = await response.Content.ReadFromJsonAsync<JsonElement>();
            if (body.GetProperty("database").GetProperty("status").GetString() != "provisioning" || body.GetProperty("credentials").GetProperty("password").GetString() is not { Length: > 0 })
            {
                throw new InvalidOperationException("create answered 202 without a provisioning database and its owner password");
            }
        });
        var p95 = Measure.Percentile(samples, 95);
        emit("cp_create_db_p50_ms", Measure.Percentile(samples, 50), "ms");
        emit("cp_create_db_p95_ms", p95, "ms");
        return p95;
    }

    public async Task<double> ListAsync()
    {
        var orgs = seeded.OrgIds.Count;
        var databases = await Measure.LatenciesAsync(settings.ListWarmup, settings.Lists, async i =>
        {
            using var response = await host.SendAsync(HttpMethod.Get, $"/v1/orgs/{seeded.OrgIds[i % orgs]}/databases", userToken);
            await ControlPlaneHost.EnsureAsync(response, HttpStatusCode.OK);
            var body = await response.Content.ReadFromJsonAsync<JsonElement>();
            if (body.GetProperty("items").GetArrayLength() != 50 || body.GetProperty("nextCursor").ValueKind != JsonValueKind.String)
            {
                throw new InvalidOperationException("the first page of a seeded org's databases is not a full page with a cursor");
            }
        });
        var audit = await Measure.LatenciesAsync(settings.ListWarmup, settings.Lists, async i =>
        {
            using var response = await host.SendAsync(HttpMethod.Get, $"/v1/orgs/{seeded.OrgIds[i % orgs]}/audit-log", userToken);
            await ControlPlaneHost.EnsureAsync(response, HttpStatusCode.OK);
            var body = await response.Content.ReadFromJsonAsync<JsonElement>();
            if (body.GetProperty("items").GetArrayLength() != 50)
            {
                throw new InvalidOperationException("the first page of a seeded org's audit log is not a full page");
            }
        });
        var all = new double[databases.Length + audit.Length];
        databases.CopyTo(all, 0);
        audit.CopyTo(all, databases.Length);
        emit("cp_list_p95_ms.databases", Measure.Percentile(databases, 95), "ms");
        emit("cp_list_p95_ms.audit_log", Measure.Percentile(audit, 95), "ms");
        var p95 = Measure.Percentile(all, 95);
        emit("cp_list_p95_ms", p95, "ms");
        return p95;
    }

    public async Task<double> TokensAsync(string email, string password)
    {
        (string Id, string Secret)[] clients =
        [
            ("kdb-proxy", ControlPlaneHost.ProxySecret),
            ("kdb-node", ControlPlaneHost.NodeSecret),
            ("kdb-provisioning", ControlPlaneHost.ProvisioningSecret),
        ];
        var credentials = await Measure.ThroughputAsync(settings.TokenWorkers, settings.Warmup, settings.TokenSeconds, async worker =>
        {
            var (id, secret) = clients[worker % clients.Length];
            using var response = await host.TokenAsync(new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["client_id"] = id, ["client_secret"] = secret });
            await ControlPlaneHost.EnsureAsync(response, HttpStatusCode.OK);
            await ReadTokenAsync(response);
            return 1;
        });
        emit("cp_tokens_per_s.client_credentials", credentials.PerSecond, "tokens/s");
        emit("cp_tokens_cpu_ms.client_credentials", credentials.CpuMsPerUnit, "ms/token");

        // One refresh-token family per concurrent client (one password login each, outside the timing),
        // each rotating its own chain: every grant must present the token the previous one returned.
        var chains = new string[settings.TokenWorkers];
        for (var w = 0; w < chains.Length; w++)
        {
            chains[w] = (await host.PasswordGrantAsync(email, password)).RefreshToken;
        }

        // A 500 on a refresh leaves the presented token current (the rotation is one statement, rolled back whole),
        // so the client retries it; a rotation that did fail (the token consumed after all) would come back as
        // 400 invalid_grant and stop the run. Such 500s are counted, not passed as tokens.
        long attempts = 0;
        long serverErrors = 0;
        var consecutive = new int[chains.Length];
        var refresh = await Measure.ThroughputAsync(settings.TokenWorkers, settings.Warmup, settings.TokenSeconds, async worker =>
        {
            using var response = await host.TokenAsync(new Dictionary<string, string> { ["grant_type"] = "refresh_token", ["refresh_token"] = chains[worker] });
            Interlocked.Increment(ref attempts);
            if (response.StatusCode == HttpStatusCode.InternalServerError && ++consecutive[worker] < 100)
            {
                Interlocked.Increment(ref serverErrors);
                return 0;
            }

            await ControlPlaneHost.EnsureAsync(response, HttpStatusCode.OK);
            consecutive[worker] = 0;
            chains[worker] = (await ReadTokenAsync(response)).GetProperty("refresh_token").GetString()!;
            return 1;
        });
        emit("cp_tokens_per_s.refresh_token", refresh.PerSecond, "tokens/s");
        emit("cp_tokens_cpu_ms.refresh_token", refresh.CpuMsPerUnit, "ms/token");
        emit("cp_tokens_refresh_token_500_pct", 100.0 * Interlocked.Read(ref serverErrors) / Math.Max(1, Interlocked.Read(ref attempts)), "%");
        var lower = Math.Min(credentials.PerSecond, refresh.PerSecond);
        emit("cp_tokens_per_s", lower, "tokens/s");
        return lower;
    }

    public async Task<double> IngestAsync()
    {
        var token = await host.ServiceTokenAsync("kdb-node", ControlPlaneHost.NodeSecret);

        // Each sender stands for one node reporting the databases it hosts: two orgs' worth, not shared with
        // the other sender (nodes host disjoint replicas here), nor with the orgs the create figure grew.
        var perWorker = new List<string>[settings.IngestWorkers];
        for (var w = 0; w < perWorker.Length; w++)
        {
            perWorker[w] = [];
            for (var o = 0; o < 2; o++)
            {
                perWorker[w].AddRange(seeded.DatabaseIds[CreateOrgs + 1 + (w * 2) + o]);
            }
        }

        var sequences = new long[settings.IngestWorkers];
        var sent = new long[settings.IngestWorkers];
        var hour = DateTimeOffset.UtcNow;
        hour = new DateTimeOffset(hour.Year, hour.Month, hour.Day, hour.Hour, 0, 0, TimeSpan.Zero);
        var rate = await Measure.ThroughputAsync(settings.IngestWorkers, settings.Warmup, settings.IngestSeconds, async worker =>
        {
            var first = sequences[worker];
            sequences[worker] += settings.BatchSize;
            using var content = UsageBatch($"node_bench_{worker}", first, settings.BatchSize, perWorker[worker], hour);
            using var response = await host.SendAsync(HttpMethod.Post, "/internal/v1/usage", token, content);
            await ControlPlaneHost.EnsureAsync(response, HttpStatusCode.Accepted);
            sent[worker] += settings.BatchSize;
            return settings.BatchSize;
        });
        emit("cp_usage_ingest_per_s", rate.PerSecond, "records/s");
        emit("cp_usage_ingest_cpu_ms_per_1k", rate.CpuMsPerUnit * 1000, "ms/1000 records");

        // Every acknowledged record left exactly one receipt: the figure counts ingested work, not requests.
        await using var connection = new NpgsqlConnection(host.ConnectionString);
        await connection.OpenAsync();
        await using var count = new NpgsqlCommand("SELECT coalesce(sum(\"Last\" - \"First\" + 1), 0)::bigint FROM usage_receipt_ranges WHERE \"Source\" LIKE 'node\\_bench\\_%'", connection);
        var receipts = (long)(await count.ExecuteScalarAsync())!;
        long total = 0;
        foreach (var s in sent)
        {
            total += s;
        }

        if (receipts != total)
        {
            throw new InvalidOperationException($"{total} usage records acknowledged but {receipts} receipts stored");
        }

        return rate.PerSecond;
    }

    private static async Task<JsonElement> ReadTokenAsync(HttpResponseMessage response)
    {
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        if (body.GetProperty("access_token").GetString() is not { Length: > 0 })
        {
            throw new InvalidOperationException("the token endpoint answered 200 without an access token");
        }

        return body;
    }

    /// <summary>A usage batch as a node sends it: one record per (database, sequence), written straight to UTF-8.</summary>
    private static ByteArrayContent UsageBatch(string source, long firstSequence, int size, List<string> databases, DateTimeOffset hour)
    {
        var buffer = new ArrayBufferWriter<byte>(size * 300);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartArray();
            for (var i = 0; i < size; i++)
            {
                var sequence = firstSequence + i;
                json.WriteStartObject();
                json.WriteString("source", source);
                json.WriteNumber("sequence", sequence);
                json.WriteString("databaseId", databases[(int)(sequence % databases.Count)]);
                json.WriteString("hourStart", hour);
                json.WriteNumber("rowsRead", 10 + (sequence % 7));
                json.WriteNumber("rowsWritten", 1 + (sequence % 3));
                json.WriteNumber("bytesRead", 4096);
                json.WriteNumber("bytesWritten", 512);
                json.WriteNumber("storageBytes", 1 << 20);
                json.WriteNumber("cpuMs", 2);
                json.WriteNumber("egressBytes", 2048);
                json.WriteNumber("connections", 1 + (sequence % 4));
                json.WriteEndObject();
            }

            json.WriteEndArray();
        }

        var content = new ByteArrayContent(buffer.WrittenSpan.ToArray());
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return content;
    }
}
