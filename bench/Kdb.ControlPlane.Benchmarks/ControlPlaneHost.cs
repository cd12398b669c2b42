using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Kdb.Testing.Ports;
using Kdb.Testing.Postgres;
using Microsoft.AspNetCore.Mvc.Testing;

namespace Kdb.ControlPlane.Benchmarks;

/// <summary>
/// A private PostgreSQL 15 and the control plane in this process, served by Kestrel on a real loopback port,
/// so every request crosses the HTTP stack as a client's would.
/// </summary>
internal sealed class ControlPlaneHost : IAsyncDisposable
{
    public const string ProxySecret = "bench-proxy-secret-0123456789abcdefghijklmnopqrstuvwxyz";
    public const string NodeSecret = "bench-node-secret-0123456789abcdefghijklmnopqrstuvwxyz";
    public const string ProvisioningSecret = "bench-prov-secret-0123456789abcdefghijklmnopqrstuvwxyz";

    /// <summary>High enough that the limiter never rejects a benchmark request: the figures measure the service.</summary>
    public const int RaisedRateLimitPerMinute = 100_000_000;

    private readonly PostgresFixture _postgres;
    private readonly TestDatabase _database;
    private readonly WebApplicationFactory<Program> _factory;

    private ControlPlaneHost(PostgresFixture postgres, TestDatabase database, WebApplicationFactory<Program> factory, HttpClient client)
    {
        _postgres = postgres;
        _database = database;
        _factory = factory;
        Client = client;
    }

    public HttpClient Client { get; }

    public string ConnectionString => _database.ConnectionString;

    public static async Task<ControlPlaneHost> StartAsync()
    {
        var postgres = new PostgresFixture();
        await postgres.InitializeAsync();
        var database = await postgres.CreateDatabaseAsync("cpbench");
        var port = FreePorts.Allocate();

        // WebApplicationFactory finds the control plane's content root through MvcTestingAppManifest.json in
        // the current directory, as a test runner has it; `dotnet run --project` leaves us wherever it was started.
        Directory.SetCurrentDirectory(AppContext.BaseDirectory);
        var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(web =>
        {
            web.UseSetting("Postgres:ConnectionString", database.ConnectionString);
            web.UseSetting("ControlPlane:Port", port.ToString(System.Globalization.CultureInfo.InvariantCulture));
            web.UseSetting("Tokens:Issuer", "http://controlplane.bench");
            web.UseSetting("ServiceClients:Proxy:Secret", ProxySecret);
            web.UseSetting("ServiceClients:Node:Secret", NodeSecret);
            web.UseSetting("ServiceClients:Provisioning:Secret", ProvisioningSecret);
            web.UseSetting("RateLimits:TokenRequestsPerMinute", RaisedRateLimitPerMinute.ToString(System.Globalization.CultureInfo.InvariantCulture));
            web.UseSetting("RateLimits:ApiRequestsPerMinute", RaisedRateLimitPerMinute.ToString(System.Globalization.CultureInfo.InvariantCulture));
            // Only critical logs: the figures should not include console logging, and a failing request fails the
            // run by its status anyway (the refresh figure's serialization failures are counted, see TokensAsync).
            web.UseSetting("Logging:LogLevel:Default", "Critical");
            // The figures exclude provisioning (issue 8): without nodes it would only retry in the same process.
            web.UseSetting("Provisioning:Embedded", "false");
        });

        // The host's own Listen (ControlPlane:Port on loopback) decides the endpoint; Kestrel replaces the test server.
        factory.UseKestrel();
        factory.StartServer();
        var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 256, PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5) })
        {
            BaseAddress = new Uri($"http://127.0.0.1:{port}"),
            Timeout = TimeSpan.FromSeconds(60),
        };
        var host = new ControlPlaneHost(postgres, database, factory, client);
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (true)
        {
            try
            {
                using var ready = await client.GetAsync(new Uri("/health/ready", UriKind.Relative));
                if (ready.StatusCode == HttpStatusCode.OK)
                {
                    return host;
                }
            }
            catch (HttpRequestException) when (DateTime.UtcNow < deadline)
            {
            }

            if (DateTime.UtcNow > deadline)
            {
                await host.DisposeAsync();
                throw new TimeoutException("the control plane did not become ready within 90 s");
            }

            await Task.Delay(200);
        }
    }

    /// <summary>Signs a user up and returns (user id, access token, refresh token) from a password grant.</summary>
    public async Task<(string UserId, string AccessToken)> SignupAsync(string email, string password)
    {
        using var signup = await Client.PostAsJsonAsync(new Uri("/v1/signup", UriKind.Relative), new { email, password, name = "bench" });
        await EnsureAsync(signup, HttpStatusCode.Created, HttpStatusCode.OK);
        var (access, _) = await PasswordGrantAsync(email, password);
        using var me = await SendAsync(HttpMethod.Get, "/v1/me", access);
        await EnsureAsync(me, HttpStatusCode.OK);
        var body = await me.Content.ReadFromJsonAsync<JsonElement>();
        return (body.GetProperty("id").GetString()!, access);
    }

    public async Task<(string AccessToken, string RefreshToken)> PasswordGrantAsync(string email, string password)
    {
        using var response = await TokenAsync(new Dictionary<string, string> { ["grant_type"] = "password", ["username"] = email, ["password"] = password });
        await EnsureAsync(response, HttpStatusCode.OK);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        return (body.GetProperty("access_token").GetString()!, body.GetProperty("refresh_token").GetString()!);
    }

    public async Task<HttpResponseMessage> TokenAsync(Dictionary<string, string> form) =>
        await Client.PostAsync(new Uri("/connect/token", UriKind.Relative), new FormUrlEncodedContent(form));

    public async Task<string> ServiceTokenAsync(string clientId, string secret)
    {
        using var response = await TokenAsync(new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["client_id"] = clientId, ["client_secret"] = secret });
        await EnsureAsync(response, HttpStatusCode.OK);
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("access_token").GetString()!;
    }

    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string token, HttpContent? content = null)
    {
        using var request = new HttpRequestMessage(method, new Uri(path, UriKind.Relative)) { Content = content };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return await Client.SendAsync(request);
    }

    /// <summary>Fails the run on an unexpected status: a benchmark that counts errors as work measures nothing.</summary>
    public static async Task EnsureAsync(HttpResponseMessage response, params HttpStatusCode[] expected)
    {
        if (Array.IndexOf(expected, response.StatusCode) < 0)
        {
            var body = await response.Content.ReadAsStringAsync();
            throw new InvalidOperationException($"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri} answered {(int)response.StatusCode}: {body}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _factory.DisposeAsync();
        await _database.DisposeAsync();
        await _postgres.DisposeAsync();
    }
}
