using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Kdb.Testing.EndToEnd;

namespace Kdb.Testing.Cloud;

/// <summary>
/// The REST calls every process-based local cloud fixture makes against its control plane, as a user or a service
/// would: tokens, sign-up, databases until ready, polling. One copy, so the fixtures differ only in what they start.
/// Failures throw with the status, body and the cloud's logs, which works in tests and benchmarks alike.
/// </summary>
public sealed class CloudApi(HttpClient http, string controlPlaneUrl, Func<string> logs)
{
    public const string NodeSecret = "node-secret-0123456789abcdefghijklmnopqrstuvwxyz";
    public const string ProvisioningSecret = "prov-secret-0123456789abcdefghijklmnopqrstuvwxyz";
    public const string ProxySecret = "proxy-secret-0123456789abcdefghijklmnopqrstuvwxyz";
    public const string UserPassword = "long enough password";

    public HttpClient Http => http;

    public async Task<string> ServiceTokenAsync(string clientId, string secret) => await TokenAsync(new()
    {
        ["grant_type"] = "client_credentials",
        ["client_id"] = clientId,
        ["client_secret"] = secret,
    });

    public async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpMethod method, string path, string? token, object? body = null)
    {
        using var request = new HttpRequestMessage(method, controlPlaneUrl + path);
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }
        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    /// <summary>Waits until the control plane lists at least <paramref name="count"/> nodes as alive.</summary>
    public async Task WaitForAliveNodesAsync(int count, int seconds = 60)
    {
        var token = await ServiceTokenAsync("kdb-provisioning", ProvisioningSecret);
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            var (status, body) = await SendAsync(HttpMethod.Get, "/internal/v1/nodes", token);
            if (status == HttpStatusCode.OK && body.ValueKind == JsonValueKind.Object
                && body.GetProperty("items").EnumerateArray().Count(n => n.GetProperty("status").GetString() == "alive") >= count)
            {
                return;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("nodes did not report alive: " + body + "\n" + logs());
            }
            await Task.Delay(200);
        }
    }

    /// <summary>Signs a new user up; returns their management token and personal org.</summary>
    public async Task<(string Token, string OrgId)> UserAsync(string name)
    {
        var email = $"{name}-{Guid.NewGuid().ToString("N")[..8]}@example.com";
        var (status, body) = await SendAsync(HttpMethod.Post, "/v1/signup", null, new { email, password = UserPassword, name });
        if (status != HttpStatusCode.Created)
        {
            throw new InvalidOperationException($"signup: {(int)status} {body}");
        }
        var access = await TokenAsync(new() { ["grant_type"] = "password", ["username"] = email, ["password"] = UserPassword });
        var (_, me) = await SendAsync(HttpMethod.Get, "/v1/me", access);
        return (access, me.GetProperty("orgs")[0].GetProperty("id").GetString()!);
    }

    /// <summary>
    /// Polls a resource until <paramref name="done"/> holds; the generous deadline never fails a slow machine alone,
    /// and a refused connection (a control plane restarting under a fault test) is polled through.
    /// </summary>
    public async Task<JsonElement> WaitForAsync(string path, string token, Func<JsonElement, bool> done, int seconds = 90, int pollMs = 100)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            var status = HttpStatusCode.ServiceUnavailable;
            JsonElement body = default;
            try
            {
                (status, body) = await SendAsync(HttpMethod.Get, path, token);
            }
            catch (HttpRequestException) when (DateTime.UtcNow < deadline)
            {
            }
            if (status == HttpStatusCode.OK && done(body))
            {
                return body;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"GET {path}: {(int)status} {body}\n{logs()}");
            }
            await Task.Delay(pollMs);
        }
    }

    /// <summary>
    /// Creates a database through the REST API and waits until it is <c>ready</c>; returns its id, owner password,
    /// the creation answer and the time from the request to the first poll that saw it ready.
    /// </summary>
    public async Task<CloudDatabase> CreateReadyDatabaseAsync(string token, string orgId, string name, int seconds = 120, int pollMs = 100)
    {
        var started = Stopwatch.GetTimestamp();
        var (status, created) = await SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name });
        if (status != HttpStatusCode.Accepted)
        {
            throw new InvalidOperationException($"create database: {(int)status} {created}");
        }
        var id = created.GetProperty("database").GetProperty("id").GetString()!;
        var database = await WaitForAsync($"/v1/databases/{id}", token, d => d.GetProperty("status").GetString() is "ready" or "failed", seconds, pollMs);
        var elapsed = Stopwatch.GetElapsedTime(started);
        if (database.GetProperty("status").GetString() != "ready")
        {
            throw new InvalidOperationException($"database {id} failed: {database}\n{logs()}");
        }
        return new CloudDatabase(id, orgId, token, created.GetProperty("credentials").GetProperty("password").GetString()!, elapsed) { Created = created };
    }

    private async Task<string> TokenAsync(Dictionary<string, string> form)
    {
        using var response = await http.PostAsync(new Uri(controlPlaneUrl + "/connect/token"), new FormUrlEncodedContent(form));
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"token ({form["grant_type"]}): {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("access_token").GetString()!;
    }
}
