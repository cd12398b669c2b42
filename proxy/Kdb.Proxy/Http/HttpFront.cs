using System.Threading.RateLimiting;
using Kdb.Node.Auth;
using Kdb.Proxy.Routing;
using Microsoft.IdentityModel.JsonWebTokens;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;

namespace Kdb.Proxy.Http;

/// <summary>
/// The HTTP data API at the proxy: DESIGN's paths (<c>/v1/databases/{id}/sql</c>, <c>/v1/databases/{id}/kv/…</c>) and the
/// host form (<c>Host: db-&lt;id&gt;.&lt;domain&gt;</c> with <c>/v1/sql</c>, <c>/v1/kv/…</c>) mapped onto them, forwarded with YARP to
/// the group's leader through YARP's pipeline, its clusters fed by <see cref="RouteTableProxyConfig"/>. The proxy checks the data token offline first; an unknown database and a token that does not
/// open it get the same 401. Statements per second of the route entry are enforced per database (429), and bodies
/// over 1 MiB are refused (413) by Kestrel's limit on this port.
/// </summary>
internal static class HttpFront
{
    /// <summary>DESIGN's request size limit of the data API, also Kestrel's limit on every port of the proxy.</summary>
    public const long MaxBodyBytes = 1024 * 1024;

    private static readonly JsonWebTokenHandler Reader = new() { MapInboundClaims = false };

    public static void MapHttpFront(this WebApplication app, int httpPort, ITokenValidator? tokens)
    {
        IRouteCache routes = app.Services.GetRequiredService<IRouteCache>();
        IProxyStateLookup proxyState = app.Services.GetRequiredService<IProxyStateLookup>();
        RouteTableProxyConfig config = app.Services.GetRequiredService<RouteTableProxyConfig>();
        var limiter = PartitionedRateLimiter.Create<string, string>(id => RateLimitPartition.GetTokenBucketLimiter(id, _ =>
        {
            int rate = Math.Max(1, Rate(routes, id));
            return new TokenBucketRateLimiterOptions
            {
                TokenLimit = rate,
                TokensPerPeriod = rate,
                ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                QueueLimit = 0,
                AutoReplenishment = true,
            };
        }));

        // The host form becomes the path form before routing, so YARP's one route serves both.
        app.Use((context, next) =>
        {
            if (context.Connection.LocalPort == httpPort && HostFormPath(context.Request) is { } path)
            {
                context.Request.Path = path;
            }

            return next(context);
        });
        app.UseRouting();

        // Checks before YARP forwards: the route's placeholder cluster is swapped for the database's group cluster.
        app.MapReverseProxy(proxy => proxy.Use(async (context, next) =>
        {
            string? databaseId = context.Request.RouteValues["databaseId"] as string;
            if (context.Connection.LocalPort != httpPort || databaseId is null)
            {
                await NotFoundAsync(context).ConfigureAwait(false);
                return;
            }

            DatabaseState? database = databaseId.Length <= 63 ? await routes.ResolveAsync(databaseId, context.RequestAborted).ConfigureAwait(false) : null;
            if (database is null || tokens is null || !await AuthorizedAsync(tokens, context, database).ConfigureAwait(false))
            {
                await Results.Problem(statusCode: 401, title: "Unauthorized", detail: "a valid data token for this database is required").ExecuteAsync(context).ConfigureAwait(false);
                return;
            }

            if (database.Suspended)
            {
                await Results.Problem(statusCode: 403, title: "Suspended", detail: "database suspended: quota exceeded",
                    extensions: new Dictionary<string, object?> { ["sqlstate"] = "53400" }).ExecuteAsync(context).ConfigureAwait(false);
                return;
            }

            if (context.Request.ContentLength > MaxBodyBytes)
            {
                await TooLargeAsync(context).ConfigureAwait(false);
                return;
            }

            using RateLimitLease lease = limiter.AttemptAcquire(databaseId);
            if (!lease.IsAcquired)
            {
                await Results.Problem(statusCode: 429, title: "Too many requests", detail: "the database's request rate is exceeded").ExecuteAsync(context).ConfigureAwait(false);
                return;
            }

            if (Destinations(proxyState, config, routes, database.Entry) is not { Count: > 0 } targets)
            {
                await Results.Problem(statusCode: 503, title: "Unavailable").ExecuteAsync(context).ConfigureAwait(false);
                return;
            }

            // Bytes both ways are metered like a PostgreSQL session's (egress reaches usage ingestion).
            var requestBody = new CountingStream(context.Request.Body);
            var responseBody = new CountingStream(context.Response.Body);
            context.Request.Body = requestBody;
            context.Response.Body = responseBody;
            if (targets.Count > 1)
            {
                // Bounded by the 1 MiB limit; lets the body be sent again to the next replica after a refused connection.
                context.Request.EnableBuffering();
            }

            try
            {
                await ForwardAsync(context, next, targets).ConfigureAwait(false);
            }
            finally
            {
                database.AddBytesIn(requestBody.Count);
                database.AddBytesOut(responseBody.Count);
            }
        }));

        // Any other path under /v1 of either form: a problem, not an empty 404.
        app.Map("/v1/{**rest}", NotFoundAsync);
    }

