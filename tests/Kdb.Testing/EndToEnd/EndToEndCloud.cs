using System.Net;
using System.Text.Json;
using Kdb.Testing.Cloud;
using Kdb.Testing.Postgres;
using Npgsql;

namespace Kdb.Testing.EndToEnd;

/// <summary>
/// The whole local cloud as <c>./kdb up</c> lays it out (a <see cref="WholeCloud"/>) on its own private PostgreSQL: the
/// control plane with embedded provisioning, three clustered nodes and the proxy, plaintext on loopback (development
/// flags). Every service is a <see cref="ServiceProcess"/> a fault test can kill, pause or restart. Users drive it
/// through the REST API and reach their databases only through the proxy, with their own credentials.
/// </summary>
public sealed class EndToEndCloud : IAsyncLifetime
{
    public const string NodeSecret = CloudApi.NodeSecret;
    public const string ProvisioningSecret = CloudApi.ProvisioningSecret;
    public const string ProxySecret = CloudApi.ProxySecret;
    public const string UserPassword = CloudApi.UserPassword;

    private PostgresServer? _postgres;
    private WholeCloud? _cloud;

    private WholeCloud Cloud => _cloud ?? throw new InvalidOperationException("the cloud has not started");

    public HttpClient Http => Cloud.Http;

    public string ControlPlaneUrl => Cloud.ControlPlaneUrl;

    public ServiceProcess ControlPlane => Cloud.ControlPlane;

    public IReadOnlyList<ServiceProcess> Nodes => Cloud.Nodes;

    public ServiceProcess Proxy => Cloud.Proxy!;

    public int ProxyPgPort => Cloud.ProxyPgPort;

    public IEnumerable<ServiceProcess> Services => Cloud.Services;

    /// <summary>The last lines of every service's log, for a failing check's message.</summary>
    public string Logs => Cloud.Logs;

    public async Task InitializeAsync()
    {
        _postgres = await PostgresServer.StartAsync(CancellationToken.None);
        await using (var conn = new NpgsqlConnection(_postgres.ConnectionString("postgres")))
        {
            await conn.OpenAsync();
            await using var create = new NpgsqlCommand("CREATE DATABASE kdb_e2e", conn);
            await create.ExecuteNonQueryAsync();
        }

        _cloud = await WholeCloud.StartAsync(_postgres.ConnectionString("kdb_e2e"), new WholeCloudOptions
        {
            Proxy = true,
            ControlPlaneArguments =
            [
                "--RateLimits:TokenRequestsPerMinute=1000000",
                // Scheduled backups (cron's finest step is a minute) are taken within a second of falling due, and
                // restore drills verify completed backups within seconds rather than daily.
                "--Backups:SchedulerInterval=00:00:01",
                "--Backups:DrillInterval=00:00:05",
            ],
            ProxyArguments =
            [
                "--Proxy:ProxyId=e2e-proxy",
                "--Proxy:RouteMissRetry=00:00:01",
                // A rolling restart should not wait out the default 10 s drain of sessions that will reconnect anyway.
                "--Proxy:DrainTimeout=00:00:02",
            ],
            DirectoryPrefix = "kdb-e2e-",
        });
    }

    public async Task DisposeAsync()
    {
        if (_cloud is not null)
        {
            await _cloud.DisposeAsync();
        }
        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
        }
    }

    /// <summary>An Npgsql connection string through the proxy (plaintext on loopback, no pooling: every fault is seen).</summary>
    public string ProxyConnectionString(string databaseId, string password, string user = "owner") =>
        $"Host=127.0.0.1;Port={ProxyPgPort};Username={user};Password={password};Database={databaseId};Timeout=15;Command Timeout=30;Pooling=false;SSL Mode=Disable;Gss Encryption Mode=Disable";

    /// <summary>The node that leads a database's group, as the node tells the proxy (<c>kdb_leader</c>).</summary>
    public async Task<ServiceProcess> LeaderOfAsync(string databaseId, string password)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                await using var conn = new NpgsqlConnection(ProxyConnectionString(databaseId, password));
                await conn.OpenAsync();
                if (conn.PostgresParameters.TryGetValue("kdb_leader", out var id) && Cloud.NodeById(id) is { Running: true } node)
                {
                    return node;
                }
            }
            catch (NpgsqlException) when (DateTime.UtcNow < deadline)
            {
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"no leader reported for {databaseId}\n{Logs}");
            }
            await Task.Delay(200);
        }
    }

    public Task<string> ServiceTokenAsync(string clientId, string secret) => Cloud.Api.ServiceTokenAsync(clientId, secret);

    public Task WaitForAliveNodesAsync(int count) => Cloud.Api.WaitForAliveNodesAsync(count, seconds: 90);

    /// <summary>Signs a new user up; returns their management token and personal org.</summary>
    public Task<(string Token, string OrgId)> UserAsync(string name) => Cloud.Api.UserAsync(name);

    public Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpMethod method, string path, string? token, object? body = null) =>
        Cloud.Api.SendAsync(method, path, token, body);

    /// <summary>Polls a resource until <paramref name="done"/> holds; the generous deadline never fails a slow machine alone.</summary>
    public Task<JsonElement> WaitForAsync(string path, string token, Func<JsonElement, bool> done, int seconds = 120, int pollMs = 100) =>
        Cloud.Api.WaitForAsync(path, token, done, seconds, pollMs);

    /// <summary>Creates a database and waits until it is <c>ready</c>, polling often so <see cref="CloudDatabase.CreateToReady"/> is tight.</summary>
    public Task<CloudDatabase> CreateReadyDatabaseAsync(string token, string orgId, string name) =>
        Cloud.Api.CreateReadyDatabaseAsync(token, orgId, name, pollMs: 20);
}

/// <summary>A database a user created through the REST API, with the owner password it came with.</summary>
public sealed record CloudDatabase(string Id, string OrgId, string Token, string Password, TimeSpan CreateToReady)
{
    /// <summary>The control plane's answer to the create request (database and credentials).</summary>
    public JsonElement Created { get; init; }
}
