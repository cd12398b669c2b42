using Kdb.Node.Auth;

namespace Kdb.Node.Cluster;

/// <summary>Checks the kdb-internal bearer token of an internal or operator request (DESIGN, "Authentication").</summary>
internal static class InternalAuth
{
    /// <summary>Null when the token carries one of <paramref name="scopes"/>; else the 401/403 problem to return.</summary>
    public static async ValueTask<IResult?> CheckAsync(HttpContext context, ITokenValidator? tokens, params string[] scopes)
    {
        var header = context.Request.Headers.Authorization.ToString();
        if (tokens is null || !header.StartsWith("Bearer ", StringComparison.Ordinal))
        {
            return Results.Problem(statusCode: 401, title: "Unauthorized", detail: "a kdb-internal bearer token is required");
        }
        var token = header["Bearer ".Length..].Trim();
        var wrongScope = false;
        foreach (var scope in scopes)
        {
            var check = await tokens.ValidateInternalTokenAsync(token, scope, context.RequestAborted);
            if (check.IsValid)
            {
                return null;
            }
            wrongScope |= check.Failure == TokenFailure.MissingScope;
        }
        return wrongScope
            ? Results.Problem(statusCode: 403, title: "Forbidden", detail: "the token lacks the scope this endpoint needs")
            : Results.Problem(statusCode: 401, title: "Unauthorized", detail: "the bearer token is not valid");
    }
}
