using System.Globalization;
using System.Security.Claims;
using Kdb.Portal.Api;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.Extensions.Options;

namespace Kdb.Portal.Session;

/// <summary>
/// Cookie-session hooks: refresh the access token before it expires (transparently, on any request), end the
/// session when the control plane refuses the refresh token, and answer 401 rather than a login redirect to
/// the portal's own JSON endpoints.
/// </summary>
internal sealed class SessionEvents(TokenRefresher refresher, TimeProvider time, IOptions<PortalSessionOptions> options, ILogger<SessionEvents> logger)
    : CookieAuthenticationEvents
{
    private static readonly object SessionExpiredItem = new();

    public override async Task ValidatePrincipal(CookieValidatePrincipalContext context)
    {
        var properties = context.Properties;
        var refresh = properties.GetTokenValue(SessionDefaults.RefreshToken);
        if (string.IsNullOrEmpty(refresh)
            || !DateTimeOffset.TryParse(properties.GetTokenValue(SessionDefaults.ExpiresAt), CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var expiresAt))
        {
            context.RejectPrincipal();
            return;
        }

        var now = time.GetUtcNow();
        // Only requests that call the API need a fresh token: not stylesheets, scripts or the login page.
        var needsApi = context.HttpContext.GetEndpoint()?.Metadata.GetMetadata<IAuthorizeData>() is not null;
        if (expiresAt - now > options.Value.RefreshBefore || (!needsApi && expiresAt > now))
        {
            return;
        }

        var result = await refresher.RefreshAsync(refresh);
        if (result.Tokens is { } tokens)
        {
            Store(properties, tokens);
            context.ShouldRenew = true;
            return;
        }

        if (result.Rejected || expiresAt <= now)
        {
            // Revoked (logout elsewhere, reuse detected) or expired with no way to renew: the session is over.
            logger.LogInformation("Session ended: the refresh token was refused or the access token expired");
            context.HttpContext.Items[SessionExpiredItem] = true;
            context.RejectPrincipal();
            await context.HttpContext.SignOutAsync(SessionDefaults.Scheme);
            return;
        }

        // The control plane is briefly unreachable but the access token still works: keep going, retry later.
        refresher.Forget(refresh);
    }

    public override Task RedirectToLogin(RedirectContext<CookieAuthenticationOptions> context)
    {
        if (context.Request.Path.StartsWithSegments(PortalEndpoints.JsonPrefix, StringComparison.Ordinal))
        {
            context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            return Task.CompletedTask;
        }

        if (context.HttpContext.Items.ContainsKey(SessionExpiredItem))
        {
            // The login page then says why the user is there, rather than looking like a fresh visit.
            context.RedirectUri += (context.RedirectUri.Contains('?', StringComparison.Ordinal) ? "&" : "?") + "sessionExpired=true";
        }

        return base.RedirectToLogin(context);
    }

    /// <summary>Puts fresh tokens into the session's properties.</summary>
    public static void Store(AuthenticationProperties properties, TokenSet tokens) =>
        properties.StoreTokens(
        [
            new AuthenticationToken { Name = SessionDefaults.AccessToken, Value = tokens.AccessToken },
            new AuthenticationToken { Name = SessionDefaults.RefreshToken, Value = tokens.RefreshToken },
            new AuthenticationToken { Name = SessionDefaults.ExpiresAt, Value = tokens.ExpiresAt.ToString("O", CultureInfo.InvariantCulture) },
        ]);

    /// <summary>Starts a session for the user <paramref name="me"/> holding <paramref name="tokens"/>.</summary>
    public static Task SignInAsync(HttpContext http, Me me, TokenSet tokens)
    {
        var identity = new ClaimsIdentity(
            [
                new Claim(ClaimTypes.NameIdentifier, me.Id),
                new Claim(ClaimTypes.Name, me.Name),
                new Claim(ClaimTypes.Email, me.Email ?? string.Empty),
            ],
            SessionDefaults.Scheme);
        var properties = new AuthenticationProperties { IsPersistent = false };
        Store(properties, tokens);
        return http.SignInAsync(SessionDefaults.Scheme, new ClaimsPrincipal(identity), properties);
    }
}
