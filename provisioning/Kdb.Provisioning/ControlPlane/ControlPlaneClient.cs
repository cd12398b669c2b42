using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Kdb.Provisioning.ControlPlane;

/// <summary>One shard group as a node's heartbeat reports it.</summary>
internal sealed record ReportedGroup(ulong GroupId, string Role, string? LeaderNodeId, int Databases);

/// <summary>A node from <c>GET /internal/v1/nodes</c>: endpoints, liveness and the groups it holds.</summary>
internal sealed record NodeEntry(string NodeId, string PgEndpoint, string InternalEndpoint, string HttpEndpoint, int Capacity, string Status, IReadOnlyList<ReportedGroup> Groups)
{
    public bool Alive => Status == "alive";

    /// <summary>Heartbeats carry <c>host:port</c>; the admin API is HTTP/2 cleartext on it.</summary>
    public Uri InternalUrl => InternalEndpoint.Contains("://", StringComparison.Ordinal) ? new Uri(InternalEndpoint) : new Uri("http://" + InternalEndpoint);
}

/// <summary>A database's placement from <c>GET /internal/v1/placements/{databaseId}</c>.</summary>
internal sealed record PlacementEntry(string DatabaseId, ulong? GroupId, IReadOnlyList<string> ReplicaNodeIds, string? LeaderNodeId);

/// <summary>A usage row for <c>POST /internal/v1/usage</c> (DESIGN, internal API).</summary>
internal sealed record UsageRow(
    string Source, long Sequence, string DatabaseId, DateTimeOffset HourStart, long RowsRead, long RowsWritten,
    long BytesRead, long BytesWritten, long StorageBytes, long CpuMs, long EgressBytes, long Connections);

/// <summary>What a heartbeat found: the operation runs (and the attempt holds it), ended, or another attempt took it over.</summary>
internal enum BeatOutcome
{
    Running,
    Ended,
    Lost,
}

/// <summary>
/// A claim's answer: granted; held by another live attempt (leave the operation to it); its groups held by another
/// operation (wait); or the operation is not running (finished, or not one the control plane tracks).
/// </summary>
internal enum ClaimOutcome
{
    Granted,
    Held,
    GroupsBusy,
    NotRunning,
}

/// <summary>The control plane answered in a way a retry will not change (a 4xx other than 404).</summary>
internal sealed class ControlPlaneRefusedException(string message) : Exception(message);

