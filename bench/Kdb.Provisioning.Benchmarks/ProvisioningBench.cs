using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Kdb.Bench.Common;
using Kdb.Testing.Postgres;
using Kdb.Testing.Provisioning;
using Npgsql;

namespace Kdb.Provisioning.Benchmarks;

/// <summary>The four provisioning figures and their same-run baselines on the private PostgreSQL.</summary>
internal sealed class ProvisioningBench(LocalCloud cloud, PostgresFixture postgres, BenchSettings settings, Action<string, double, string> emit, Action<string> progress)
{
    private const int RowBytes = 992;

    public async Task RunAsync()
    {
        var (token, org) = await cloud.UserAsync("bench");
        // The free plan allows 3 databases per org; enterprise allows 1,000.
        var (patched, body) = await cloud.SendAsync(HttpMethod.Patch, $"/v1/orgs/{org}", token, new { plan = "enterprise" });
        if (patched != HttpStatusCode.OK)
        {
            throw new InvalidOperationException($"PATCH plan: {(int)patched} {body}");
        }
        if (settings.ConcurrentOnly)
        {
            await BurstAsync();
            return;
        }
        if (settings.MoveOnly)
        {
            var (movable, movablePassword) = await LoadedDatabaseAsync(token, org, "movable");
            await new MoveBench(cloud, emit, progress).RunAsync(token, org, movable, movablePassword, settings.BackupMegabytes);
            return;
        }
        if (!settings.BackupOnly)
        {
            await ReadyLatencyAsync(token, org);
        }
        if (settings.ReadyOnly)
        {
            return;
        }
        var (payload, password) = await BackupRestoreAsync(token, org);
        if (settings.BackupOnly)
        {
            return;
        }
        await new MoveBench(cloud, emit, progress).RunAsync(token, org, payload, password, settings.BackupMegabytes);
        await BurstAsync();
    }

    // Concurrent creates last, in an org of their own: its 1,000 databases are the enterprise plan's limit.
    private async Task BurstAsync()
    {
        var (token, org) = await cloud.UserAsync("burst");
        await cloud.SendAsync(HttpMethod.Patch, $"/v1/orgs/{org}", token, new { plan = "enterprise" });
        await ConcurrentCreatesAsync(token, org);
    }

    private async Task ReadyLatencyAsync(string token, string org)
    {
        progress($"ready latency: {settings.ReadyDatabases} sequential creates (one warm-up first)");
        await CreateAndWaitAsync(token, org, "warmup", TimeSpan.FromMinutes(2));
        var seconds = new List<double>();
        var visible = new List<double>();
        var stagesBefore = await CreationStageReport.ScrapeAsync(cloud.Http, cloud.ControlPlaneUrl);
        for (var i = 0; i < settings.ReadyDatabases; i++)
        {
            var (status, elapsed, _, _, operation) = await CreateAndWaitAsync(token, org, "ready-" + i.ToString("D4", CultureInfo.InvariantCulture), TimeSpan.FromMinutes(2));
            if (status != "ready")
            {
                throw new InvalidOperationException($"database {i} ended {status}");
            }
            seconds.Add(elapsed.TotalSeconds);
            visible.Add(elapsed.TotalMilliseconds - await ServerMillisecondsAsync(token, operation));
        }
        emit("db_ready_p95_s", Percentile(seconds, 0.95), "s");
        emit("db_ready_p50_s", Percentile(seconds, 0.50), "s");
        // Where the time goes: the server's stages, and what the client adds (its REST round trips and the status poll).
        (await CreationStageReport.ScrapeAsync(cloud.Http, cloud.ControlPlaneUrl)).EmitSince(stagesBefore, "db_ready_stage", emit);
        emit("db_ready_stage_p50_ms.visible", Percentile(visible, 0.50), "ms");
        emit("db_ready_stage_p95_ms.visible", Percentile(visible, 0.95), "ms");

        // Baseline: CREATE DATABASE (+ an owner role) on PostgreSQL 15, the same count, sequential.
        var pg = new List<double>();
        await using var conn = new NpgsqlConnection(postgres.ConnectionString);
        await conn.OpenAsync();
        for (var i = 0; i < settings.ReadyDatabases; i++)
        {
            var name = "bench_ready_" + i.ToString(CultureInfo.InvariantCulture);
            var watch = Stopwatch.StartNew();
            await ExecAsync(conn, $"CREATE ROLE {name}_owner LOGIN PASSWORD 'x'");
            await ExecAsync(conn, $"CREATE DATABASE {name} OWNER {name}_owner");
            pg.Add(watch.Elapsed.TotalSeconds);
        }
        emit("baseline_pg_create_database_p95_s", Percentile(pg, 0.95), "s");
    }

