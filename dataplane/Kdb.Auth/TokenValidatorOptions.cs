namespace Kdb.Node.Auth;

/// <summary>
/// Where tokens come from and what they must say. Read from a configuration section (e.g. <c>Tokens</c>) with
/// <see cref="Read"/>: <c>Issuer</c>, <c>JwksUri</c>, <c>DataAudience</c>, <c>InternalAudience</c>, <c>AllowHttpIssuer</c>.
/// </summary>
public sealed record TokenValidatorOptions
{
    /// <summary>The expected <c>iss</c>, which is also the issuer's base URL (e.g. <c>https://cp.kdb.localhost:7443</c>).</summary>
    public required string Issuer { get; init; }

    /// <summary>The JWKS location; <c>{Issuer}/.well-known/jwks.json</c> when null.</summary>
    public Uri? JwksUri { get; init; }

    /// <summary>The audience of data tokens.</summary>
    public string DataAudience { get; init; } = "kdb-data";

    /// <summary>The audience of service-to-service tokens.</summary>
    public string InternalAudience { get; init; } = "kdb-internal";

    /// <summary>The development flag: fetch the JWKS over plain http (the local cloud and tests). Off: https only.</summary>
    public bool AllowHttpIssuer { get; init; }

    /// <summary>Tolerated clock difference for <c>exp</c> and <c>nbf</c>.</summary>
    public TimeSpan ClockSkew { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Least time between two JWKS fetches, so a flood of unknown <c>kid</c>s cannot hammer the issuer (DESIGN: once a minute).</summary>
    public TimeSpan MinRefetchInterval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>After this long the cached JWKS is refetched on the next check, so keys the issuer dropped stop being trusted.</summary>
    public TimeSpan CacheLifetime { get; init; } = TimeSpan.FromHours(1);

    /// <summary>The effective JWKS location.</summary>
    public Uri EffectiveJwksUri => JwksUri ?? new Uri(Issuer.TrimEnd('/') + "/.well-known/jwks.json");

    /// <summary>
    /// Reads the options from <paramref name="section"/>, or returns null when it names no <c>Issuer</c> (tokens are then refused).
    /// </summary>
    /// <param name="section">The configuration section.</param>
    /// <param name="development">Default of <c>AllowHttpIssuer</c>.</param>
    /// <exception cref="InvalidOperationException">A setting is invalid; the message names it.</exception>
    public static TokenValidatorOptions? Read(IConfiguration section, bool development = false)
    {
        var issuer = section["Issuer"];
        if (string.IsNullOrWhiteSpace(issuer))
        {
            return null;
        }

        var where = section is IConfigurationSection s ? s.Path : "Tokens";
        if (!Uri.TryCreate(issuer, UriKind.Absolute, out _))
        {
            throw new InvalidOperationException($"{where}:Issuer = '{issuer}' is not an absolute URL.");
        }

        Uri? jwks = null;
        if (section["JwksUri"] is { Length: > 0 } jwksText && !Uri.TryCreate(jwksText, UriKind.Absolute, out jwks))
        {
            throw new InvalidOperationException($"{where}:JwksUri = '{jwksText}' is not an absolute URL.");
        }

        var options = new TokenValidatorOptions
        {
            Issuer = issuer,
            JwksUri = jwks,
            DataAudience = section["DataAudience"] is { Length: > 0 } data ? data : "kdb-data",
            InternalAudience = section["InternalAudience"] is { Length: > 0 } @internal ? @internal : "kdb-internal",
            AllowHttpIssuer = section.GetValue("AllowHttpIssuer", development),
        };
        options.Validate();
        return options;
    }

    /// <summary>Throws when the JWKS would be fetched over http without the development flag.</summary>
    /// <exception cref="InvalidOperationException">The JWKS location is not https and <see cref="AllowHttpIssuer"/> is off.</exception>
    public void Validate()
    {
        var uri = EffectiveJwksUri;
        if (uri.Scheme != Uri.UriSchemeHttps && !(AllowHttpIssuer && uri.Scheme == Uri.UriSchemeHttp))
        {
            throw new InvalidOperationException($"The JWKS at {uri} must be fetched over https (plain http only with the development flag).");
        }
    }
}
