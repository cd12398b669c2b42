using System.Security.Cryptography;
using System.Text;
using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Identity;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Api;

/// <summary>
/// <c>Idempotency-Key</c> on creating POSTs under <c>/v1</c>: the first request's response is kept (encrypted,
/// 24 h) and replayed for a retry with the same key and request; the same key with a different request is
/// 422, and a retry while the first is still running is 409.
/// </summary>
public static class Idempotency
{
    public const string Header = "Idempotency-Key";
    private const int MaxBodyBytes = 64 * 1024;
    private static readonly TimeSpan Retention = TimeSpan.FromHours(24);

    public static IApplicationBuilder UseIdempotencyKeys(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        var key = context.Request.Headers[Header].ToString();
        if (key.Length == 0 || !HttpMethods.IsPost(context.Request.Method) || !context.Request.Path.StartsWithSegments("/v1", StringComparison.Ordinal))
        {
            await next(context);
            return;
        }

        if (key.Length > 100)
        {
            await Results.Problem("Idempotency-Key is at most 100 characters.", statusCode: StatusCodes.Status400BadRequest, type: Problems.TypeBase + "validation").ExecuteAsync(context);
            return;
        }

        var services = context.RequestServices;
        var time = services.GetRequiredService<TimeProvider>();
        var protector = services.GetRequiredService<IDataProtectionProvider>().CreateProtector("Kdb.ControlPlane.Idempotency.v1");
        var caller = context.User.UserId() ?? "ip:" + context.Connection.RemoteIpAddress;
        context.Request.EnableBuffering(MaxBodyBytes);
        using var bodyCopy = new MemoryStream();
        await context.Request.Body.CopyToAsync(bodyCopy, context.RequestAborted);
        context.Request.Body.Position = 0;
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{context.Request.Method} {context.Request.Path}\n").Concat(bodyCopy.ToArray()).ToArray()));

        await using var scope = services.GetRequiredService<IServiceScopeFactory>().CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
        var now = time.GetUtcNow();
        await db.IdempotencyKeys.Where(i => i.CreatedAt < now - Retention).ExecuteDeleteAsync(context.RequestAborted);
        var existing = await db.IdempotencyKeys.AsNoTracking().FirstOrDefaultAsync(i => i.Caller == caller && i.Key == key, context.RequestAborted);
        if (existing is not null)
        {
            await ReplayAsync(context, existing, hash, protector);
            return;
        }

        var record = new IdempotencyRecord { Caller = caller, Key = key, RequestHash = hash, CreatedAt = now };
        db.IdempotencyKeys.Add(record);
        try
        {
            await db.SaveChangesAsync(context.RequestAborted);
        }
        catch (DbUpdateException)
        {
            // A concurrent request with the same key claimed it first.
            await Results.Problem("A request with this Idempotency-Key is still running.", statusCode: StatusCodes.Status409Conflict, type: Problems.TypeBase + "idempotency-in-flight").ExecuteAsync(context);
            return;
        }

        var original = context.Response.Body;
        using var buffer = new MemoryStream();
        context.Response.Body = buffer;
        try
        {
            await next(context);
        }
        finally
        {
            context.Response.Body = original;
        }

        if (context.Response.StatusCode < 500)
        {
            record.Status = context.Response.StatusCode;
            record.ContentType = context.Response.ContentType;
            record.ProtectedResponse = protector.Protect(Convert.ToBase64String(buffer.ToArray()));
            await db.SaveChangesAsync(CancellationToken.None);
        }
        else
        {
            // A server error is not an answer worth replaying: the client may retry for real.
            db.IdempotencyKeys.Remove(record);
            await db.SaveChangesAsync(CancellationToken.None);
        }

        buffer.Position = 0;
        await buffer.CopyToAsync(original, context.RequestAborted);
    });

    private static async Task ReplayAsync(HttpContext context, IdempotencyRecord existing, string hash, IDataProtector protector)
    {
        if (existing.RequestHash != hash)
        {
            await Results.Problem("This Idempotency-Key was used with a different request.", statusCode: StatusCodes.Status422UnprocessableEntity, type: Problems.TypeBase + "idempotency-key-reused").ExecuteAsync(context);
            return;
        }

        if (existing.Status == 0 || existing.ProtectedResponse is null)
        {
            await Results.Problem("A request with this Idempotency-Key is still running.", statusCode: StatusCodes.Status409Conflict, type: Problems.TypeBase + "idempotency-in-flight").ExecuteAsync(context);
            return;
        }

        context.Response.StatusCode = existing.Status;
        if (existing.ContentType is not null)
        {
            context.Response.ContentType = existing.ContentType;
        }

        context.Response.Headers["Idempotent-Replayed"] = "true";
        await context.Response.Body.WriteAsync(Convert.FromBase64String(protector.Unprotect(existing.ProtectedResponse)), context.RequestAborted);
    }
}
