namespace Kdb.Testing.Tokens;

/// <summary>
/// Everything about one token, for <see cref="TestTokenIssuer.Mint"/>: the typed helpers build these, and tests of
/// bad input build odd ones (wrong audience, already expired, another issuer, another key).
/// </summary>
/// <param name="Audience">The <c>aud</c> claim.</param>
/// <param name="Subject">The <c>sub</c> claim.</param>
public sealed record TestTokenRequest(string Audience, string Subject)
{
    /// <summary>Further claims (strings, numbers, or arrays of them).</summary>
    public IReadOnlyDictionary<string, object> Claims { get; init; } = new Dictionary<string, object>();

    /// <summary>Time from <c>iat</c>/<c>nbf</c> to <c>exp</c>; must be positive.</summary>
    public TimeSpan Lifetime { get; init; } = TimeSpan.FromHours(1);

    /// <summary><c>iat</c> and <c>nbf</c>; the issuer's clock when null. Set it in the past to mint an expired token.</summary>
    public DateTimeOffset? IssuedAt { get; init; }

    /// <summary>The <c>iss</c> claim; the issuer's own when null.</summary>
    public string? Issuer { get; init; }

    /// <summary>Key to sign with; the issuer's current key when null (another key yields a token the JWKS cannot verify).</summary>
    public TestSigningKey? SigningKey { get; init; }
}
