namespace Kdb.Testing.Tokens;

/// <summary>Token audiences of DESIGN.md ("Authentication").</summary>
public static class KdbAudiences
{
    /// <summary>Management API (user and API-key tokens).</summary>
    public const string Api = "kdb-api";

    /// <summary>pgwire and the HTTP data API (data tokens).</summary>
    public const string Data = "kdb-data";

    /// <summary>Service-to-service calls (client-credentials tokens).</summary>
    public const string Internal = "kdb-internal";
}

/// <summary>Service scopes of DESIGN.md, carried space-separated in the <c>scope</c> claim of <c>kdb-internal</c> tokens.</summary>
public static class KdbScopes
{
    /// <summary>The proxy.</summary>
    public const string Proxy = "kdb.proxy";

    /// <summary>Data-plane nodes.</summary>
    public const string Node = "kdb.node";

    /// <summary>The provisioning worker.</summary>
    public const string Provisioning = "kdb.provisioning";

    /// <summary>Operator-only endpoints (never a tenant).</summary>
    public const string Operator = "kdb.operator";
}

/// <summary>Claim names used by Kdb tokens.</summary>
public static class KdbClaims
{
    /// <summary>Subject: user id, or client id for service tokens.</summary>
    public const string Subject = "sub";

    /// <summary>Org id of a data token.</summary>
    public const string Org = "org";

    /// <summary>Database id of a data token.</summary>
    public const string Database = "db";

    /// <summary>Database role of a data token (must equal the pgwire startup user).</summary>
    public const string Role = "role";

    /// <summary>Space-separated scopes of a service token.</summary>
    public const string Scope = "scope";

    /// <summary>OAuth client id of a service token.</summary>
    public const string ClientId = "client_id";
}
