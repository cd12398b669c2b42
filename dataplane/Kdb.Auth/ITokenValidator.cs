namespace Kdb.Node.Auth;

/// <summary>
/// Offline validation of the control plane's JWTs (ES256) against its JWKS, for the data plane's login paths:
/// data tokens sent as pgwire passwords and the proxy's internal tokens. Create one with
/// <see cref="TokenValidators.Create"/>; it is thread-safe and meant to live as long as the node.
/// </summary>
public interface ITokenValidator
{
    /// <summary>
    /// Checks a data token: signature, <c>iss</c>, <c>exp</c>, <c>aud = kdb-data</c>, <c>db</c> = <paramref name="database"/>
    /// and <c>role</c> = <paramref name="role"/> (the startup user). Never throws for a bad token.
    /// </summary>
    ValueTask<TokenCheck> ValidateDataTokenAsync(string token, string database, string role, CancellationToken cancellationToken);

    /// <summary>
    /// Checks a service token: signature, <c>iss</c>, <c>exp</c>, <c>aud = kdb-internal</c> and <paramref name="requiredScope"/>
    /// among the space-separated <c>scope</c> claim. Never throws for a bad token.
    /// </summary>
    ValueTask<TokenCheck> ValidateInternalTokenAsync(string token, string requiredScope, CancellationToken cancellationToken);
}

/// <summary>Why a token was refused. Callers answer every failure alike (28P01, 401); the reason is for logs and tests.</summary>
public enum TokenFailure
{
    /// <summary>The token is valid.</summary>
    None = 0,

    /// <summary>Not a compact JWS, too long, or without a <c>kid</c>.</summary>
    Malformed = 1,

    /// <summary>The <c>kid</c> is not in the issuer's JWKS (or the JWKS could not be fetched).</summary>
    UnknownKey = 2,

    /// <summary>The signature does not verify, or the algorithm is not ES256.</summary>
    InvalidSignature = 3,

    /// <summary>Past <c>exp</c> (or before <c>nbf</c>), or without <c>exp</c>.</summary>
    Expired = 4,

    /// <summary><c>iss</c> is not the configured issuer.</summary>
    WrongIssuer = 5,

    /// <summary><c>aud</c> is not the audience of the surface.</summary>
    WrongAudience = 6,

    /// <summary>A data token for another database.</summary>
    WrongDatabase = 7,

    /// <summary>A data token for another role.</summary>
    WrongRole = 8,

    /// <summary>A service token without the required scope.</summary>
    MissingScope = 9,

    /// <summary>Any other validation failure.</summary>
    Invalid = 10,
}

/// <summary>The outcome of a token check.</summary>
/// <param name="Failure"><see cref="TokenFailure.None"/> when valid.</param>
/// <param name="Subject">The <c>sub</c> claim of a valid token.</param>
public readonly record struct TokenCheck(TokenFailure Failure, string? Subject = null)
{
    /// <summary>True when the token passed every check.</summary>
    public bool IsValid => Failure == TokenFailure.None;
}
