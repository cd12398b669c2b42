using System.Globalization;
using System.Threading.RateLimiting;
using Kdb.ControlPlane.Identity;

namespace Kdb.ControlPlane.Api;

/// <summary>
/// Rate limits (ASP.NET Core rate limiter): the token endpoint per client IP, against brute force on top of
/// Identity's lockout; the management API per user or API key. Rejections are 429 problems with Retry-After.
/// </summary>
public static class RateLimits
{
    public const string TokenPolicy = "token-endpoint";
    public const string ApiPolicy = "management-api";
    public const string PasswordResetPolicy = "password-reset";

    public static IServiceCollection AddKdbRateLimits(this IServiceCollection services, IConfiguration configuration)
    {
        var tokenPerMinute = configuration.GetValue("RateLimits:TokenRequestsPerMinute", 60);
        var resetPerMinute = configuration.GetValue("RateLimits:PasswordResetRequestsPerMinute", 5);
        var apiPerMinute = configuration.GetValue("RateLimits:ApiRequestsPerMinute", 1200);
        services.AddRateLimiter(o =>
        {
            o.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            o.AddPolicy(TokenPolicy, http => RateLimitPartition.GetFixedWindowLimiter(
                "ip:" + (http.Connection.RemoteIpAddress?.ToString() ?? "unknown"),
                _ => new FixedWindowRateLimiterOptions { PermitLimit = tokenPerMinute, Window = TimeSpan.FromMinutes(1), QueueLimit = 0 }));
            o.AddPolicy(PasswordResetPolicy, http => RateLimitPartition.GetFixedWindowLimiter(
                "ip:" + (http.Connection.RemoteIpAddress?.ToString() ?? "unknown"),
                _ => new FixedWindowRateLimiterOptions { PermitLimit = resetPerMinute, Window = TimeSpan.FromMinutes(1), QueueLimit = 0 }));
            o.AddPolicy(ApiPolicy, http => RateLimitPartition.GetFixedWindowLimiter(
                http.User.UserId() is { } subject ? "sub:" + subject : "ip:" + (http.Connection.RemoteIpAddress?.ToString() ?? "unknown"),
                _ => new FixedWindowRateLimiterOptions { PermitLimit = apiPerMinute, Window = TimeSpan.FromMinutes(1), QueueLimit = 0 }));
            o.OnRejected = async (context, ct) =>
            {
                var retryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromMinutes(1);
                context.HttpContext.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
                await Results.Problem("Too many requests; retry later.", statusCode: StatusCodes.Status429TooManyRequests, title: "Too many requests", type: Problems.TypeBase + "rate-limited")
                    .ExecuteAsync(context.HttpContext);
            };
        });
        return services;
    }
}
