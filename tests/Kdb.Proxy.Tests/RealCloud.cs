using System.Net;
using System.Text.Json;
using Kdb.Testing.Cloud;
using Kdb.Testing.Portal;
using Kdb.Testing.Postgres;

namespace Kdb.Proxy.Tests;

/// <summary>
/// The local cloud as <c>./kdb up</c> lays it out (<see cref="ProcessCloud"/>: the private PostgreSQL, a real control
/// plane with provisioning inside it, three clustered nodes, and a real proxy following the control plane's route
/// long-poll with TLS from a development CA). Nothing is a stand-in; tests drive it through the REST API.
/// </summary>
public sealed class RealCloud : IAsyncLifetime
{
    public const string UserPassword = CloudApi.UserPassword;

    private readonly PostgresFixture _postgres = new();
    private TestDatabase? _database;
    private CloudApi _api = null!;

    public ProcessCloud Cloud { get; private set; } = null!;

    public HttpClient Http { get; } = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(60) };

    public Uri ControlPlane => Cloud.ControlPlaneUrl;

    /// <summary>A private directory for files a test writes (the demo env file).</summary>
    public string StateDirectory { get; } = Directory.CreateTempSubdirectory("kdb-realcloud-").FullName;

    public string Logs => Cloud.Logs;

    public async Task InitializeAsync()
    {
        await _postgres.InitializeAsync();
        _database = await _postgres.CreateDatabaseAsync("realcloud");
        Cloud = await ProcessCloud.StartAsync(_database.ConnectionString);
        _api = new CloudApi(Http, Cloud.ControlPlaneUrl.GetLeftPart(UriPartial.Authority), () => Logs);
    }

    public async Task DisposeAsync()
    {
        if (Cloud is not null)
        {
            await Cloud.DisposeAsync();
        }

        if (_database is not null)
        {
            await _database.DisposeAsync();
        }

        await _postgres.DisposeAsync();
        Http.Dispose();
        Directory.Delete(StateDirectory, recursive: true);
    }

    /// <summary>Signs a new user up; returns their management token and personal org.</summary>
    public Task<(string Token, string OrgId)> UserAsync(string name) => _api.UserAsync(name);

    /// <summary>Creates a database through the REST API and waits for <c>ready</c>; returns the creation answer.</summary>
    public async Task<JsonElement> CreateReadyDatabaseAsync(string token, string orgId, string name) =>
        (await _api.CreateReadyDatabaseAsync(token, orgId, name, pollMs: 200)).Created;

    public Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpMethod method, string path, string? token, object? body = null) =>
        _api.SendAsync(method, path, token, body);
}
