using System.Security.Claims;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Kdb.ControlPlane.Identity;

/// <summary>Mints the JWTs of DESIGN.md (ES256, kid, iss, aud, sub, exp, iat, jti, and scopes or claims).</summary>
public sealed class TokenIssuer(SigningKeyService keys, IOptions<TokenOptions> options, TimeProvider time)
{
    private readonly JsonWebTokenHandler _handler = new() { SetDefaultTimesOnTokenCreation = false };

    /// <summary>A management-API access token for a user.</summary>
    public (string Token, TimeSpan Lifetime) ForUser(string userId, string email, string clientId)
    {
        var lifetime = options.Value.AccessTokenLifetime;
        return (Mint(KdbAudiences.Api, userId, lifetime, new Dictionary<string, object>
        {
            ["email"] = email,
            ["client_id"] = clientId,
        }), lifetime);
    }

    /// <summary>A management-API access token for an org API key (its org and role travel as claims).</summary>
    public (string Token, TimeSpan Lifetime) ForApiKey(string keyId, string orgId, string role)
    {
        var lifetime = options.Value.AccessTokenLifetime;
        return (Mint(KdbAudiences.Api, keyId, lifetime, new Dictionary<string, object>
        {
            ["org"] = orgId,
            ["role"] = role,
            ["client_id"] = keyId,
        }), lifetime);
    }

    /// <summary>A service token (<c>aud kdb-internal</c>) with space-separated scopes.</summary>
    public (string Token, TimeSpan Lifetime) ForService(string clientId, string scopes)
    {
        var lifetime = options.Value.ServiceTokenLifetime;
        return (Mint(KdbAudiences.Internal, clientId, lifetime, new Dictionary<string, object>
        {
            ["scope"] = scopes,
            ["client_id"] = clientId,
        }), lifetime);
    }

    /// <summary>Signs a token with the current key.</summary>
    public string Mint(string audience, string subject, TimeSpan lifetime, IDictionary<string, object> claims) =>
        Mint(audience, subject, time.GetUtcNow().UtcDateTime, lifetime, claims);

    /// <summary>Signs a token issued at <paramref name="now"/> (tests mint tokens already expired).</summary>
    internal string Mint(string audience, string subject, DateTime now, TimeSpan lifetime, IDictionary<string, object> claims)
    {
        var all = new Dictionary<string, object>(claims, StringComparer.Ordinal)
        {
            [JwtRegisteredClaimNames.Sub] = subject,
            [JwtRegisteredClaimNames.Jti] = Guid.NewGuid().ToString("N"),
        };
        return _handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = options.Value.Issuer,
            Audience = audience,
            IssuedAt = now,
            NotBefore = now,
            Expires = now + lifetime,
            Claims = all,
            SigningCredentials = keys.Current,
        });
    }

    /// <summary>Validation rules every validator of these tokens uses: ES256 only, exact issuer and audience, required expiry.</summary>
    public static TokenValidationParameters ValidationParameters(TokenOptions o, SigningKeyService keys, string audience) => new()
    {
        ValidIssuer = o.Issuer,
        ValidAudience = audience,
        ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256],
        RequireExpirationTime = true,
        RequireSignedTokens = true,
        ValidateIssuerSigningKey = true,
        ClockSkew = o.ClockSkew,
        IssuerSigningKeyResolver = (_, _, kid, _) => keys.ResolveValidationKeys(kid),
        NameClaimType = JwtRegisteredClaimNames.Sub,
    };
}

/// <summary>Reads the caller from a validated management-API token.</summary>
public static class ClaimsPrincipalExtensions
{
    public static string? UserId(this ClaimsPrincipal principal) => principal.FindFirst(JwtRegisteredClaimNames.Sub)?.Value;
}
