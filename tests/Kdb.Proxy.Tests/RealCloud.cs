using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
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
    public const string UserPassword = "long enough password";

    private readonly PostgresFixture _postgres = new();
    private TestDatabase? _database;

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
    public async Task<(string Token, string OrgId)> UserAsync(string name)
    {
        var email = $"{name}-{Guid.NewGuid().ToString("N")[..8]}@example.com";
        var (status, _) = await SendAsync(HttpMethod.Post, "/v1/signup", null, new { email, password = UserPassword, name });
        Assert.Equal(HttpStatusCode.Created, status);
        var token = await TokenAsync(new() { ["grant_type"] = "password", ["username"] = email, ["password"] = UserPassword });
        var (_, me) = await SendAsync(HttpMethod.Get, "/v1/me", token);
        return (token, me.GetProperty("orgs")[0].GetProperty("id").GetString()!);
    }

    /// <summary>Creates a database through the REST API and waits for <c>ready</c>; returns the creation answer.</summary>
    public async Task<JsonElement> CreateReadyDatabaseAsync(string token, string orgId, string name)
    {
        var (status, created) = await SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name });
        Assert.True(status == HttpStatusCode.Accepted, $"{(int)status} {created}");
        var id = created.GetProperty("database").GetProperty("id").GetString()!;
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (true)
        {
            var (_, database) = await SendAsync(HttpMethod.Get, $"/v1/databases/{id}", token);
            var state = database.GetProperty("status").GetString();
            if (state == "ready")
            {
                return created;
            }

            Assert.True(state != "failed" && DateTime.UtcNow < deadline, database + "\n" + Logs);
            await Task.Delay(200);
        }
    }

    public async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpMethod method, string path, string? token, object? body = null)
    {
        using var request = new HttpRequestMessage(method, new Uri(ControlPlane, path));
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        using var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    private async Task<string> TokenAsync(Dictionary<string, string> form)
    {
        using var response = await Http.PostAsync(new Uri(ControlPlane, "/connect/token"), new FormUrlEncodedContent(form));
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("access_token").GetString()!;
    }
}
