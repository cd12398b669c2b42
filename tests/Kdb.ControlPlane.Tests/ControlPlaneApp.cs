using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Kdb.Testing;
using Kdb.Testing.Postgres;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Kdb.ControlPlane.Tests;

[CollectionDefinition(TestCollections.Postgres)]
public sealed class PostgresCollection : ICollectionFixture<PostgresFixture>;

/// <summary>A control plane on a fresh database of the shared private PostgreSQL, ready (migrated, keys made).</summary>
public sealed class ControlPlaneApp : IAsyncDisposable
{
    public const string ProxySecret = "proxy-secret-0123456789abcdefghijklmnopqrstuvwxyz";
    public const string NodeSecret = "node-secret-0123456789abcdefghijklmnopqrstuvwxyz";
    public const string ProvisioningSecret = "prov-secret-0123456789abcdefghijklmnopqrstuvwxyz";
    public const string Issuer = "http://controlplane.test";

    private readonly bool _ownsDatabase;

    private ControlPlaneApp(WebApplicationFactory<Program> factory, TestDatabase database, bool ownsDatabase)
    {
        Factory = factory;
        Database = database;
        Client = factory.CreateClient();
        _ownsDatabase = ownsDatabase;
    }

    public WebApplicationFactory<Program> Factory { get; }

    public TestDatabase Database { get; }

    public HttpClient Client { get; }

    public static async Task<ControlPlaneApp> StartAsync(PostgresFixture postgres, IReadOnlyDictionary<string, string>? settings = null, ILoggerProvider? logSink = null) =>
        await StartOnAsync(await postgres.CreateDatabaseAsync("cp"), true, settings, logSink);

    /// <summary>Another control-plane instance on <paramref name="other"/>'s database (it keeps owning it).</summary>
    public static Task<ControlPlaneApp> StartBesideAsync(ControlPlaneApp other, IReadOnlyDictionary<string, string>? settings = null) =>
        StartOnAsync(other.Database, false, settings, null);

    private static async Task<ControlPlaneApp> StartOnAsync(TestDatabase database, bool ownsDatabase, IReadOnlyDictionary<string, string>? settings, ILoggerProvider? logSink)
    {
        var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(web =>
        {
            web.UseSetting("Postgres:ConnectionString", database.ConnectionString);
            web.UseSetting("Tokens:Issuer", Issuer);
            web.UseSetting("ServiceClients:Proxy:Secret", ProxySecret);
            web.UseSetting("ServiceClients:Node:Secret", NodeSecret);
            web.UseSetting("ServiceClients:Provisioning:Secret", ProvisioningSecret);
            web.UseSetting("Logging:LogLevel:Default", "Warning");
            // The tests stand in for provisioning (issue 8): the real one would race their stand-ins.
            web.UseSetting("Provisioning:Embedded", "false");
            if (logSink is not null)
            {
                web.ConfigureServices(services => services.AddSingleton(logSink));
            }

            foreach (var (key, value) in settings ?? new Dictionary<string, string>())
            {
                web.UseSetting(key, value);
            }
        });
        var app = new ControlPlaneApp(factory, database, ownsDatabase);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            using var ready = await app.Client.GetAsync(new Uri("/health/ready", UriKind.Relative));
            if (ready.StatusCode == HttpStatusCode.OK)
            {
                return app;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("control plane not ready: " + await ready.Content.ReadAsStringAsync());
            }

            await Task.Delay(200);
        }
    }

    /// <summary>Signs a new user up and returns a management-API access token for them.</summary>
    public async Task<string> SignupAndLoginAsync(string email, string password = "long enough password")
    {
        using var signup = await Client.PostAsJsonAsync("/v1/signup", new { email, password, name = email.Split('@')[0] });
        signup.EnsureSuccessStatusCode();
        using var token = await Client.PostAsync(new Uri("/connect/token", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "password",
            ["username"] = email,
            ["password"] = password,
        }));
        token.EnsureSuccessStatusCode();
        return (await token.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("access_token").GetString()!;
    }

    /// <summary>A service token by client_credentials.</summary>
    public async Task<string> ServiceTokenAsync(string clientId, string secret)
    {
        using var token = await Client.PostAsync(new Uri("/connect/token", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = clientId,
            ["client_secret"] = secret,
        }));
        token.EnsureSuccessStatusCode();
        return (await token.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("access_token").GetString()!;
    }

    /// <summary>Sends a request as the holder of <paramref name="token"/>.</summary>
    public async Task<(HttpStatusCode Status, JsonElement Body, HttpResponseMessage Response)> SendAsync(HttpMethod method, string path, string token, object? body = null, Action<HttpRequestMessage>? configure = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (body is not null)
        {
            request.Content = body is string raw ? new StringContent(raw, System.Text.Encoding.UTF8, "application/json") : JsonContent.Create(body);
        }

        configure?.Invoke(request);
        var response = await Client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone(), response);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Factory.DisposeAsync();
        if (_ownsDatabase)
        {
            await Database.DisposeAsync();
        }
    }
}
