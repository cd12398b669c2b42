using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Google.Protobuf;
using Kdb.Node.Admin.Wire;

namespace Kdb.Node.Admin;

/// <summary>A node admin API call failed: <see cref="Status"/> and the problem details' title and detail.</summary>
public sealed class NodeAdminException(HttpStatusCode status, string title, string? detail, string? leaderNodeId)
    : Exception($"{(int)status} {title}: {detail}")
{
    public HttpStatusCode Status { get; } = status;
    public string Title { get; } = title;
    public string? Detail { get; } = detail;
    /// <summary>Set on 409 "Not the leader" when the node knows the leader.</summary>
    public string? LeaderNodeId { get; } = leaderNodeId;
}

/// <summary>
/// Client of one node's admin API (internal port, HTTP/2 cleartext or TLS, protobuf bodies). The token callback
/// returns a kdb-internal token (provisioning or operator scope).
/// </summary>
public sealed class NodeAdminClient(HttpClient http, Uri internalUrl, Func<CancellationToken, ValueTask<string>> token)
{
    /// <summary>An HttpClient suited to the admin API (HTTP/2 with prior knowledge over cleartext).</summary>
    public static HttpClient CreateHttpClient() => new(new SocketsHttpHandler { EnableMultipleHttp2Connections = true, PooledConnectionIdleTimeout = TimeSpan.FromMinutes(2) })
    {
        Timeout = TimeSpan.FromMinutes(5),
    };

    public Uri InternalUrl => internalUrl;

    public Task<GroupInfo> CreateGroupAsync(CreateGroupRequest request, CancellationToken ct = default) =>
        CallAsync(HttpMethod.Post, "/internal/v1/groups", request, GroupInfo.Parser, ct);

    public Task<StatusResponse> StatusAsync(CancellationToken ct = default) =>
        CallAsync(HttpMethod.Get, "/internal/v1/status", null, StatusResponse.Parser, ct);

    public Task<DatabaseList> DatabasesAsync(ulong groupId, CancellationToken ct = default) =>
        CallAsync(HttpMethod.Get, $"/internal/v1/groups/{groupId}/databases", null, DatabaseList.Parser, ct);

    /// <summary>Proposes a raw shard command on the group (node scope; the node must lead the group, else 409).</summary>
    public Task<ProposeResponse> ProposeAsync(ulong groupId, ProposeRequest request, CancellationToken ct = default) =>
        CallAsync(HttpMethod.Post, $"/internal/v1/groups/{groupId}/propose", request, ProposeResponse.Parser, ct);

    /// <summary>Deletes this node's replica of a group it has left (409 while it is still a member, 404 when it has none).</summary>
    public Task RemoveGroupAsync(ulong groupId, CancellationToken ct = default) =>
        SendOnlyAsync(HttpMethod.Delete, $"/internal/v1/groups/{groupId}", null, ct);

    public Task<StateHashResponse> StateHashAsync(ulong groupId, CancellationToken ct = default) =>
        CallAsync(HttpMethod.Get, $"/internal/v1/groups/{groupId}/hash", null, StateHashResponse.Parser, ct);

    public Task<ChangeReplicaResponse> ChangeReplicaAsync(ulong groupId, ChangeReplicaRequest request, CancellationToken ct = default) =>
        CallAsync(HttpMethod.Post, $"/internal/v1/groups/{groupId}/replicas", request, ChangeReplicaResponse.Parser, ct);

    public Task TransferLeaderAsync(ulong groupId, string targetNodeId, CancellationToken ct = default) =>
        SendOnlyAsync(HttpMethod.Post, $"/internal/v1/groups/{groupId}/leader", new TransferLeaderRequest { TargetNodeId = targetNodeId }, ct);

    public Task<ApplyResponse> CreateDatabaseAsync(CreateDatabaseRequest request, CancellationToken ct = default) =>
        CallAsync(HttpMethod.Post, "/internal/v1/databases", request, ApplyResponse.Parser, ct);

    public Task<ApplyResponse> DropDatabaseAsync(string databaseId, CancellationToken ct = default) =>
        CallAsync(HttpMethod.Delete, $"/internal/v1/databases/{Uri.EscapeDataString(databaseId)}", null, ApplyResponse.Parser, ct);