/// <summary>
/// The control plane's internal API as provisioning uses it, authenticated with a <c>kdb-internal</c> token
/// obtained by client_credentials and renewed a minute before it expires. Transport failures and 5xx throw
/// <see cref="HttpRequestException"/>, which the consumers' retry policy treats as transient.
/// </summary>
internal sealed class ControlPlaneClient(HttpClient http, ProvisioningOptions options, TimeProvider time)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly SemaphoreSlim _tokenGate = new(1, 1);
    private string? _token;
    private DateTimeOffset _renewAt;

    public async ValueTask<string> TokenAsync(CancellationToken ct)
    {
        if (_token is { } cached && time.GetUtcNow() < _renewAt)
        {
            return cached;
        }
        await _tokenGate.WaitAsync(ct);
        try
        {
            if (_token is { } again && time.GetUtcNow() < _renewAt)
            {
                return again;
            }
            using var response = await http.PostAsync(new Uri(options.ControlPlaneUrl, "/connect/token"), new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "client_credentials",
                ["client_id"] = options.ClientId,
                ["client_secret"] = options.ClientSecret,
            }), ct);
            if (!response.IsSuccessStatusCode)
            {
                // A refused secret may be a control plane still starting with other configuration: retry, do not fail the operation.
                throw new HttpRequestException($"the control plane refused the {options.ClientId} credentials ({(int)response.StatusCode})");
            }
            var body = await response.Content.ReadFromJsonAsync<TokenResponse>(Json, ct) ?? throw new HttpRequestException("empty token response");
            _token = body.AccessToken;
            _renewAt = time.GetUtcNow() + TimeSpan.FromSeconds(Math.Max(body.ExpiresIn - 60, body.ExpiresIn / 2));
            return _token;
        }
        finally
        {
            _tokenGate.Release();
        }
    }

    public async Task<IReadOnlyList<NodeEntry>> NodesAsync(CancellationToken ct)
    {
        using var response = await SendAsync(HttpMethod.Get, "/internal/v1/nodes", null, ct);
        await EnsureAsync(response, ct);
        var page = await response.Content.ReadFromJsonAsync<JsonElement>(Json, ct);
        var nodes = new List<NodeEntry>();
        foreach (var n in page.GetProperty("items").EnumerateArray())
        {
            var groups = new List<ReportedGroup>();
            if (n.TryGetProperty("groups", out var list) && list.ValueKind == JsonValueKind.Array)
            {
                foreach (var g in list.EnumerateArray())
                {
                    if (ParseU64(g, "groupId") is { } id)
                    {
                        groups.Add(new ReportedGroup(id, Text(g, "role") ?? "", Text(g, "leaderNodeId"), g.TryGetProperty("databases", out var d) && d.TryGetInt32(out var count) ? count : 0));
                    }
                }
            }
            nodes.Add(new NodeEntry(Text(n, "nodeId")!, Text(n, "pgEndpoint") ?? "", Text(n, "internalEndpoint") ?? "", Text(n, "httpEndpoint") ?? "",
                n.TryGetProperty("capacity", out var c) && c.TryGetInt32(out var cap) ? cap : 0, Text(n, "status") ?? "dead", groups));
        }
        return nodes;
    }

    /// <summary>The database's placement, or null when the control plane has no such (undeleted) database;
    /// <paramref name="includeDeleted"/>: also a deleted one still in its retention window.</summary>
    public async Task<PlacementEntry?> PlacementAsync(string databaseId, CancellationToken ct, bool includeDeleted = false)
    {
        var query = includeDeleted ? "?includeDeleted=true" : string.Empty;
        using var response = await SendAsync(HttpMethod.Get, $"/internal/v1/placements/{Uri.EscapeDataString(databaseId)}{query}", null, ct);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
        await EnsureAsync(response, ct);
        var view = await response.Content.ReadFromJsonAsync<JsonElement>(Json, ct);
        var replicas = new List<string>();
        if (view.TryGetProperty("replicas", out var list) && list.ValueKind == JsonValueKind.Array)
        {
            replicas.AddRange(list.EnumerateArray().Select(r => Text(r, "nodeId")).OfType<string>());
        }
        return new PlacementEntry(databaseId, ParseU64(view, "groupId"), replicas, Text(view, "leaderNodeId"));
    }

    /// <summary>Records where a database lives; false when the control plane has no such database (deleted meanwhile).</summary>
    public async Task<bool> PutPlacementAsync(string databaseId, ulong groupId, IReadOnlyList<string> nodeIds, CancellationToken ct)
    {
        var body = new { groupId = groupId.ToString(CultureInfo.InvariantCulture), replicas = nodeIds.Select(n => new { nodeId = n }).ToArray() };
        using var response = await SendAsync(HttpMethod.Put, $"/internal/v1/placements/{Uri.EscapeDataString(databaseId)}", JsonContent.Create(body, options: Json), ct);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return false;
        }
        await EnsureAsync(response, ct);
        return true;
    }

    /// <summary>
    /// Says a running operation is still being worked on (with <paramref name="attemptId"/>: renews that attempt's claim).
    /// </summary>
    public async Task<BeatOutcome> HeartbeatAsync(string operationId, string? attemptId, CancellationToken ct)
    {
        var query = attemptId is null ? string.Empty : "?attemptId=" + Uri.EscapeDataString(attemptId);
        using var response = await SendAsync(HttpMethod.Post, $"/internal/v1/operations/{Uri.EscapeDataString(operationId)}/heartbeat{query}", null, ct);
        switch (response.StatusCode)
        {
            case HttpStatusCode.NotFound:
                return BeatOutcome.Ended;
            case HttpStatusCode.Conflict:
                return BeatOutcome.Lost;
        }
        await EnsureAsync(response, ct);
        return BeatOutcome.Running;
    }

    /// <summary>
    /// Claims a running operation for an attempt (<c>POST /internal/v1/operations/{id}/claim</c>), with
    /// <paramref name="groups"/>: also those shard groups, one move per group cluster-wide.
    /// </summary>
    public async Task<ClaimOutcome> ClaimAsync(string operationId, string attemptId, IReadOnlyList<ulong>? groups, CancellationToken ct)
    {
        var body = new { attemptId, groups = groups?.Select(g => g.ToString(CultureInfo.InvariantCulture)).ToArray() };
        using var response = await SendAsync(HttpMethod.Post, $"/internal/v1/operations/{Uri.EscapeDataString(operationId)}/claim", JsonContent.Create(body, options: Json), ct);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return ClaimOutcome.NotRunning;
        }
        if (response.StatusCode == HttpStatusCode.Conflict)
        {
            var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Json, ct);
            return Text(problem, "type")?.EndsWith("/groups-busy", StringComparison.Ordinal) == true ? ClaimOutcome.GroupsBusy : ClaimOutcome.Held;
        }
        await EnsureAsync(response, ct);
        return ClaimOutcome.Granted;
    }

    /// <summary>
    /// Records the target chosen for a move requested without one; returns the recorded target (an earlier attempt's choice
    /// wins). Null when the attempt no longer holds the move's claim.
    /// </summary>
    public async Task<ulong?> RecordMoveTargetAsync(string operationId, string attemptId, ulong targetGroupId, CancellationToken ct)
    {
        var body = new { attemptId, targetGroupId = targetGroupId.ToString(CultureInfo.InvariantCulture) };
        using var response = await SendAsync(HttpMethod.Put, $"/internal/v1/operations/{Uri.EscapeDataString(operationId)}/move-target", JsonContent.Create(body, options: Json), ct);
        if (response.StatusCode is HttpStatusCode.Conflict or HttpStatusCode.NotFound)
        {
            return null;
        }
        await EnsureAsync(response, ct);
        return ParseU64(await response.Content.ReadFromJsonAsync<JsonElement>(Json, ct), "targetGroupId")
            ?? throw new HttpRequestException("the control plane's move-target answer has no targetGroupId");
    }

    /// <summary>A new backup key of the org: its id and the 256-bit key.</summary>
    public async Task<(string KeyId, byte[] Key)> CreateBackupKeyAsync(string orgId, CancellationToken ct)
    {
        using var response = await SendAsync(HttpMethod.Post, $"/internal/v1/orgs/{Uri.EscapeDataString(orgId)}/backup-keys", null, ct);
        await EnsureAsync(response, ct);
        var key = await response.Content.ReadFromJsonAsync<BackupKey>(Json, ct) ?? throw new HttpRequestException("empty backup key response");
        return (key.KeyId, Convert.FromBase64String(key.Key));
    }

    /// <summary>An org's backup key, or null when the org has no such key (another org's key is not found either).</summary>
    public async Task<byte[]?> BackupKeyAsync(string orgId, string keyId, CancellationToken ct)
    {
        using var response = await SendAsync(HttpMethod.Get, $"/internal/v1/orgs/{Uri.EscapeDataString(orgId)}/backup-keys/{Uri.EscapeDataString(keyId)}", null, ct);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
        await EnsureAsync(response, ct);
        var key = await response.Content.ReadFromJsonAsync<BackupKey>(Json, ct) ?? throw new HttpRequestException("empty backup key response");
        return Convert.FromBase64String(key.Key);
    }

    public async Task PostUsageAsync(IReadOnlyList<UsageRow> rows, CancellationToken ct)
    {
        using var response = await SendAsync(HttpMethod.Post, "/internal/v1/usage", JsonContent.Create(rows, options: Json), ct);
        await EnsureAsync(response, ct);
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, HttpContent? content, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(method, new Uri(options.ControlPlaneUrl, path)) { Content = content };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await TokenAsync(ct));
        return await http.SendAsync(request, ct);
    }

    private static async Task EnsureAsync(HttpResponseMessage response, CancellationToken ct)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }
        var text = await response.Content.ReadAsStringAsync(ct);
        var message = $"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri?.AbsolutePath} answered {(int)response.StatusCode}: {(text.Length > 300 ? text[..300] : text)}";
        // 401/403 can be a key rotation in progress; 5xx and 429 pass. Other refusals are final.
        if ((int)response.StatusCode >= 500 || response.StatusCode is HttpStatusCode.TooManyRequests or HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
        {
            throw new HttpRequestException(message, null, response.StatusCode);
        }
        throw new ControlPlaneRefusedException(message);
    }

    private static string? Text(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static ulong? ParseU64(JsonElement e, string name) => e.TryGetProperty(name, out var v)
        ? v.ValueKind switch
        {
            JsonValueKind.String when ulong.TryParse(v.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out var s) => s,
            JsonValueKind.Number when v.TryGetUInt64(out var n) => n,
            _ => null,
        }
        : null;

    private sealed record TokenResponse([property: JsonPropertyName("access_token")] string AccessToken, [property: JsonPropertyName("expires_in")] int ExpiresIn);

    private sealed record BackupKey(string KeyId, string Key);
}
