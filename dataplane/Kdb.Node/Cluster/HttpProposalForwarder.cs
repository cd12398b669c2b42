using System.Net;
using System.Net.Http.Headers;
using Google.Protobuf;
using Kdb.Cluster;
using Kdb.Node.Admin.Wire;

namespace Kdb.Node.Cluster;

/// <summary>Forwards a follower's proposal to the group's leader over the internal HTTP/2 API.</summary>
internal sealed class HttpProposalForwarder(HttpClient http, PeerTokens tokens) : IProposalForwarder
{
    public async Task<ApplyResult?> ForwardAsync(GroupMember leader, ulong groupId, byte[] command, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(new Uri(leader.InternalUrl), $"/internal/v1/groups/{groupId}/propose"))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(new ProposeRequest { Command = ByteString.CopyFrom(command) }.ToByteArray()),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue(AdminContent.Protobuf);
        if (await tokens.GetAsync(cancellationToken) is { } token)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, cancellationToken);
        }
        catch (HttpRequestException e) when (e.HttpRequestError == HttpRequestError.ConnectionError && !cancellationToken.IsCancellationRequested)
        {
            // Nothing was sent: the leader is unreachable (perhaps dead). Ask again once a new one is known.
            return null;
        }
        catch (HttpRequestException) when (!cancellationToken.IsCancellationRequested)
        {
            // Nothing reached the leader, or the answer was lost: the outcome is unknown.
            throw new ClusterException("08007", $"lost contact with the leader ({leader.NodeId}) while committing; the transaction's outcome is unknown");
        }
        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                if (response.StatusCode is HttpStatusCode.Conflict or HttpStatusCode.NotFound or HttpStatusCode.ServiceUnavailable)
                {
                    return null; // Not the leader (any more), or it does not host the group: ask again.
                }
                throw new ClusterException("XX000", $"the leader refused the forwarded commit: HTTP {(int)response.StatusCode}");
            }
            var body = ProposeResponse.Parser.ParseFrom(await response.Content.ReadAsByteArrayAsync(cancellationToken));
            return body.Result.IsEmpty ? null : ApplyResult.Decode(body.Result.Span);
        }
    }
}

internal static class AdminContent
{
    public const string Protobuf = "application/x-protobuf";
}