    public Task<ApplyResponse> SetRoleAsync(string databaseId, Role role, CancellationToken ct = default) =>
        CallAsync(HttpMethod.Put, $"/internal/v1/databases/{Uri.EscapeDataString(databaseId)}/roles/{Uri.EscapeDataString(role.Name)}", new SetRoleRequest { Role = role }, ApplyResponse.Parser, ct);

    public Task<ApplyResponse> DeleteRoleAsync(string databaseId, string name, CancellationToken ct = default) =>
        CallAsync(HttpMethod.Delete, $"/internal/v1/databases/{Uri.EscapeDataString(databaseId)}/roles/{Uri.EscapeDataString(name)}", null, ApplyResponse.Parser, ct);

    public Task<ApplyResponse> SetStateAsync(string databaseId, DatabaseState state, CancellationToken ct = default) =>
        CallAsync(HttpMethod.Put, $"/internal/v1/databases/{Uri.EscapeDataString(databaseId)}/state", new SetStateRequest { State = state }, ApplyResponse.Parser, ct);

    /// <summary>Switches <paramref name="databaseId"/> onto the staged database's tenant and roles (in-place restore).</summary>
    public Task<ApplyResponse> SwapDatabaseAsync(string databaseId, string stagedDatabaseId, CancellationToken ct = default) =>
        CallAsync(HttpMethod.Post, $"/internal/v1/databases/{Uri.EscapeDataString(databaseId)}/swap", new SwapDatabaseRequest { StagedDatabaseId = stagedDatabaseId }, ApplyResponse.Parser, ct);

    /// <summary>A move's flip: the staged copy becomes <paramref name="databaseId"/> on the staged copy's group, with <paramref name="state"/>.</summary>
    public Task<ApplyResponse> AdoptDatabaseAsync(string databaseId, string stagedDatabaseId, DatabaseState state, CancellationToken ct = default) =>
        CallAsync(HttpMethod.Post, $"/internal/v1/databases/{Uri.EscapeDataString(databaseId)}/adopt", new AdoptDatabaseRequest { StagedDatabaseId = stagedDatabaseId, State = state }, ApplyResponse.Parser, ct);

    /// <summary>Drops the database's copy on one group (during a move the id names a copy on two groups).</summary>
    public Task<ApplyResponse> DropDatabaseOnGroupAsync(string databaseId, ulong groupId, CancellationToken ct = default) =>
        CallAsync(HttpMethod.Delete, $"/internal/v1/databases/{Uri.EscapeDataString(databaseId)}?group={groupId}", null, ApplyResponse.Parser, ct);

    /// <summary>Sets the state of the database's copy on one group.</summary>
    public Task<ApplyResponse> SetStateOnGroupAsync(string databaseId, ulong groupId, DatabaseState state, CancellationToken ct = default) =>
        CallAsync(HttpMethod.Put, $"/internal/v1/databases/{Uri.EscapeDataString(databaseId)}/state?group={groupId}", new SetStateRequest { State = state }, ApplyResponse.Parser, ct);

    /// <summary>Pauses or resumes the writes of the copy of <paramref name="databaseId"/> on <paramref name="groupId"/> (a move).</summary>
    public Task<ApplyResponse> SetWritesPausedOnGroupAsync(string databaseId, ulong groupId, bool paused, CancellationToken ct = default) =>
        CallAsync(HttpMethod.Put, $"/internal/v1/databases/{Uri.EscapeDataString(databaseId)}/writes-paused?group={groupId}", new SetWritesPausedRequest { Paused = paused }, ApplyResponse.Parser, ct);

    public Task<UsageResponse> UsageAsync(ulong since, CancellationToken ct = default) =>
        CallAsync(HttpMethod.Get, $"/internal/v1/usage?since={since}", null, UsageResponse.Parser, ct);

    /// <summary>Streams a backup of the database into <paramref name="destination"/> (length-prefixed BackupChunk messages).</summary>
    public Task ExportAsync(string databaseId, Stream destination, CancellationToken ct = default) =>
        StreamExportAsync($"/internal/v1/databases/{Uri.EscapeDataString(databaseId)}/export", destination, ct);

    /// <summary>The export's closing chunk alone (totals of the same scan, no pairs): to compare a copy with its source.</summary>
    public Task ExportTotalsAsync(string databaseId, Stream destination, CancellationToken ct = default) =>
        StreamExportAsync($"/internal/v1/databases/{Uri.EscapeDataString(databaseId)}/export?totals=true", destination, ct);

