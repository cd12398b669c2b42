using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Kdb.Node.Auth;

/// <summary>Creates token validators.</summary>
public static class TokenValidators
{
    /// <summary>
    /// A validator for <paramref name="options"/>. <paramref name="http"/> fetches the JWKS (a client without a proxy and
    /// with a 5 s timeout when null); <paramref name="time"/> is the clock for <c>exp</c> and the refetch interval.
    /// </summary>
    /// <exception cref="InvalidOperationException">The options are invalid (see <see cref="TokenValidatorOptions.Validate"/>).</exception>
    public static ITokenValidator Create(TokenValidatorOptions options, HttpClient? http = null, TimeProvider? time = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        http ??= new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(5) };
        return new JwtTokenValidator(options, http, time ?? TimeProvider.System, logger ?? NullLogger.Instance);
    }
}

/// <summary>Validates with IdentityModel's JsonWebTokenHandler against the one key the token's <c>kid</c> names.</summary>
internal sealed class JwtTokenValidator(TokenValidatorOptions options, HttpClient http, TimeProvider time, ILogger logger) : ITokenValidator
{
    // Real tokens are well under 2 KB; a bound keeps a hostile password from costing a large parse.
    private const int MaxTokenLength = 8 * 1024;
    private static readonly string[] Es256 = [SecurityAlgorithms.EcdsaSha256];

    // The proxy presents the same service token on every backend connection it opens, and each one was a full
    // signature check. A verified internal token is remembered by its exact text, for at most this long (so a key
    // withdrawn from the JWKS stops being honoured soon) and never past its own expiry.
    private static readonly TimeSpan VerifiedInternalLifetime = TimeSpan.FromSeconds(60);
    private const int MaxVerifiedInternal = 1024;

    private readonly ConcurrentDictionary<string, VerifiedInternal> _verifiedInternal = new(StringComparer.Ordinal);

    private readonly JsonWebTokenHandler _handler = new() { MapInboundClaims = false };
    private readonly JwksKeyCache _keys = new(options, http, time, logger);

    // IdentityModel's own lifetime check reads the system clock; this one reads the injected TimeProvider.
    private readonly LifetimeValidator _lifetime = (notBefore, expires, _, _) =>
    {
        var now = time.GetUtcNow().UtcDateTime;
        return expires is { } exp && now < exp + options.ClockSkew && (notBefore is not { } nbf || now >= nbf - options.ClockSkew);
    };

    public async ValueTask<TokenCheck> ValidateDataTokenAsync(string token, string database, string role, CancellationToken cancellationToken)
    {
        var (check, jwt) = await ValidateAsync(token, options.DataAudience, cancellationToken).ConfigureAwait(false);
        if (!check.IsValid)
        {
            return check;
        }

        if (!jwt!.TryGetPayloadValue<string>("db", out var db) || !string.Equals(db, database, StringComparison.Ordinal))
        {
            return new TokenCheck(TokenFailure.WrongDatabase);
        }

        return jwt.TryGetPayloadValue<string>("role", out var tokenRole) && string.Equals(tokenRole, role, StringComparison.Ordinal)
            ? check
            : new TokenCheck(TokenFailure.WrongRole);
    }

    public async ValueTask<TokenCheck> ValidateInternalTokenAsync(string token, string requiredScope, CancellationToken cancellationToken)
    {
        if (token is null)
        {
            return new TokenCheck(TokenFailure.Malformed);
        }

        var now = time.GetUtcNow().UtcDateTime;
        if (_verifiedInternal.TryGetValue(token, out var verified))
        {
            if (now < verified.ValidUntil)
            {
                return ScopeCheck(new TokenCheck(TokenFailure.None, verified.Subject), verified.Scopes, requiredScope);
            }

            _verifiedInternal.TryRemove(token, out _);
        }

        var (check, jwt) = await ValidateAsync(token, options.InternalAudience, cancellationToken).ConfigureAwait(false);
        if (!check.IsValid)
        {
            return check;
        }

        jwt!.TryGetPayloadValue<string>("scope", out var scopes);
        if (_verifiedInternal.Count >= MaxVerifiedInternal)
        {
            _verifiedInternal.Clear();
        }

        var until = jwt.ValidTo + options.ClockSkew;
        _verifiedInternal[token] = new VerifiedInternal(check.Subject, scopes, until < now + VerifiedInternalLifetime ? until : now + VerifiedInternalLifetime);
        return ScopeCheck(check, scopes, requiredScope);
    }

    private static TokenCheck ScopeCheck(TokenCheck check, string? scopes, string requiredScope)
    {
        if (scopes is not null)
        {
            foreach (var range in scopes.AsSpan().Split(' '))
            {
                if (scopes.AsSpan()[range].SequenceEqual(requiredScope))
                {
                    return check;
                }
            }
        }

        return new TokenCheck(TokenFailure.MissingScope);
    }

    private async ValueTask<(TokenCheck Check, JsonWebToken? Token)> ValidateAsync(string token, string audience, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(token) || token.Length > MaxTokenLength || !_handler.CanReadToken(token))
        {
            return (new TokenCheck(TokenFailure.Malformed), null);
        }

        JsonWebToken jwt;
        try
        {
            jwt = _handler.ReadJsonWebToken(token);
        }
        catch (ArgumentException)
        {
            return (new TokenCheck(TokenFailure.Malformed), null);
        }

        if (string.IsNullOrEmpty(jwt.Kid))
        {
            return (new TokenCheck(TokenFailure.Malformed), null);
        }

        var key = await _keys.GetKeyAsync(jwt.Kid, cancellationToken).ConfigureAwait(false);
        if (key is null)
        {
            return (new TokenCheck(TokenFailure.UnknownKey), null);
        }

        var parameters = new TokenValidationParameters
        {
            ValidIssuer = options.Issuer,
            ValidAudience = audience,
            IssuerSigningKey = key,
            ValidAlgorithms = Es256,
            RequireSignedTokens = true,
            RequireExpirationTime = true,
            ValidateLifetime = true,
            LifetimeValidator = _lifetime,
            TryAllIssuerSigningKeys = false,
        };
        var result = await _handler.ValidateTokenAsync(jwt, parameters).ConfigureAwait(false);
        return result.IsValid
            ? (new TokenCheck(TokenFailure.None, jwt.Subject), jwt)
            : (new TokenCheck(Classify(result.Exception)), null);
    }

    private sealed record VerifiedInternal(string? Subject, string? Scopes, DateTime ValidUntil);

    private static TokenFailure Classify(Exception? e) => e switch
    {
        SecurityTokenExpiredException or SecurityTokenNotYetValidException or SecurityTokenNoExpirationException or SecurityTokenInvalidLifetimeException => TokenFailure.Expired,
        SecurityTokenInvalidIssuerException => TokenFailure.WrongIssuer,
        SecurityTokenInvalidAudienceException => TokenFailure.WrongAudience,
        SecurityTokenInvalidSignatureException or SecurityTokenInvalidAlgorithmException or SecurityTokenSignatureKeyNotFoundException => TokenFailure.InvalidSignature,
        _ => TokenFailure.Invalid,
    };
}
