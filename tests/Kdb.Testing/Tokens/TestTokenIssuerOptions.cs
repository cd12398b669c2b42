namespace Kdb.Testing.Tokens;

/// <summary>Settings of a <see cref="TestTokenIssuer"/>.</summary>
public sealed record TestTokenIssuerOptions
{
    /// <summary>The <c>iss</c> of minted tokens and of the discovery document; the server's base URL (http://127.0.0.1:port) when null.</summary>
    public string? Issuer { get; init; }

    /// <summary>Key id of the first signing key; random when null.</summary>
    public string? KeyId { get; init; }

    /// <summary>Clock for <c>iat</c>, <c>nbf</c> and <c>exp</c>; the system clock when null.</summary>
    public TimeProvider? Time { get; init; }
}
