using System.Net;
using System.Threading.RateLimiting;
using Kdb.Node.Auth;
using Kdb.Proxy.Routing;
using Microsoft.IdentityModel.JsonWebTokens;
using Yarp.ReverseProxy.Forwarder;

namespace Kdb.Proxy.Http;

/// <summary>
/// The HTTP data API at the proxy: DESIGN's paths (<c>/v1/databases/{id}/sql</c>, <c>/v1/databases/{id}/kv/…</c>) and the
/// host form (<c>Host: db-&lt;id&gt;.&lt;domain&gt;</c> with <c>/v1/sql</c>, <c>/v1/kv/…</c>) mapped onto them, forwarded with YARP to
/// the group's leader. The proxy checks the data token offline first; an unknown database and a token that does not
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
        IHttpForwarder forwarder = app.Services.GetRequiredService<IHttpForwarder>();
        IRouteCache routes = app.Services.GetRequiredService<IRouteCache>();
        var invoker = new HttpMessageInvoker(new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            ConnectTimeout = TimeSpan.FromSeconds(3),
        });
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

        RequestDelegate handle = async context =>
        {
            (string? databaseId, string? path) = Target(context.Request);
            if (context.Connection.LocalPort != httpPort || databaseId is null)
            {
                await Results.Problem(statusCode: 404, title: "Not found").ExecuteAsync(context).ConfigureAwait(false);
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

            RouteReplica? replica = First(routes.ReplicasInOrder(database.Entry));
            if (replica?.HttpEndpoint is not { Length: > 0 } destination)
            {
                await Results.Problem(statusCode: 503, title: "Unavailable").ExecuteAsync(context).ConfigureAwait(false);
                return;
            }

            context.Request.Path = path;
            ForwarderError error = await forwarder.SendAsync(context, destination, invoker, ForwarderRequestConfig.Empty, HttpTransformer.Default).ConfigureAwait(false);
            if (error != ForwarderError.None && !context.Response.HasStarted)
            {
                if (IsTooLarge(context.Features.Get<IForwarderErrorFeature>()?.Exception))
                {
                    await TooLargeAsync(context).ConfigureAwait(false);
                    return;
                }

                await Results.Problem(statusCode: 502, title: "Bad gateway", detail: error.ToString()).ExecuteAsync(context).ConfigureAwait(false);
            }
        };

        // Any Host header (the host form names the database in it); the handler answers only on the tenant port.
        app.Map("/v1/{**rest}", handle);
    }

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

    /// <summary>The database and the node path of a request, from the path form or the host form; nulls when neither.</summary>
    internal static (string? DatabaseId, string? Path) Target(HttpRequest request)
    {
        string path = request.Path.Value ?? string.Empty;
        const string Prefix = "/v1/databases/";
        if (path.StartsWith(Prefix, StringComparison.Ordinal))
        {
            int slash = path.IndexOf('/', Prefix.Length);
            return slash > Prefix.Length ? (path[Prefix.Length..slash], path) : (null, null);
        }

        string? id = Pg.StartupRequest.FromSni(request.Host.Host);
        return id is not null && (path == "/v1/sql" || path.StartsWith("/v1/kv/", StringComparison.Ordinal))
            ? (id, Prefix + id + path[3..])
            : (null, null);
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

    private static RouteReplica? First(IReadOnlyList<RouteReplica> replicas) => replicas.Count > 0 ? replicas[0] : null;
}
