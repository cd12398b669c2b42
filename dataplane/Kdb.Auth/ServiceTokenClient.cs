using System.Text.Json.Serialization;

namespace Kdb.Node.ControlPlane;

/// <summary>Service identity settings (configuration section <c>ServiceClient</c>), handed out by <c>./kdb up</c>.</summary>
public sealed class ServiceClientOptions
{
    public string Id { get; set; } = "kdb-node";

    public string Secret { get; set; } = string.Empty;
}

/// <summary>
/// Gets and caches a <c>kdb-internal</c> token by client_credentials, renewing it a minute before it
/// expires (DESIGN: service identities).
/// </summary>
public sealed class ServiceTokenClient(HttpClient http, ServiceClientOptions client, TimeProvider time)
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private string? _token;
    private DateTimeOffset _renewAt;

    public async Task<string> GetAsync(CancellationToken ct)
    {
        if (_token is { } cached && time.GetUtcNow() < _renewAt)
        {
            return cached;
        }

        await _gate.WaitAsync(ct);
        try
        {
            if (_token is { } again && time.GetUtcNow() < _renewAt)
            {
                return again;
            }

            using var response = await http.PostAsync(new Uri("/connect/token", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "client_credentials",
                ["client_id"] = client.Id,
                ["client_secret"] = client.Secret,
            }), ct);
            if (!response.IsSuccessStatusCode)
            {
                throw new HttpRequestException($"the control plane refused the {client.Id} credentials ({(int)response.StatusCode})");
            }

            var body = await response.Content.ReadFromJsonAsync<TokenResponse>(ct) ?? throw new HttpRequestException("empty token response");
            _token = body.AccessToken;
            _renewAt = time.GetUtcNow() + TimeSpan.FromSeconds(Math.Max(body.ExpiresIn - 60, body.ExpiresIn / 2));
            return _token;
        }
        finally
        {
            _gate.Release();
        }
    }

    private sealed record TokenResponse(
        [property: JsonPropertyName("access_token")] string AccessToken,
        [property: JsonPropertyName("expires_in")] int ExpiresIn);
}