    private async Task ConcurrentCreatesAsync(string token, string org)
    {
        var count = settings.ConcurrentDatabases;
        progress($"concurrent creates: {count} requests at once");
        var watch = Stopwatch.StartNew();
        var refusals = new System.Collections.Concurrent.ConcurrentDictionary<string, (int Count, string Sample)>(StringComparer.Ordinal);
        var requests = await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
        {
            try
            {
                var (status, created) = await cloud.SendAsync(HttpMethod.Post, $"/v1/orgs/{org}/databases", token, new { name = "c-" + i.ToString("D4", CultureInfo.InvariantCulture) });
                if (status == HttpStatusCode.Accepted)
                {
                    return created.GetProperty("database").GetProperty("id").GetString();
                }
                refusals.AddOrUpdate(((int)status).ToString(CultureInfo.InvariantCulture), (1, created.ToString()), (_, o) => (o.Count + 1, o.Sample));
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException)
            {
                refusals.AddOrUpdate(e.GetType().Name, (1, e.Message), (_, o) => (o.Count + 1, o.Sample));
            }
            return null;
        }));
        var accepted = requests.OfType<string>().ToList();
        progress($"{accepted.Count} accepted in {watch.Elapsed.TotalSeconds:0.0} s; waiting for ready");
        foreach (var (why, (n, sample)) in refusals)
        {
            progress($"refused {n}× with {why}, e.g. {(sample.Length > 300 ? sample[..300] : sample)}");
        }
        if (!refusals.IsEmpty)
        {
            // A 500's problem details name nothing; the services' own logs say what failed.
            var logs = cloud.Logs;
            var at = logs.IndexOf("Exception", StringComparison.Ordinal);
            progress(at < 0 ? "no exception in the services' log tails" : "first exception in the services' log tails: " + logs[Math.Max(0, at - 400)..Math.Min(logs.Length, at + 1600)]);
        }
        var outcomes = new Dictionary<string, int>(StringComparer.Ordinal);
        using var gate = new SemaphoreSlim(16);
        var results = await Task.WhenAll(accepted.Select(async id =>
        {
            await gate.WaitAsync();
            try
            {
                return await WaitTerminalAsync(token, id, TimeSpan.FromMinutes(14), pollMs: 250);
            }
            finally
            {
                gate.Release();
            }
        }));
        for (var i = 0; i < results.Length; i++)
        {
            outcomes[results[i]] = outcomes.GetValueOrDefault(results[i]) + 1;
            if (results[i] != "ready")
            {
                var (_, why) = await cloud.SendAsync(HttpMethod.Get, $"/v1/databases/{accepted[i]}", token);
                progress($"not ready: {why}");
            }
        }
        var failures = (count - accepted.Count) + results.Count(r => r != "ready");
        progress($"all settled in {watch.Elapsed.TotalSeconds:0.0} s: {string.Join(", ", outcomes.Select(o => $"{o.Value} {o.Key}"))}; {count - accepted.Count} refused");
        emit("db_concurrent_create_requests", count, "requests");
        emit("db_concurrent_create_failures", failures, "databases");
        emit("db_concurrent_create_all_ready_s", watch.Elapsed.TotalSeconds, "s");
    }

    /// <summary>A ready database holding <see cref="BenchSettings.BackupMegabytes"/> of rows, loaded through a node.</summary>
    private async Task<(string Id, string Password)> LoadedDatabaseAsync(string token, string org, string name)
    {
        var (created, _, id, password, _) = await CreateAndWaitAsync(token, org, name, TimeSpan.FromMinutes(2));
        if (created != "ready")
        {
            throw new InvalidOperationException($"{name} database ended {created}");
        }
        var rows = settings.BackupMegabytes * 1_000_000 / RowBytes;
        progress($"loading {rows:N0} rows of {RowBytes} B ({settings.BackupMegabytes} MB) into {id} through a node");
        var port = await cloud.ReplicaPgPortAsync(id);
        await LoadRowsAsync(LocalCloud.ConnectionString(port, id, password), rows, batch: 4000);
        return (id, password);
    }

    private async Task<(string Id, string Password)> BackupRestoreAsync(string token, string org)
    {
        var (id, password) = await LoadedDatabaseAsync(token, org, "payload");
        var rows = settings.BackupMegabytes * 1_000_000 / RowBytes;

        progress("backup");
        var stages = await BackupStageReport.ScrapeAsync(cloud);
        var watch = Stopwatch.StartNew();
        var (status, started) = await cloud.SendAsync(HttpMethod.Post, $"/v1/databases/{id}/backups", token, new { });
        if (status != HttpStatusCode.Accepted)
        {
            throw new InvalidOperationException($"backup: {(int)status} {started}");
        }
        var backupId = started.GetProperty("backup").GetProperty("id").GetString()!;
        var backup = await PollAsync(token, $"/v1/databases/{id}/backups/{backupId}", b => b.GetProperty("status").GetString() is "completed" or "failed", TimeSpan.FromMinutes(10), 20);
        var backupSeconds = watch.Elapsed.TotalSeconds;
        if (backup.GetProperty("status").GetString() != "completed")
        {
            throw new InvalidOperationException("backup failed: " + backup);
        }
        var bytes = backup.GetProperty("sizeBytes").GetInt64();
        emit("backup_bytes", bytes, "B");
        emit("backup_mb_per_s", bytes / 1e6 / backupSeconds, "MB/s");
        emit("backup_s", backupSeconds, "s");
        var afterBackup = await BackupStageReport.ScrapeAsync(cloud);
        afterBackup.EmitSince(stages, "backup", "export_", ["backup_prepare", "backup_export_seal_store", "backup_manifest"], backupSeconds, emit);

        progress("restore into a new database");
        afterBackup = await BackupStageReport.ScrapeAsync(cloud);
        watch.Restart();
        (status, started) = await cloud.SendAsync(HttpMethod.Post, $"/v1/databases/{id}/restore", token, new { backupId, target = "new", name = "restored" });
        if (status != HttpStatusCode.Accepted)
        {
            throw new InvalidOperationException($"restore: {(int)status} {started}");
        }
        var operation = started.GetProperty("operation").GetProperty("id").GetString()!;
        var done = await PollAsync(token, $"/v1/operations/{operation}", o => o.GetProperty("status").GetString() != "running", TimeSpan.FromMinutes(10), 20);
        var restoreSeconds = watch.Elapsed.TotalSeconds;
        if (done.GetProperty("status").GetString() != "succeeded")
        {
            progress("the services' last log lines:\n" + cloud.Logs);
            throw new InvalidOperationException("restore failed: " + done);
        }
        emit("restore_mb_per_s", bytes / 1e6 / restoreSeconds, "MB/s");
        emit("restore_s", restoreSeconds, "s");
        (await BackupStageReport.ScrapeAsync(cloud)).EmitSince(afterBackup, "restore", "import_", ["restore_open", "restore_create", "restore_import", "restore_verify"], restoreSeconds, emit);

        await BaselinesAsync(backupId, rows);
        return (id, password);
    }

    /// <summary>Raw copy of the backup's stored chunks (fsynced), and pg_dump / pg_restore of the same rows on PostgreSQL 15.</summary>
    private async Task BaselinesAsync(string backupId, int rows)
    {
        progress("baselines: file copy of the stored backup, pg_dump and pg_restore of the same rows");
        var scratch = Directory.CreateTempSubdirectory("kdb-bench-prov-");
        try
        {
            var manifest = await File.ReadAllBytesAsync(Path.Combine(cloud.ObjectStorePath, "backups", backupId, "manifest.json"));
            // Stored objects start with the object store's 48-byte header.
            var root = JsonDocument.Parse(manifest.AsMemory(48)).RootElement;
            // The manifest's duration covers provisioning's part only (export, seal, store): the rest of the REST
            // figure is the control plane's event round trip and the poll.
            emit("backup_in_provisioning_mb_per_s", root.GetProperty("storedBytes").GetInt64() / 1e6 / root.GetProperty("durationSeconds").GetDouble(), "MB/s");
            var chunks = root.GetProperty("chunks").EnumerateArray()
                .Select(c => Path.Combine(cloud.ObjectStorePath, "chunks", c.GetProperty("sha256").GetString()!)).ToList();
            var watch = Stopwatch.StartNew();
            long copied = 0;
            foreach (var chunk in chunks)
            {
                var target = Path.Combine(scratch.FullName, Path.GetFileName(chunk));
                await using (var source = File.OpenRead(chunk))
                await using (var destination = new FileStream(target, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
                {
                    await source.CopyToAsync(destination);
                    destination.Flush(flushToDisk: true);
                    copied += destination.Length;
                }
            }
            emit("baseline_file_copy_mb_per_s", copied / 1e6 / watch.Elapsed.TotalSeconds, "MB/s");

            var db = await postgres.CreateDatabaseAsync("bench_payload");
            await using (var conn = new NpgsqlConnection(db.ConnectionString))
            {
                await conn.OpenAsync();
                await ExecAsync(conn, "CREATE TABLE t (id int PRIMARY KEY, payload text NOT NULL)");
            }
            await LoadRowsAsync(db.ConnectionString, rows, batch: 20000);
            var builder = new NpgsqlConnectionStringBuilder(db.ConnectionString);
            var dump = Path.Combine(scratch.FullName, "payload.dump");
            string[] common = ["-h", "127.0.0.1", "-p", postgres.Port.ToString(CultureInfo.InvariantCulture), "-U", postgres.Username];
            watch.Restart();
            BenchTools.Run(Path.Combine(BenchTools.PgBin, "pg_dump"), [.. common, "-Fc", "-Z0", "-f", dump, builder.Database!], TimeSpan.FromMinutes(10), postgres.Password);
            var dumpSeconds = watch.Elapsed.TotalSeconds;
            var dumpBytes = new FileInfo(dump).Length;
            emit("baseline_pg_dump_mb_per_s", dumpBytes / 1e6 / dumpSeconds, "MB/s");
            var restored = await postgres.CreateDatabaseAsync("bench_restored");
            watch.Restart();
            BenchTools.Run(Path.Combine(BenchTools.PgBin, "pg_restore"), [.. common, "-d", new NpgsqlConnectionStringBuilder(restored.ConnectionString).Database!, dump], TimeSpan.FromMinutes(10), postgres.Password);
            emit("baseline_pg_restore_mb_per_s", dumpBytes / 1e6 / watch.Elapsed.TotalSeconds, "MB/s");
        }
        finally
        {
            scratch.Delete(recursive: true);
        }
    }

    private static async Task LoadRowsAsync(string connectionString, int rows, int batch)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync();
        await ExecAsync(conn, "CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY, payload text NOT NULL)");
        for (var from = 1; from <= rows; from += batch)
        {
            var to = Math.Min(rows, from + batch - 1);
            // 31 MD5 digests: 992 bytes that do not compress away.
            await ExecAsync(conn, string.Create(CultureInfo.InvariantCulture, $"INSERT INTO t SELECT g, repeat(md5(g::text), 31) FROM generate_series({from}, {to}) g"));
        }
    }

    /// <summary>The server's part of a creation: its operation's request timestamp to the <c>ready</c> commit.</summary>
    private async Task<double> ServerMillisecondsAsync(string token, string operationId)
    {
        var (status, operation) = await cloud.SendAsync(HttpMethod.Get, $"/v1/operations/{operationId}", token);
        if (status != HttpStatusCode.OK || operation.GetProperty("finishedAt").ValueKind != JsonValueKind.String)
        {
            throw new InvalidOperationException($"operation {operationId}: {(int)status} {operation}");
        }
        return (operation.GetProperty("finishedAt").GetDateTimeOffset() - operation.GetProperty("createdAt").GetDateTimeOffset()).TotalMilliseconds;
    }

    private async Task<(string Status, TimeSpan Elapsed, string Id, string Password, string OperationId)> CreateAndWaitAsync(string token, string org, string name, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        var (status, created) = await cloud.SendAsync(HttpMethod.Post, $"/v1/orgs/{org}/databases", token, new { name });
        if (status != HttpStatusCode.Accepted)
        {
            throw new InvalidOperationException($"create {name}: {(int)status} {created}");
        }
        var id = created.GetProperty("database").GetProperty("id").GetString()!;
        var result = await WaitTerminalAsync(token, id, timeout, pollMs: 10);
        return (result, watch.Elapsed, id, created.GetProperty("credentials").GetProperty("password").GetString()!, created.GetProperty("operation").GetProperty("id").GetString()!);
    }

    /// <summary>Polls a database until it is ready or failed; "timeout" when neither happens in time.</summary>
    private async Task<string> WaitTerminalAsync(string token, string databaseId, TimeSpan timeout, int pollMs)
    {
        try
        {
            var body = await PollAsync(token, $"/v1/databases/{databaseId}", d => d.GetProperty("status").GetString() is "ready" or "failed", timeout, pollMs);
            return body.GetProperty("status").GetString()!;
        }
        catch (TimeoutException)
        {
            return "timeout";
        }
    }

    private async Task<JsonElement> PollAsync(string token, string path, Func<JsonElement, bool> done, TimeSpan timeout, int pollMs)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                var (status, body) = await cloud.SendAsync(HttpMethod.Get, path, token);
                if (status == HttpStatusCode.OK && done(body))
                {
                    return body;
                }
            }
            catch (HttpRequestException)
            {
                // A loaded control plane may drop a poll: the next one counts.
            }
            if (deadline.Elapsed > timeout)
            {
                throw new TimeoutException(path);
            }
            await Task.Delay(pollMs);
        }
    }

    private static async Task ExecAsync(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn) { CommandTimeout = 600 };
        await cmd.ExecuteNonQueryAsync();
    }

    private static double Percentile(List<double> values, double p)
    {
        var sorted = values.Order().ToList();
        return sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];
    }
}
