using Kdb.Node.Auth;
using Kdb.PgWire.Session;

namespace Kdb.Node.Standalone;

/// <summary>
/// Logins of the standalone node: SCRAM verifiers of the configured roles, and token passwords checked offline
/// against the configured issuer's JWKS (DESIGN, Authentication). Without an issuer every token is refused.
/// </summary>
internal sealed class StandaloneAuthenticator(StandaloneServer server, ITokenValidator? tokens) : IPgAuthenticator
{
    /// <summary>The scope a proxy's backend connection must carry.</summary>
    public const string ProxyScope = "kdb.proxy";

    public ValueTask<string?> GetScramVerifierAsync(string database, string user, CancellationToken cancellationToken) =>
        ValueTask.FromResult(server.FindRole(database, user)?.Verifier);

    public async ValueTask<bool> ValidateTokenAsync(PgAuthMethod method, string token, string database, string user, CancellationToken cancellationToken)
    {
        if (tokens is null)
        {
            return false;
        }

        switch (method)
        {
            case PgAuthMethod.DataToken:
                var data = await tokens.ValidateDataTokenAsync(token, database, user, cancellationToken).ConfigureAwait(false);

                // A valid token for a role this node does not know opens nothing: the same 28P01 as any failure.
                return data.IsValid && server.FindRole(database, user) is not null;
            case PgAuthMethod.Proxy:
                return (await tokens.ValidateInternalTokenAsync(token, ProxyScope, cancellationToken).ConfigureAwait(false)).IsValid;
            default:
                return false;
        }
    }
}