    /// <summary>
    /// Forwards to the replicas in order (the known leader first). Only a connection that could not be established
    /// moves on to the next replica: the request never reached that node, so sending it elsewhere cannot apply it
    /// twice; any other failure is answered as it is.
    /// </summary>
    private static async Task ForwardAsync(HttpContext context, Func<Task> next, List<(ClusterState Cluster, DestinationState Destination)> targets)
    {
        for (int i = 0; ; i++)
        {
            context.ReassignProxyRequest(targets[i].Cluster);
            context.GetReverseProxyFeature().AvailableDestinations = [targets[i].Destination];
            await next().ConfigureAwait(false);
            if (context.Features.Get<IForwarderErrorFeature>() is not { Error: not ForwarderError.None } failure || context.Response.HasStarted)
            {
                return;
            }

            if (i + 1 < targets.Count && NotConnected(failure.Exception) && context.Request.Body.CanSeek)
            {
                context.Features.Set<IForwarderErrorFeature>(null);
                context.Response.Clear();
                context.Request.Body.Position = 0;
                continue;
            }

            if (IsTooLarge(failure.Exception))
            {
                await TooLargeAsync(context).ConfigureAwait(false);
                return;
            }

            await Results.Problem(statusCode: 502, title: "Bad gateway", detail: failure.Error.ToString()).ExecuteAsync(context).ConfigureAwait(false);
            return;
        }
    }

    private static bool NotConnected(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError })
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The group cluster YARP holds for the entry and its replicas in order (the known leader first).</summary>
    private static List<(ClusterState Cluster, DestinationState Destination)>? Destinations(IProxyStateLookup state, RouteTableProxyConfig config, IRouteCache routes, RouteEntry entry)
    {
        if (entry.GroupId is not { } group)
        {
            return null;
        }

        string clusterId = RouteTableProxyConfig.ClusterId(group);
        if (!state.TryGetCluster(clusterId, out ClusterState? cluster))
        {
            // An entry fetched a moment ago may not have reached YARP yet: the update applies synchronously.
            config.Refresh();
            if (!state.TryGetCluster(clusterId, out cluster))
            {
                return null;
            }
        }

        var targets = new List<(ClusterState, DestinationState)>(3);
        foreach (RouteReplica replica in routes.ReplicasInOrder(entry))
        {
            if (cluster.Destinations.TryGetValue(replica.NodeId, out DestinationState? destination))
            {
                targets.Add((cluster, destination));
            }
        }

        return targets;
    }

    private static Task NotFoundAsync(HttpContext context) => Results.Problem(statusCode: 404, title: "Not found").ExecuteAsync(context);

    // A chunked body over the limit fails while YARP streams it; the 413 from Kestrel may sit below other exceptions.
    private static bool IsTooLarge(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is BadHttpRequestException { StatusCode: 413 })
            {
                return true;
            }
        }

        return false;
    }

    private static Task TooLargeAsync(HttpContext context) =>
        Results.Problem(statusCode: 413, title: "Payload too large", detail: "request bodies are limited to 1 MiB").ExecuteAsync(context);

    /// <summary>The path form of a host-form request (<c>Host: db-&lt;id&gt;.…</c> with <c>/v1/sql</c> or <c>/v1/kv/…</c>); null otherwise.</summary>
    internal static string? HostFormPath(HttpRequest request)
    {
        string path = request.Path.Value ?? string.Empty;
        string? id = Pg.StartupRequest.FromSni(request.Host.Host);
        return id is not null && (path == "/v1/sql" || path.StartsWith("/v1/kv/", StringComparison.Ordinal))
            ? "/v1/databases/" + id + path[3..]
            : null;
    }

    private static async Task<bool> AuthorizedAsync(ITokenValidator tokens, HttpContext context, DatabaseState database)
    {
        string? header = context.Request.Headers.Authorization;
        if (header is null || !header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        string token = header[7..].Trim();

        // The role is the token's own claim (there is no startup user over HTTP); the validator then checks it, the
        // signature and the database, and the role must exist in the route entry.
        string? role = null;
        if (Reader.CanReadToken(token))
        {
            try
            {
                Reader.ReadJsonWebToken(token).TryGetPayloadValue("role", out role);
            }
            catch (ArgumentException)
            {
                return false;
            }
        }

        return role is not null && database.Entry.FindRole(role) is not null
            && (await tokens.ValidateDataTokenAsync(token, database.Entry.DatabaseId, role, context.RequestAborted).ConfigureAwait(false)).IsValid;
    }

    private static int Rate(IRouteCache routes, string id) =>
        routes.ResolveAsync(id, CancellationToken.None) is { IsCompletedSuccessfully: true } r && r.Result?.Entry.Limits is { } l ? l.StatementsPerSecond : 1000;

}
