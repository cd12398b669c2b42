using System.Security.Cryptography;
using System.Text;
using Kdb.ControlPlane.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Kdb.ControlPlane.Identity;

/// <summary>
/// OAuth2 token endpoint (<c>POST /connect/token</c>: password, refresh_token with rotation and reuse
/// detection, client_credentials) and revocation (<c>POST /connect/revoke</c>), plus OIDC discovery and JWKS.
/// </summary>
public static class TokenEndpoints
{
    private const string DefaultClientId = "kdb-cli";

    public static IEndpointRouteBuilder MapTokenEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/connect/token", TokenAsync).DisableAntiforgery().AllowAnonymous().RequireRateLimiting(Api.RateLimits.TokenPolicy);
        app.MapPost("/connect/revoke", RevokeAsync).DisableAntiforgery().AllowAnonymous().RequireRateLimiting(Api.RateLimits.TokenPolicy);
        app.MapGet("/.well-known/openid-configuration", (IOptions<TokenOptions> o) =>
        {
            var issuer = o.Value.Issuer.TrimEnd('/');
            return Results.Json(new
            {
                issuer = o.Value.Issuer,
                jwks_uri = issuer + "/.well-known/jwks.json",
                token_endpoint = issuer + "/connect/token",
                revocation_endpoint = issuer + "/connect/revoke",
                grant_types_supported = new[] { "password", "refresh_token", "client_credentials" },
                token_endpoint_auth_methods_supported = new[] { "client_secret_post", "client_secret_basic" },
                id_token_signing_alg_values_supported = new[] { "ES256" },
                scopes_supported = ServiceClientRegistry.Known.Select(k => k.Scope).ToArray(),
            });
        }).AllowAnonymous();
        app.MapGet("/.well-known/jwks.json", (SigningKeyService keys, HttpContext http) =>
        {
            http.Response.Headers.CacheControl = "public, max-age=300";
            return Results.Text(keys.JwksJson, "application/json");
        }).AllowAnonymous();
        return app;
    }

    private static async Task<IResult> TokenAsync(HttpContext http, TokenIssuer issuer, IOptions<TokenOptions> options, TimeProvider time)
    {
        if (!http.Request.HasFormContentType)
        {
            return OAuthError("invalid_request", "the token endpoint takes application/x-www-form-urlencoded");
        }

        // The DbContext and UserManager are resolved only by the grants that use them: building them for every
        // refresh and client_credentials request (UserManager creates its metrics each time) cost more than
        // those grants' own work.
        var services = http.RequestServices;
        var form = await http.Request.ReadFormAsync(http.RequestAborted);
        return form["grant_type"].ToString() switch
        {
            "password" => await PasswordGrantAsync(http, form, services.GetRequiredService<ControlPlaneDbContext>(), services.GetRequiredService<UserManager<User>>(), issuer, options.Value, time, http.RequestAborted),
            "refresh_token" => await RefreshGrantAsync(form, services, issuer, time, http.RequestAborted),
            "client_credentials" => await ClientCredentialsGrantAsync(http, form, services, issuer, time, http.RequestAborted),
            "" => OAuthError("invalid_request", "grant_type is required"),
            var other => OAuthError("unsupported_grant_type", $"grant_type '{other}' is not supported"),
        };
    }

    private static async Task<IResult> PasswordGrantAsync(HttpContext http, IFormCollection form, ControlPlaneDbContext db, UserManager<User> users, TokenIssuer issuer, TokenOptions options, TimeProvider time, CancellationToken ct)
    {
        var username = form["username"].ToString();
        var password = form["password"].ToString();
        var clientId = string.IsNullOrEmpty(form["client_id"]) ? DefaultClientId : form["client_id"].ToString();
        if (username.Length == 0 || password.Length == 0)
        {
            return OAuthError("invalid_request", "username and password are required");
        }

        var user = await users.FindByEmailAsync(username);
        if (user is null)
        {
            // Hash anyway, so an unknown email takes as long as a wrong password.
            users.PasswordHasher.HashPassword(new User(), password);
            return InvalidGrant();
        }

        if (await users.IsLockedOutAsync(user))
        {
            return InvalidGrant();
        }

        if (!await users.CheckPasswordAsync(user, password))
        {
            // Identity counts consecutive failures and locks the account for 15 minutes at the fifth. The
            // failure's audit entry (the user's own, at /v1/me/audit) is saved with the count.
            Api.AuditLog.Record(db, null, user.Id, "user.login_failed", user.Id, http.Connection.RemoteIpAddress?.ToString(), StatusCodes.Status400BadRequest, time.GetUtcNow());
            await users.AccessFailedAsync(user);
            if (await users.IsLockedOutAsync(user))
            {
                Api.AuditLog.Record(db, null, user.Id, "user.locked_out", user.Id, http.Connection.RemoteIpAddress?.ToString(), StatusCodes.Status400BadRequest, time.GetUtcNow());
                await db.SaveChangesAsync(ct);
            }

            return InvalidGrant();
        }

        await users.ResetAccessFailedCountAsync(user);
        var refresh = await IssueRefreshTokenAsync(db, user.Id, clientId, Guid.NewGuid().ToString("N"), options, time, ct);
        var (access, lifetime) = issuer.ForUser(user.Id, user.Email!, clientId);
        return TokenResponse(access, lifetime, refresh);
    }

    private static async Task<IResult> RefreshGrantAsync(IFormCollection form, IServiceProvider services, TokenIssuer issuer, TimeProvider time, CancellationToken ct)
    {
        var presented = form["refresh_token"].ToString();
        if (presented.Length == 0)
        {
            return OAuthError("invalid_request", "refresh_token is required");
        }

        var hash = HashToken(presented);
        var next = Base64Url(RandomNumberGenerator.GetBytes(32));

        // One statement consumes the presented token (if current and its user not locked out) and issues its
        // successor in the same family; concurrent refreshes share it (RefreshTokenRotator). Nothing runs
        // SERIALIZABLE: the token's row lock orders concurrent uses of it (the control-plane benchmark once saw
        // 500s from 40001).
        var rotation = await services.GetRequiredService<RefreshTokenRotator>().RotateAsync(hash, HashToken(next));
        if (rotation is not null)
        {
            var (access, lifetime) = issuer.ForUser(rotation.UserId, rotation.Email ?? string.Empty, rotation.ClientId);
            return TokenResponse(access, lifetime, next);
        }

        var now = time.GetUtcNow();
        var db = services.GetRequiredService<ControlPlaneDbContext>();
        var record = await db.RefreshTokens.AsNoTracking().FirstOrDefaultAsync(t => t.TokenHash == hash, ct);
        if (record is { ConsumedAt: not null, RevokedAt: null } && record.ExpiresAt > now)
        {
            // A rotated token came back: it was stolen or replayed. End the whole login.
            await db.RefreshTokens.Where(t => t.FamilyId == record.FamilyId && t.RevokedAt == null)
                .ExecuteUpdateAsync(s => s.SetProperty(t => t.RevokedAt, now), ct);
        }

        return InvalidGrant();
    }

    private static async Task<IResult> ApiKeyGrantAsync(string keyId, string secret, ControlPlaneDbContext db, TokenIssuer issuer, TimeProvider time, CancellationToken ct)
    {
        var key = await db.ApiKeys.AsNoTracking().FirstOrDefaultAsync(k => k.Id == keyId, ct);
        if (key is null || !ServiceClientRegistry.Matches(secret, key.SecretHash) || (key.ExpiresAt is { } expires && expires <= time.GetUtcNow()))
        {
            return OAuthError("invalid_client", "client authentication failed", StatusCodes.Status401Unauthorized);
        }

        var (token, lifetime) = issuer.ForApiKey(key.Id, key.OrgId, key.Role);
        return TokenResponse(token, lifetime, null);
    }

    private static async Task<IResult> ClientCredentialsGrantAsync(HttpContext http, IFormCollection form, IServiceProvider services, TokenIssuer issuer, TimeProvider time, CancellationToken ct)
    {
        var (clientId, secret) = ClientCredentials(http, form);
        if (clientId is null || secret is null)
        {
            return OAuthError("invalid_client", "client authentication failed", StatusCodes.Status401Unauthorized);
        }

        if (clientId.StartsWith("key_", StringComparison.Ordinal))
        {
            return await ApiKeyGrantAsync(clientId, secret, services.GetRequiredService<ControlPlaneDbContext>(), issuer, time, ct);
        }

        var client = await services.GetRequiredService<ServiceClientRegistry>().FindAsync(services, clientId, ct);
        if (client is null || !ServiceClientRegistry.Matches(secret, client.SecretHash))
        {
            return OAuthError("invalid_client", "client authentication failed", StatusCodes.Status401Unauthorized);
        }

        var requested = form["scope"].ToString().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var granted = client.Scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (requested.Any(s => !granted.Contains(s, StringComparer.Ordinal)))
        {
            return OAuthError("invalid_scope", "a requested scope is not granted to this client");
        }

        var (token, lifetime) = issuer.ForService(client.ClientId, string.Join(' ', requested.Length > 0 ? requested : granted));
        return TokenResponse(token, lifetime, null);
    }

    private static async Task<IResult> RevokeAsync(HttpContext http, ControlPlaneDbContext db, TimeProvider time)
    {
        if (!http.Request.HasFormContentType)
        {
            return OAuthError("invalid_request", "the revocation endpoint takes application/x-www-form-urlencoded");
        }

        var form = await http.Request.ReadFormAsync(http.RequestAborted);
        var token = form["token"].ToString();
        if (token.Length > 0)
        {
            var hash = HashToken(token);
            var record = await db.RefreshTokens.AsNoTracking().FirstOrDefaultAsync(t => t.TokenHash == hash, http.RequestAborted);
            if (record is not null)
            {
                var now = time.GetUtcNow();
                await db.RefreshTokens.Where(t => t.FamilyId == record.FamilyId && t.RevokedAt == null)
                    .ExecuteUpdateAsync(s => s.SetProperty(t => t.RevokedAt, now), http.RequestAborted);
            }
        }

        // RFC 7009: an unknown token is not an error, so revocation reveals nothing.
        return Results.Ok();
    }

    private static async Task<string> IssueRefreshTokenAsync(ControlPlaneDbContext db, string userId, string clientId, string familyId, TokenOptions options, TimeProvider time, CancellationToken ct)
    {
        var value = Base64Url(RandomNumberGenerator.GetBytes(32));
        var now = time.GetUtcNow();
        db.RefreshTokens.Add(new RefreshTokenRecord
        {
            TokenHash = HashToken(value),
            FamilyId = familyId,
            UserId = userId,
            ClientId = clientId,
            CreatedAt = now,
            ExpiresAt = now + options.RefreshTokenLifetime,
        });
        await db.SaveChangesAsync(ct);
        return value;
    }

    private static (string? ClientId, string? Secret) ClientCredentials(HttpContext http, IFormCollection form)
    {
        var header = http.Request.Headers.Authorization.ToString();
        if (header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(header[6..].Trim()));
                var colon = decoded.IndexOf(':', StringComparison.Ordinal);
                return colon <= 0 ? (null, null) : (Uri.UnescapeDataString(decoded[..colon]), Uri.UnescapeDataString(decoded[(colon + 1)..]));
            }
            catch (FormatException)
            {
                return (null, null);
            }
        }

        var id = form["client_id"].ToString();
        var secret = form["client_secret"].ToString();
        return id.Length > 0 && secret.Length > 0 ? (id, secret) : (null, null);
    }

    private static string HashToken(string value) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(value)));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static IResult TokenResponse(string accessToken, TimeSpan lifetime, string? refreshToken) =>
        Results.Json(new TokenResponseBody(accessToken, refreshToken, (int)lifetime.TotalSeconds, "Bearer"), statusCode: StatusCodes.Status200OK);

    private static IResult InvalidGrant() => OAuthError("invalid_grant", "the credentials are invalid or expired, or the account is locked after repeated failures (for 15 minutes, or until a password reset)");

    private static IResult OAuthError(string error, string description, int status = StatusCodes.Status400BadRequest) =>
        Results.Json(new { error, error_description = description }, statusCode: status);

    private sealed record TokenResponseBody(
        [property: System.Text.Json.Serialization.JsonPropertyName("access_token")] string AccessToken,
        [property: System.Text.Json.Serialization.JsonPropertyName("refresh_token"), System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] string? RefreshToken,
        [property: System.Text.Json.Serialization.JsonPropertyName("expires_in")] int ExpiresIn,
        [property: System.Text.Json.Serialization.JsonPropertyName("token_type")] string TokenType);
}
