using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Kdb.Portal.Session;
using Microsoft.AspNetCore.Authentication;

namespace Kdb.Portal.Api;

/// <summary>
/// The management REST API, called as the signed-in user (the access token kept in the session cookie).
/// Every failure comes back as an <see cref="ApiProblem"/>, never as an exception, so pages can show it.
/// </summary>
internal sealed class ControlPlaneApi(HttpClient http, IHttpContextAccessor accessor, ILogger<ControlPlaneApi> logger)
{
    public const string HttpClientName = "controlplane";

    public Task<ApiResult<T>> GetAsync<T>(string path, CancellationToken ct, string? accessToken = null) =>
        SendAsync<T>(HttpMethod.Get, path, null, ct, accessToken);

    public Task<ApiResult<T>> PostAsync<T>(string path, object? body, CancellationToken ct) =>
        SendAsync<T>(HttpMethod.Post, path, body, ct, null);

    public Task<ApiResult<T>> PatchAsync<T>(string path, object body, CancellationToken ct) =>
        SendAsync<T>(HttpMethod.Patch, path, body, ct, null);

    public Task<ApiResult<T>> PutAsync<T>(string path, object body, CancellationToken ct) =>
        SendAsync<T>(HttpMethod.Put, path, body, ct, null);

    public Task<ApiResult<JsonElement>> DeleteAsync(string path, CancellationToken ct) =>
        SendAsync<JsonElement>(HttpMethod.Delete, path, null, ct, null);

    /// <summary>A GET whose answer is not JSON (a CSV statement): the body as text, in the media type asked for.</summary>
    public Task<ApiResult<string>> GetTextAsync(string path, string mediaType, CancellationToken ct) =>
        SendAsync(HttpMethod.Get, path, null, ct, null, mediaType, static async (response, ct) => await response.Content.ReadAsStringAsync(ct));

    /// <summary>An anonymous call (sign-up, password reset).</summary>
    public Task<ApiResult<T>> PostAnonymousAsync<T>(string path, object body, CancellationToken ct) =>
        SendAsync<T>(HttpMethod.Post, path, body, ct, string.Empty);

    /// <summary>Escapes one path segment (ids come from URLs the user can edit).</summary>
    public static string Segment(string value) => Uri.EscapeDataString(value);

    private Task<ApiResult<T>> SendAsync<T>(HttpMethod method, string path, object? body, CancellationToken ct, string? accessToken) =>
        SendAsync(method, path, body, ct, accessToken, "application/json", static async (response, ct) =>
            response.StatusCode == HttpStatusCode.NoContent || response.Content.Headers.ContentLength == 0
                ? default
                : await response.Content.ReadFromJsonAsync<T>(JsonSerializerOptions.Web, ct));

    private async Task<ApiResult<T>> SendAsync<T>(
        HttpMethod method, string path, object? body, CancellationToken ct, string? accessToken, string accept, Func<HttpResponseMessage, CancellationToken, Task<T?>> read)
    {
        var token = accessToken ?? await CurrentAccessTokenAsync();
        if (token is null)
        {
            return new(default, ApiProblem.FromStatus((int)HttpStatusCode.Unauthorized));
        }

        using var request = new HttpRequestMessage(method, new Uri(path, UriKind.Relative));
        if (token.Length > 0)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(accept));
        if (body is not null)
        {
            request.Content = JsonContent.Create(body, options: JsonSerializerOptions.Web);
        }

        try
        {
            using var response = await http.SendAsync(request, ct);
            return response.IsSuccessStatusCode
                ? new(await read(response, ct), null)
                : new(default, await ProblemReader.ReadAsync(response, ct));
        }
        catch (HttpRequestException ex)
        {
            logger.LogWarning(ex, "Control plane unreachable: {Method} {Path}", method, path);
            return new(default, ApiProblem.Unreachable(ex.Message));
        }
        catch (TaskCanceledException ex) when (!ct.IsCancellationRequested)
        {
            logger.LogWarning(ex, "Control plane timed out: {Method} {Path}", method, path);
            return new(default, ApiProblem.Unreachable("timed out"));
        }
        catch (JsonException ex)
        {
            logger.LogError(ex, "Control plane answered {Method} {Path} with a body the portal cannot read", method, path);
            return new(default, ApiProblem.FromStatus(502));
        }
    }

    private async Task<string?> CurrentAccessTokenAsync()
    {
        var context = accessor.HttpContext;
        return context is null ? null : await context.GetTokenAsync(SessionDefaults.Scheme, SessionDefaults.AccessToken);
    }
}

/// <summary>Reads an RFC 7807 body (or any body) into an <see cref="ApiProblem"/>.</summary>
internal static class ProblemReader
{
    public static async Task<ApiProblem> ReadAsync(HttpResponseMessage response, CancellationToken ct)
    {
        var status = (int)response.StatusCode;
        string? text;
        try
        {
            text = await response.Content.ReadAsStringAsync(ct);
        }
        catch (HttpRequestException)
        {
            return ApiProblem.FromStatus(status);
        }

        if (string.IsNullOrWhiteSpace(text))
        {
            return ApiProblem.FromStatus(status);
        }

        try
        {
            using var document = JsonDocument.Parse(text);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return ApiProblem.FromStatus(status);
            }

            var errors = new Dictionary<string, string[]>(StringComparer.OrdinalIgnoreCase);
            if (root.TryGetProperty("errors", out var map) && map.ValueKind == JsonValueKind.Object)
            {
                foreach (var field in map.EnumerateObject())
                {
                    errors[field.Name] = field.Value.ValueKind == JsonValueKind.Array
                        ? [.. field.Value.EnumerateArray().Select(e => e.ToString())]
                        : [field.Value.ToString()];
                }
            }

            return new ApiProblem(status, String(root, "type"), String(root, "title"), String(root, "detail") ?? String(root, "error_description"), errors);
        }
        catch (JsonException)
        {
            return ApiProblem.FromStatus(status);
        }
    }

    private static string? String(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
