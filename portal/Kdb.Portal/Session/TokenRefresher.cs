using System.Security.Cryptography;
using System.Text;

namespace Kdb.Portal.Session;

/// <summary>
/// Refreshes access tokens once per refresh token. The control plane rotates refresh tokens and treats a
/// reused one as stolen (it revokes the whole login), so two requests arriving together with the same
/// cookie — a page and its status poll — must share one refresh rather than each spend the token.
/// </summary>
internal sealed class TokenRefresher(IServiceProvider services, TimeProvider time)
{
    // Long enough for every request that left the browser with the old cookie to arrive; short enough that
    // a revoked session cannot live on here.
    private static readonly TimeSpan Remember = TimeSpan.FromMinutes(1);

    private readonly Lock _lock = new();
    private readonly Dictionary<string, (Task<GrantResult> Refresh, DateTimeOffset Until)> _recent = new(StringComparer.Ordinal);

    public Task<GrantResult> RefreshAsync(string refreshToken)
    {
        var key = Hash(refreshToken);
        var now = time.GetUtcNow();
        lock (_lock)
        {
            Prune(now);
            if (_recent.TryGetValue(key, out var known))
            {
                return known.Refresh;
            }

            // Not tied to one request's cancellation: others may wait on the same refresh.
            var refresh = services.GetRequiredService<TokenClient>().RefreshAsync(refreshToken, CancellationToken.None);
            _recent[key] = (refresh, now + Remember);
            return refresh;
        }
    }

    /// <summary>Forgets a refresh whose outcome was a transient failure, so the next request tries again.</summary>
    public void Forget(string refreshToken)
    {
        lock (_lock)
        {
            _recent.Remove(Hash(refreshToken));
        }
    }

    /// <summary>
    /// At logout: forgets every remembered refresh that led to <paramref name="refreshToken"/>, so a copy of an
    /// older cookie cannot be answered from memory with tokens of the session that just ended.
    /// </summary>
    public void ForgetChain(string refreshToken)
    {
        lock (_lock)
        {
            var target = Hash(refreshToken);
            _recent.Remove(target);
            for (var found = true; found;)
            {
                found = false;
                foreach (var (key, entry) in _recent)
                {
                    if (entry.Refresh.IsCompletedSuccessfully && entry.Refresh.Result.Tokens is { } tokens && Hash(tokens.RefreshToken) == target)
                    {
                        _recent.Remove(key);
                        target = key;
                        found = true;
                        break;
                    }
                }
            }
        }
    }

    private static string Hash(string token) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    private void Prune(DateTimeOffset now)
    {
        if (_recent.Count < 64)
        {
            return;
        }

        List<string>? expired = null;
        foreach (var (key, entry) in _recent)
        {
            if (entry.Until <= now)
            {
                (expired ??= []).Add(key);
            }
        }

        foreach (var key in expired ?? [])
        {
            _recent.Remove(key);
        }
    }
}
