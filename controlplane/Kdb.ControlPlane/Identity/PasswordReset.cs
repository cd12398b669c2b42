using System.Text.Json.Serialization;
using System.Threading.Channels;
using Kdb.ControlPlane.Api;
using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Mail;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Kdb.ControlPlane.Identity;

/// <summary>
/// Password reset by an emailed one-time link: <c>POST /v1/password-reset</c> <c>{email}</c> always answers 202,
/// <c>POST /v1/password-reset/confirm</c> <c>{token, password}</c> sets the password, lifts a lockout and
/// ends every refresh token of the user.
/// </summary>
public static class PasswordResetEndpoints
{
    public static readonly TimeSpan TokenLifetime = TimeSpan.FromHours(1);

    [JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
    public sealed record ResetRequest(string? Email);

    [JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
    public sealed record ConfirmRequest(string? Token, string? Password);

    public static IEndpointRouteBuilder MapPasswordResetEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/password-reset", Request).AllowAnonymous().RequireRateLimiting(RateLimits.PasswordResetPolicy);
        app.MapPost("/v1/password-reset/confirm", ConfirmAsync).AllowAnonymous().RequireRateLimiting(RateLimits.PasswordResetPolicy);
        return app;
    }

    private static IResult Request(ResetRequest? request, PasswordResetQueue queue)
    {
        var email = request?.Email?.Trim() ?? string.Empty;
        if (email.Length is 0 or > 254)
        {
            return Problems.Validation(new Dictionary<string, string[]> { ["email"] = ["an email address is required"] });
        }

        // The lookup and the mail happen in the background, so an address with an account and one without
        // answer alike, in the same time.
        queue.Enqueue(email);
        return Results.Accepted();
    }

    private static async Task<IResult> ConfirmAsync(HttpContext http, ConfirmRequest? request, ControlPlaneDbContext db, UserManager<User> users, TimeProvider time, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(request?.Token) || string.IsNullOrEmpty(request.Password))
        {
            return Problems.Validation(new Dictionary<string, string[]> { ["body"] = ["token and password are required"] });
        }

        var now = time.GetUtcNow();
        var hash = OneTimeTokens.Hash(request.Token);
        var record = await db.PasswordResets.AsNoTracking().FirstOrDefaultAsync(r => r.TokenHash == hash && r.UsedAt == null && r.ExpiresAt > now, ct);
        var user = record is null ? null : await db.Users.FirstOrDefaultAsync(u => u.Id == record.UserId, ct);
        if (record is null || user is null)
        {
            return InvalidToken();
        }

        // A password the validators refuse leaves the token usable for a better one.
        var problems = new List<string>();
        foreach (var validator in users.PasswordValidators)
        {
            var result = await validator.ValidateAsync(users, user, request.Password);
            problems.AddRange(result.Errors.Select(e => e.Description));
        }

        if (problems.Count > 0)
        {
            return Problems.Validation(new Dictionary<string, string[]> { ["password"] = [.. problems] });
        }

        await using var tx = await db.Database.BeginTransactionAsync(ct);
        // Claiming the token is one conditional UPDATE: of two concurrent confirms, exactly one wins.
        var claimed = await db.PasswordResets.Where(r => r.TokenHash == hash && r.UsedAt == null && r.ExpiresAt > now)
            .ExecuteUpdateAsync(s => s.SetProperty(r => r.UsedAt, now), ct);
        if (claimed == 0)
        {
            return InvalidToken();
        }

        var wasLocked = user.LockoutEnd is { } end && end > now;
        user.PasswordHash = users.PasswordHasher.HashPassword(user, request.Password);
        user.SecurityStamp = Guid.NewGuid().ToString("N");
        user.LockoutEnd = null;
        user.AccessFailedCount = 0;
        await db.PasswordResets.Where(r => r.UserId == user.Id && r.UsedAt == null).ExecuteUpdateAsync(s => s.SetProperty(r => r.UsedAt, now), ct);
        await db.RefreshTokens.Where(t => t.UserId == user.Id && t.RevokedAt == null).ExecuteUpdateAsync(s => s.SetProperty(t => t.RevokedAt, now), ct);
        var ip = http.Connection.RemoteIpAddress?.ToString();
        AuditLog.Record(db, null, user.Id, "password.reset", user.Id, ip, StatusCodes.Status204NoContent, now);
        if (wasLocked)
        {
            AuditLog.Record(db, null, user.Id, "user.lockout_lifted", user.Id, ip, StatusCodes.Status204NoContent, now);
        }

        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        return Results.NoContent();
    }

    private static IResult InvalidToken() =>
        Results.Problem("The reset link is invalid, already used or expired; ask for a new one.", statusCode: StatusCodes.Status400BadRequest, title: "Invalid reset token", type: Problems.TypeBase + "invalid-reset-token");
}

/// <summary>Reset requests waiting for the background mailer; bounded, and the oldest give way when it is full.</summary>
public sealed class PasswordResetQueue
{
    private readonly Channel<string> _channel = Channel.CreateBounded<string>(new BoundedChannelOptions(1000) { FullMode = BoundedChannelFullMode.DropOldest });

    public void Enqueue(string email) => _channel.Writer.TryWrite(email);

    internal ChannelReader<string> Reader => _channel.Reader;
}

/// <summary>
/// Issues reset tokens and mails their links. At most one mail per account per <c>PasswordReset:MinInterval</c>
/// (default a minute), so the endpoint cannot be used to flood someone's inbox.
/// </summary>
internal sealed partial class PasswordResetMailer(
    PasswordResetQueue queue,
    IServiceScopeFactory scopes,
    IMailSender mail,
    IOptions<MailOptions> mailOptions,
    IConfiguration configuration,
    TimeProvider time,
    ILogger<PasswordResetMailer> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await foreach (var email in queue.Reader.ReadAllAsync(stoppingToken))
        {
            try
            {
                await HandleAsync(email, stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                LogFailed(logger, ex);
            }
        }
    }

    private async Task HandleAsync(string email, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
        var normalized = email.ToUpperInvariant();
        var user = await db.Users.AsNoTracking().FirstOrDefaultAsync(u => u.NormalizedEmail == normalized, ct);
        if (user is null)
        {
            return;
        }

        var now = time.GetUtcNow();
        var minInterval = configuration.GetValue("PasswordReset:MinInterval", TimeSpan.FromMinutes(1));
        if (await db.PasswordResets.AnyAsync(r => r.UserId == user.Id && r.CreatedAt > now - minInterval, ct))
        {
            return;
        }

        var (token, hash) = OneTimeTokens.New();
        db.PasswordResets.Add(new PasswordResetRecord { TokenHash = hash, UserId = user.Id, CreatedAt = now, ExpiresAt = now + PasswordResetEndpoints.TokenLifetime });
        await db.PasswordResets.Where(r => r.ExpiresAt < now - TimeSpan.FromDays(1)).ExecuteDeleteAsync(ct);
        await db.SaveChangesAsync(ct);
        var link = $"{mailOptions.Value.LinkBaseUrl.TrimEnd('/')}/reset-password?token={token}";
        await mail.SendAsync(new OutgoingMail(user.Email!, "Reset your Kdb.Cloud password", $"""
            Someone asked to reset the password of the Kdb.Cloud account {user.Email}.

            To choose a new password, open this link within an hour:

            {link}

            If it was not you, ignore this mail: the password stays as it is.
            """), ct);
    }

    [LoggerMessage(LogLevel.Warning, "A password-reset mail could not be sent")]
    private static partial void LogFailed(ILogger logger, Exception ex);
}
