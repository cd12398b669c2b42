extern alias launcher;

using System.Diagnostics;
using System.Net;
using Npgsql;
using DemoSeeder = launcher::Kdb.Launcher.DemoSeeder;

namespace Kdb.Proxy.Tests;

/// <summary>
/// The proxy in front of a real control plane: routes arrive by the control plane's long-poll, connection URIs are
/// the ones the REST API hands out (TLS verified against the development CA), and the demo seeding of
/// <c>./kdb up</c> leaves an env file whose URI works with psql as printed.
/// </summary>
public sealed class RealControlPlaneTests(RealCloud cloud) : IClassFixture<RealCloud>
{
    [Fact]
    public async Task DemoSeeding_WritesAnEnvFileWhoseUriWorksWithPsql_AndIsIdempotent()
    {
        var envFile = Path.Combine(cloud.StateDirectory, "demo.env");
        var seeder = new DemoSeeder(cloud.Http, cloud.ControlPlane, TimeProvider.System);

        var first = await seeder.SeedAsync("demo password 0123456789", "http://127.0.0.1:5200", envFile, CancellationToken.None);

        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(envFile));
        }

        Assert.StartsWith("db_", first.DatabaseId, StringComparison.Ordinal);
        Assert.Contains("sslrootcert=", first.PsqlUri, StringComparison.Ordinal);
        var (code, output) = await PsqlAsync(envFile, "CREATE TABLE greetings (id int PRIMARY KEY, text text); INSERT INTO greetings VALUES (1, 'hello'); SELECT text FROM greetings");
        Assert.True(code == 0, output + "\n" + cloud.Logs);
        Assert.Contains("hello", output, StringComparison.Ordinal);

        // Run again: the same account and database, the same password.
        var second = await seeder.SeedAsync("demo password 0123456789", "http://127.0.0.1:5200", envFile, CancellationToken.None);
        Assert.Equal(first, second);

        // The env file lost: the database is found again and its password reset; the old one stops working.
        File.Delete(envFile);
        var third = await seeder.SeedAsync("demo password 0123456789", "http://127.0.0.1:5200", envFile, CancellationToken.None);
        Assert.Equal(first.DatabaseId, third.DatabaseId);
        Assert.NotEqual(first.DatabasePassword, third.DatabasePassword);
        await using (var conn = new NpgsqlConnection(DemoSeeder.Read(envFile)!.NpgsqlConnectionString + ";Timeout=30;Pooling=false"))
        {
            await conn.OpenAsync();
            await using var select = new NpgsqlCommand("SELECT text FROM greetings WHERE id = 1", conn);
            Assert.Equal("hello", await select.ExecuteScalarAsync());
        }

        var stale = await Assert.ThrowsAsync<PostgresException>(() => OpenAsync(first.NpgsqlConnectionString));
        Assert.Equal("28P01", stale.SqlState);
    }

    [Fact]
    public async Task DatabaseCreatedThroughRest_IsReachableThroughTheProxyAtOnce_AndOtherCredentialsLookLikeAMissingDatabase()
    {
        var (token, org) = await cloud.UserAsync("proxy-owner");
        var created = await cloud.CreateReadyDatabaseAsync(token, org, "orders");
        var credentials = created.GetProperty("credentials");
        var id = created.GetProperty("database").GetProperty("id").GetString()!;
        var (strangerToken, strangerOrg) = await cloud.UserAsync("proxy-stranger");
        var foreign = await cloud.CreateReadyDatabaseAsync(strangerToken, strangerOrg, "other");
        var foreignPassword = foreign.GetProperty("credentials").GetProperty("password").GetString()!;

        // `ready` means the proxy already holds the route from the long-poll: the returned Npgsql string works unmodified.
        var npgsql = credentials.GetProperty("uris").GetProperty("npgsql").GetString()!;
        Assert.Contains("VerifyCA", npgsql, StringComparison.Ordinal);
        await using (var conn = new NpgsqlConnection(npgsql + ";Timeout=30;Pooling=false"))
        {
            await conn.OpenAsync();
            await using var write = new NpgsqlCommand("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (7)", conn);
            await write.ExecuteNonQueryAsync();
            await using var read = new NpgsqlCommand("SELECT id FROM t", conn);
            Assert.Equal(7, await read.ExecuteScalarAsync());
        }

        // The stranger's password on this database, and a name that does not exist: the same 28P01.
        var wrong = await Assert.ThrowsAsync<PostgresException>(() => OpenAsync(npgsql.Replace(credentials.GetProperty("password").GetString()!, foreignPassword, StringComparison.Ordinal)));
        var missing = await Assert.ThrowsAsync<PostgresException>(() => OpenAsync(npgsql.Replace(id, "db_0000000000000000", StringComparison.Ordinal)));
        Assert.Equal(("28P01", wrong.MessageText), (missing.SqlState, missing.MessageText));

        // A data token minted by the control plane opens the database with --kdb:jwt=true over TLS.
        var (status, minted) = await cloud.SendAsync(HttpMethod.Post, $"/v1/databases/{id}/tokens", token, new { role = "owner", ttlSeconds = 600 });
        Assert.True(status == HttpStatusCode.OK || status == HttpStatusCode.Created, $"{(int)status} {minted}");
        var jwt = minted.GetProperty("token").GetString()!;
        var withToken = new NpgsqlConnectionStringBuilder(npgsql) { Password = jwt, Options = "--kdb:jwt=true", Timeout = 30, Pooling = false };
        await using (var conn = new NpgsqlConnection(withToken.ConnectionString))
        {
            await conn.OpenAsync();
            await using var read = new NpgsqlCommand("SELECT count(*) FROM t", conn);
            Assert.Equal(1L, await read.ExecuteScalarAsync());
        }

        // Deleting it through REST removes the route: the proxy refuses it like a missing database.
        var (deleted, _) = await cloud.SendAsync(HttpMethod.Delete, $"/v1/databases/{id}", token);
        Assert.Equal(HttpStatusCode.Accepted, deleted);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        PostgresException? refused = null;
        while (refused is null && DateTime.UtcNow < deadline)
        {
            try
            {
                await OpenAsync(npgsql);
                await Task.Delay(200);
            }
            catch (PostgresException ex)
            {
                refused = ex;
            }
        }

        Assert.Equal("28P01", refused?.SqlState);
    }

    private static async Task OpenAsync(string connectionString)
    {
        await using var conn = new NpgsqlConnection(connectionString + ";Timeout=30;Pooling=false");
        await conn.OpenAsync();
    }

    /// <summary>Runs psql exactly as <c>./kdb up</c> tells a developer to.</summary>
    private static async Task<(int Code, string Output)> PsqlAsync(string envFile, string sql)
    {
        var start = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add($"psql \"$(. '{envFile}' && echo \"$KDB_DEMO_URI\")\" -X -v ON_ERROR_STOP=1 -c \"$1\"");
        start.ArgumentList.Add("psql");
        start.ArgumentList.Add(sql);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }
}
