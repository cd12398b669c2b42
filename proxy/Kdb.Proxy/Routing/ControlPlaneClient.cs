using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;

namespace Kdb.Proxy.Routing;

/// <summary>The proxy's calls to the control plane's internal API, with its <c>kdb.proxy</c> token.</summary>
public interface IControlPlaneClient
{
    /// <summary>The long-poll: the whole table when <paramref name="since"/> is null, else the changes after it (or none after ~30 s).</summary>
    Task<RoutesResponse> PollRoutesAsync(long? since, CancellationToken cancellationToken);

    /// <summary>One entry, or null when the control plane has no route for that name (404).</summary>
    Task<RouteEntry?> GetRouteAsync(string databaseId, CancellationToken cancellationToken);

    /// <summary>Posts connection-log events (connect, deny, throttle).</summary>
    Task PostConnectionLogAsync(IReadOnlyList<ConnectionEvent> events, CancellationToken cancellationToken);

    /// <summary>Posts usage records (the proxy reports egress bytes and connections).</summary>
    Task PostUsageAsync(IReadOnlyList<UsageRecord> records, CancellationToken cancellationToken);

    /// <summary>The proxy's own service token, also its password towards the nodes.</summary>
    ValueTask<string> GetServiceTokenAsync(CancellationToken cancellationToken);
}

/// <summary>A connection-log event (DESIGN: <c>POST /internal/v1/connection-log</c>).</summary>
public sealed record ConnectionEvent(string Source, string DatabaseId, DateTimeOffset At, string Kind, string? Reason, string? ClientIp, string? User);

/// <summary>A usage record (DESIGN: <c>POST /internal/v1/usage</c>); the proxy fills egress and connections.</summary>
public sealed record UsageRecord(string Source, long Sequence, string DatabaseId, DateTimeOffset HourStart, long EgressBytes, long Connections)
{
    public long RowsRead => 0;

    public long RowsWritten => 0;

    public long BytesRead => 0;

    public long BytesWritten => 0;

    public long StorageBytes => 0;

    public long CpuMs => 0;
}

internal sealed class ControlPlaneClient(HttpClient http, string proxyId, Func<CancellationToken, ValueTask<string>> token) : IControlPlaneClient
{
    public async Task<RoutesResponse> PollRoutesAsync(long? since, CancellationToken cancellationToken)
    {
        string query = "/internal/v1/routes?proxy=" + Uri.EscapeDataString(proxyId)
            + (since is { } s ? "&since=" + s.ToString(CultureInfo.InvariantCulture) : string.Empty);
        using HttpRequestMessage request = await CreateAsync(HttpMethod.Get, query, cancellationToken).ConfigureAwait(false);
        using HttpResponseMessage response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        response.EnsureSuccessStatusCode();
        return await response.Content.ReadFromJsonAsync<RoutesResponse>(JsonSerializerOptions.Web, cancellationToken).ConfigureAwait(false)
            ?? throw new HttpRequestException("empty route table answer");
    }

    public async Task<RouteEntry?> GetRouteAsync(string databaseId, CancellationToken cancellationToken)
    {
        using HttpRequestMessage request = await CreateAsync(HttpMethod.Get, "/internal/v1/routes/" + Uri.EscapeDataString(databaseId), cancellationToken).ConfigureAwait(false);
        using HttpResponseMessage response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        response.EnsureSuccessStatusCode();
        return await response.Content.ReadFromJsonAsync<RouteEntry>(JsonSerializerOptions.Web, cancellationToken).ConfigureAwait(false);
    }

    public Task PostConnectionLogAsync(IReadOnlyList<ConnectionEvent> events, CancellationToken cancellationToken) =>
        PostAsync("/internal/v1/connection-log", events, cancellationToken);

    public Task PostUsageAsync(IReadOnlyList<UsageRecord> records, CancellationToken cancellationToken) =>
        PostAsync("/internal/v1/usage", records, cancellationToken);

    public ValueTask<string> GetServiceTokenAsync(CancellationToken cancellationToken) => token(cancellationToken);

    private async Task PostAsync<T>(string path, IReadOnlyList<T> items, CancellationToken cancellationToken)
    {
        using HttpRequestMessage request = await CreateAsync(HttpMethod.Post, path, cancellationToken).ConfigureAwait(false);
        request.Content = JsonContent.Create(items, options: JsonSerializerOptions.Web);
        using HttpResponseMessage response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        response.EnsureSuccessStatusCode();
    }

    private async Task<HttpRequestMessage> CreateAsync(HttpMethod method, string path, CancellationToken cancellationToken)
    {
        var request = new HttpRequestMessage(method, new Uri(path, UriKind.Relative));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await token(cancellationToken).ConfigureAwait(false));
        return request;
    }
}
