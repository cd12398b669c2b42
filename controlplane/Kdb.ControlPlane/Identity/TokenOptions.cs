namespace Kdb.ControlPlane.Identity;

/// <summary>Token issuing settings (configuration section <c>Tokens</c>).</summary>
public sealed class TokenOptions
{
    public const string Section = "Tokens";

    /// <summary>The <c>iss</c> of every token; also the base of the discovery document.</summary>
    public string Issuer { get; set; } = "http://127.0.0.1:5100";

    public TimeSpan AccessTokenLifetime { get; set; } = TimeSpan.FromMinutes(15);

    public TimeSpan ServiceTokenLifetime { get; set; } = TimeSpan.FromHours(1);

    public TimeSpan RefreshTokenLifetime { get; set; } = TimeSpan.FromDays(30);

    /// <summary>How long a signing key signs before its successor takes over.</summary>
    public TimeSpan SigningKeyLifetime { get; set; } = TimeSpan.FromDays(30);

    /// <summary>How long a new key is published before it signs, so every validator's JWKS cache has it.</summary>
    public TimeSpan SigningKeyPublishLead { get; set; } = TimeSpan.FromHours(2);

    /// <summary>Clock skew accepted when validating.</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The longest lifetime of any token this issuer signs: a retired key stays published that long.</summary>
    public TimeSpan LongestTokenLifetime => AccessTokenLifetime > ServiceTokenLifetime ? AccessTokenLifetime : ServiceTokenLifetime;
}

/// <summary>Audiences and scopes of DESIGN.md.</summary>
public static class KdbAudiences
{
    public const string Api = "kdb-api";
    public const string Data = "kdb-data";
    public const string Internal = "kdb-internal";
}
