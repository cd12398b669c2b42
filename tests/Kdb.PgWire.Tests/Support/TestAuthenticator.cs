using System.Collections.Concurrent;
using Kdb.PgWire.Session;

namespace Kdb.PgWire.Tests.Support;

/// <summary>
/// Roles and tokens held in memory. Tokens are opaque strings registered with the (method, database,
/// user) they open, standing in for the node host's JWT validation (audience, db and role claims).
/// </summary>
internal sealed class TestAuthenticator : IPgAuthenticator
{
    private readonly ConcurrentDictionary<(string Database, string User), string> _verifiers = new();
    private readonly ConcurrentDictionary<string, (PgAuthMethod Method, string Database, string User)> _tokens = new();

    public int TokenChecks;

    public void AddRole(string database, string user, string verifier) => _verifiers[(database, user)] = verifier;

    public void AddToken(string token, PgAuthMethod method, string database, string user) => _tokens[token] = (method, database, user);

    public ValueTask<string?> GetScramVerifierAsync(string database, string user, CancellationToken cancellationToken) =>
        ValueTask.FromResult(_verifiers.TryGetValue((database, user), out string? v) ? v : null);

    public ValueTask<bool> ValidateTokenAsync(PgAuthMethod method, string token, string database, string user, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref TokenChecks);
        bool ok = _tokens.TryGetValue(token, out var t) && t.Method == method && t.Database == database && t.User == user;
        return ValueTask.FromResult(ok);
    }
}
