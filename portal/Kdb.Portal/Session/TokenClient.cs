using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Kdb.Portal.Session;

/// <summary>Access and refresh tokens from the control plane's token endpoint.</summary>
/// <param name="AccessToken">The management-API JWT.</param>
/// <param name="RefreshToken">The rotating refresh token (single use).</param>
/// <param name="ExpiresAt">When <paramref name="AccessToken"/> expires.</param>
public sealed record TokenSet(string AccessToken, string RefreshToken, DateTimeOffset ExpiresAt);

/// <summary>The outcome of a grant: tokens, or why not.</summary>
/// <param name="Tokens">The tokens, when granted.</param>
/// <param name="Rejected">True when the control plane refused the credentials (invalid_grant): a definite no.</param>
/// <param name="Error">A message for the user when not granted.</param>
public sealed record GrantResult(TokenSet? Tokens, bool Rejected, string? Error);

/// <summary>The OAuth endpoints of the control plane: <c>/connect/token</c> and <c>/connect/revoke</c>.</summary>
internal sealed class TokenClient(HttpClient http, TimeProvider time, Microsoft.Extensions.Options.IOptions<PortalSessionOptions> options, ILogger<TokenClient> logger)
{
    public Task<GrantResult> PasswordAsync(string email, string password, CancellationToken ct) =>
        GrantAsync(new Dictionary<string, string>
        {
            ["grant_type"] = "password",
            ["username"] = email,
            ["password"] = password,
            ["client_id"] = options.Value.ClientId,
        }, ct);

    public Task<GrantResult> RefreshAsync(string refreshToken, CancellationToken ct) =>
        GrantAsync(new Dictionary<string, string> { ["grant_type"] = "refresh_token", ["refresh_token"] = refreshToken }, ct);

    /// <summary>Revokes the refresh token's whole family (RFC 7009); false when the control plane did not confirm.</summary>
    public async Task<bool> RevokeAsync(string refreshToken, CancellationToken ct)
    {
        try
        {
            using var content = new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = refreshToken, ["token_type_hint"] = "refresh_token" });
            using var response = await http.PostAsync(new Uri("/connect/revoke", UriKind.Relative), content, ct);
            return response.IsSuccessStatusCode;
        }
        catch (HttpRequestException ex)
        {
            logger.LogWarning(ex, "Could not revoke a refresh token at logout");
            return false;
        }
    }

    private async Task<GrantResult> GrantAsync(Dictionary<string, string> form, CancellationToken ct)
    {
        HttpResponseMessage response;
        try
        {
            using var content = new FormUrlEncodedContent(form);
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri("/connect/token", UriKind.Relative)) { Content = content };
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            response = await http.SendAsync(request, ct);
        }
        catch (HttpRequestException ex)
        {
            logger.LogWarning(ex, "Token endpoint unreachable");
            return new(null, false, "The control plane cannot be reached right now. Try again in a moment.");
        }

        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(ct);
            if ((int)response.StatusCode == 429)
            {
                return new(null, false, "Too many sign-in attempts. Wait a minute and try again.");
            }

            TokenResponse? parsed = null;
            try
            {
                parsed = body.Length == 0 ? null : JsonSerializer.Deserialize<TokenResponse>(body);
            }
            catch (JsonException)
            {
                parsed = null;
            }

            if (response.IsSuccessStatusCode && parsed is { AccessToken: { Length: > 0 } access, RefreshToken: { Length: > 0 } refresh, ExpiresIn: > 0 })
            {
                return new(new TokenSet(access, refresh, time.GetUtcNow().AddSeconds(parsed.ExpiresIn)), false, null);
            }

            if (parsed?.Error == "invalid_grant")
            {
                return new(null, true, "The email or password is incorrect, or the account is locked.");
            }

            logger.LogWarning("Token endpoint answered {Status}: {Error}", (int)response.StatusCode, parsed?.Error);
            return new(null, parsed?.Error is not null && (int)response.StatusCode < 500, "Signing in failed. Try again in a moment.");
        }
    }

    private sealed record TokenResponse(
        [property: JsonPropertyName("access_token")] string? AccessToken,
        [property: JsonPropertyName("refresh_token")] string? RefreshToken,
        [property: JsonPropertyName("expires_in")] int ExpiresIn,
        [property: JsonPropertyName("error")] string? Error);
}
