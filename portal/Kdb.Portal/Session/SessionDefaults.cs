namespace Kdb.Portal.Session;

/// <summary>Names of the session cookie and of the tokens kept in it.</summary>
public static class SessionDefaults
{
    /// <summary>The cookie authentication scheme.</summary>
    public const string Scheme = "Cookies";

    /// <summary>The cookie's name.</summary>
    public const string CookieName = "kdb_session";

    public const string AccessToken = "access_token";

    public const string RefreshToken = "refresh_token";

    /// <summary>When the access token expires (ISO 8601, UTC).</summary>
    public const string ExpiresAt = "expires_at";
}

/// <summary>Session settings (section <c>Session</c>).</summary>
public sealed class PortalSessionOptions
{
    public const string Section = "Session";

    /// <summary>
    /// Refresh the access token when it has less than this left, so no API call is made with a token about to
    /// expire. Larger than the access-token lifetime means every request refreshes (tests use that).
    /// </summary>
    public TimeSpan RefreshBefore { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>How long the session cookie lives without use (sliding); the refresh token bounds it too.</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromHours(8);

    /// <summary>The OAuth client id the portal presents on the password grant.</summary>
    public string ClientId { get; set; } = "kdb-portal";
}
