using System.Threading.RateLimiting;

namespace Kdb.ControlPlane.Api;

/// <summary>
/// Bounds how many management-API and token requests run at once; the rest wait their turn, oldest first.
/// Without it a burst (a thousand database creations at once) made every request open its own PostgreSQL connection
/// at the same moment: on a busy machine the connection attempts timed out and nearly all of the burst failed with
/// 500s. Queued requests hold no connection and no thread. It runs before authentication because an API-key login
/// reads the database too. Internal endpoints (the proxy's long polls, the nodes' heartbeats, provisioning) are not
/// queued behind tenants' bursts. A full queue answers 503 with Retry-After.
/// </summary>
public static class ApiAdmission
{
    private static readonly string[] AdmittedPrefixes = ["/v1", "/connect"];

    public static IApplicationBuilder UseApiAdmission(this IApplicationBuilder app, IConfiguration configuration)
    {
        var limiter = new ConcurrencyLimiter(new ConcurrencyLimiterOptions
        {
            PermitLimit = Math.Max(1, configuration.GetValue("Api:ConcurrentRequests", 32)),
            QueueLimit = Math.Max(0, configuration.GetValue("Api:QueuedRequests", 10_000)),
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        });
        return app.Use(async (http, next) =>
        {
            if (!Admitted(http.Request.Path))
            {
                await next(http);
                return;
            }

            using var lease = await limiter.AcquireAsync(1, http.RequestAborted);
            if (!lease.IsAcquired)
            {
                http.Response.Headers.RetryAfter = "1";
                await Results.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Too many requests in flight",
                    detail: "The control plane is at its request limit and its queue is full; retry shortly.", type: Problems.TypeBase + "overloaded")
                    .ExecuteAsync(http);
                return;
            }

            await next(http);
        });
    }

    private static bool Admitted(PathString path)
    {
        foreach (var prefix in AdmittedPrefixes)
        {
            if (path.StartsWithSegments(prefix, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }
}
