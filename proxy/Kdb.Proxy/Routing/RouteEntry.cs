namespace Kdb.Proxy.Routing;

/// <summary>One replica of a database's shard group (DESIGN: the route table). <c>PgEndpoint</c> is <c>host:port</c>.</summary>
public sealed record RouteReplica(string NodeId, string PgEndpoint, string? HttpEndpoint);

/// <summary>A database role with its SCRAM-SHA-256 verifier in PostgreSQL's text form.</summary>
public sealed record RouteRole(string Name, string Kind, string ScramVerifier);

/// <summary>Per-database limits the proxy enforces.</summary>
public sealed record RouteLimits(int MaxConnections, int StatementsPerSecond);

/// <summary>A route entry as the control plane serves it on <c>/internal/v1/routes</c>.</summary>
public sealed record RouteEntry(
    string DatabaseId,
    string? TenantId,
    string? OrgId,
    string? GroupId,
    IReadOnlyList<RouteReplica>? Replicas,
    string? LeaderNodeId,
    IReadOnlyList<RouteRole>? Roles,
    string? QuotaState,
    RouteLimits? Limits,
    DateTimeOffset? LockoutResetAt,
    long Version)
{
    /// <summary>The role named <paramref name="name"/>, or null.</summary>
    public RouteRole? FindRole(string name)
    {
        if (Roles is null)
        {
            return null;
        }

        foreach (RouteRole role in Roles)
        {
            if (string.Equals(role.Name, name, StringComparison.Ordinal))
            {
                return role;
            }
        }

        return null;
    }
}

/// <summary>One answer of the long-poll: the whole table (<c>Full</c>) or the changes since the asked version.</summary>
public sealed record RoutesResponse(long Version, bool Full, IReadOnlyList<RouteEntry>? Upserts, IReadOnlyList<string>? Removals);