    /// <summary>Streams the database's changes since <paramref name="since"/> into <paramref name="destination"/> (a change
    /// stream: the range deletes, then the point changes; since 0: a range delete of the whole database, then every pair). Its
    /// closing chunk's raft_index is the version to ask the next round's changes since. A <see cref="NodeAdminException"/>
    /// with status 409 and title "Changes no longer kept" when the group's GC threshold passed <paramref name="since"/>.</summary>
    public Task ExportChangesAsync(string databaseId, ulong since, Stream destination, CancellationToken ct = default) =>
        StreamExportAsync($"/internal/v1/databases/{Uri.EscapeDataString(databaseId)}/export?since={since.ToString(System.Globalization.CultureInfo.InvariantCulture)}", destination, ct);

    private async Task StreamExportAsync(string path, Stream destination, CancellationToken ct)
    {
        using var request = await RequestAsync(HttpMethod.Get, path, null, ct);
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        await ThrowIfFailedAsync(response, ct);
        await using var body = await response.Content.ReadAsStreamAsync(ct);
        await body.CopyToAsync(destination, ct);
    }

    /// <summary>Imports a backup stream (as produced by <see cref="ExportAsync"/>) into a new or emptied database.</summary>
    public Task<ApplyResponse> ImportAsync(string databaseId, Stream source, CancellationToken ct = default) =>
        PostStreamAsync($"/internal/v1/databases/{Uri.EscapeDataString(databaseId)}/import", source, ct);

    /// <summary>Applies a change stream (as produced by <see cref="ExportChangesAsync"/>) to the database, whatever it holds;
    /// applying the same stream again leaves the same state.</summary>
    public Task<ApplyResponse> ImportChangesAsync(string databaseId, Stream source, CancellationToken ct = default) =>
        PostStreamAsync($"/internal/v1/databases/{Uri.EscapeDataString(databaseId)}/import?changes=true", source, ct);

    private async Task<ApplyResponse> PostStreamAsync(string path, Stream source, CancellationToken ct)
    {
        using var request = await RequestAsync(HttpMethod.Post, path, null, ct);
        request.Content = new StreamContent(source);
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-kdb-backup");
        using var response = await http.SendAsync(request, ct);
        await ThrowIfFailedAsync(response, ct);
        return ApplyResponse.Parser.ParseFrom(await response.Content.ReadAsByteArrayAsync(ct));
    }

    private async Task<T> CallAsync<T>(HttpMethod method, string path, IMessage? body, MessageParser<T> parser, CancellationToken ct) where T : IMessage<T>
    {
        using var request = await RequestAsync(method, path, body, ct);
        using var response = await http.SendAsync(request, ct);
        await ThrowIfFailedAsync(response, ct);
        return parser.ParseFrom(await response.Content.ReadAsByteArrayAsync(ct));
    }

    private async Task SendOnlyAsync(HttpMethod method, string path, IMessage? body, CancellationToken ct)
    {
        using var request = await RequestAsync(method, path, body, ct);
        using var response = await http.SendAsync(request, ct);
        await ThrowIfFailedAsync(response, ct);
    }

    private async Task<HttpRequestMessage> RequestAsync(HttpMethod method, string path, IMessage? body, CancellationToken ct)
    {
        var request = new HttpRequestMessage(method, new Uri(internalUrl, path))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = internalUrl.Scheme == Uri.UriSchemeHttps ? HttpVersionPolicy.RequestVersionOrHigher : HttpVersionPolicy.RequestVersionExact,
        };
        if (body is not null)
        {
            request.Content = new ByteArrayContent(body.ToByteArray());
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-protobuf");
        }
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await token(ct));
        return request;
    }

    private static async Task ThrowIfFailedAsync(HttpResponseMessage response, CancellationToken ct)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }
        var text = await response.Content.ReadAsStringAsync(ct);
        string title = response.ReasonPhrase ?? "error";
        string? detail = null;
        string? leader = null;
        try
        {
            using var doc = JsonDocument.Parse(text);
            var root = doc.RootElement;
            title = root.TryGetProperty("title", out var t) ? t.GetString() ?? title : title;
            detail = root.TryGetProperty("detail", out var d) ? d.GetString() : null;
            leader = root.TryGetProperty("leaderNodeId", out var l) && l.ValueKind == JsonValueKind.String ? l.GetString() : null;
        }
        catch (JsonException)
        {
            detail = text.Length > 500 ? text[..500] : text;
        }
        throw new NodeAdminException(response.StatusCode, title, detail, leader);
    }
}
