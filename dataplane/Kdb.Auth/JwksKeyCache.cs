using Microsoft.IdentityModel.Tokens;

namespace Kdb.Node.Auth;

/// <summary>
/// The issuer's public signing keys by <c>kid</c>, fetched from its JWKS. A check with an unknown <c>kid</c> (a
/// rotated key) refetches, but at most once per <see cref="TokenValidatorOptions.MinRefetchInterval"/>, so random
/// tokens cannot turn the data plane into a load generator against the issuer. A failed fetch keeps the old keys and
/// is retried sooner (one second, doubling up to that interval): an issuer still starting, or too slow to answer on a
/// loaded host, must not lock every token out for a whole interval.
/// </summary>
internal sealed partial class JwksKeyCache(TokenValidatorOptions options, HttpClient http, TimeProvider time, ILogger logger) : IDisposable
{
    // A JWKS of a handful of EC keys is about a kilobyte; anything far larger is not the issuer's.
    private const int MaxJwksBytes = 256 * 1024;

    private readonly SemaphoreSlim _fetchGate = new(1, 1);
    private volatile Dictionary<string, SecurityKey> _keys = new(StringComparer.Ordinal);
    private static readonly TimeSpan FirstRetryAfterFailure = TimeSpan.FromSeconds(1);

    private DateTimeOffset? _lastAttempt;
    private TimeSpan _nextAttemptAfter;
    private TimeSpan _retryAfterFailure = FirstRetryAfterFailure;
    private long _fetchedAtTicks;

    /// <summary>The key for <paramref name="kid"/>, or null when the issuer does not publish it.</summary>
    public ValueTask<SecurityKey?> GetKeyAsync(string kid, CancellationToken cancellationToken)
    {
        // Fast path: a known kid in a fresh cache needs no lock and no await.
        if (_keys.TryGetValue(kid, out var key) && time.GetUtcNow().UtcTicks - Volatile.Read(ref _fetchedAtTicks) < options.CacheLifetime.Ticks)
        {
            return ValueTask.FromResult<SecurityKey?>(key);
        }

        return RefreshAndGetAsync(kid, cancellationToken);
    }

    public void Dispose() => _fetchGate.Dispose();

    private async ValueTask<SecurityKey?> RefreshAndGetAsync(string kid, CancellationToken cancellationToken)
    {
        await _fetchGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var now = time.GetUtcNow();
            if (_lastAttempt is null || now - _lastAttempt.Value >= _nextAttemptAfter)
            {
                _lastAttempt = now;
                if (await FetchAsync(cancellationToken).ConfigureAwait(false))
                {
                    _nextAttemptAfter = options.MinRefetchInterval;
                    _retryAfterFailure = FirstRetryAfterFailure;
                }
                else
                {
                    _nextAttemptAfter = _retryAfterFailure < options.MinRefetchInterval ? _retryAfterFailure : options.MinRefetchInterval;
                    _retryAfterFailure = _nextAttemptAfter * 2;
                }
            }

            return _keys.TryGetValue(kid, out var key) ? key : null;
        }
        finally
        {
            _fetchGate.Release();
        }
    }

    /// <summary>Fetches the JWKS; false when it could not be had (the cached keys stay).</summary>
    private async Task<bool> FetchAsync(CancellationToken cancellationToken)
    {
        var uri = options.EffectiveJwksUri;
        try
        {
            using var response = await http.GetAsync(uri, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            response.EnsureSuccessStatusCode();
            if (response.Content.Headers.ContentLength > MaxJwksBytes)
            {
                throw new InvalidDataException($"the JWKS is {response.Content.Headers.ContentLength} bytes");
            }

            var json = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            if (json.Length > MaxJwksBytes)
            {
                throw new InvalidDataException($"the JWKS is {json.Length} characters");
            }

            var keys = new Dictionary<string, SecurityKey>(StringComparer.Ordinal);
            foreach (var jwk in new JsonWebKeySet(json).Keys)
            {
                // Only public P-256 signing keys can sign ES256 tokens; anything else in the set is ignored.
                if (jwk.Kty == JsonWebAlgorithmsKeyTypes.EllipticCurve && jwk.Crv == JsonWebKeyECTypes.P256 && !string.IsNullOrEmpty(jwk.Kid)
                    && jwk.Use is null or "sig" && !jwk.HasPrivateKey)
                {
                    keys[jwk.Kid] = jwk;
                }
            }

            _keys = keys;
            Volatile.Write(ref _fetchedAtTicks, time.GetUtcNow().UtcTicks);
            LogFetched(logger, keys.Count, uri);
            return true;
        }
        catch (Exception e) when (e is HttpRequestException or ArgumentException or InvalidDataException or System.Text.Json.JsonException
            || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            LogFetchFailed(logger, uri, e.Message);
            return false;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Fetched {Count} signing keys from {JwksUri}")]
    private static partial void LogFetched(ILogger logger, int count, Uri jwksUri);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not fetch the JWKS from {JwksUri} ({Reason}); keeping the cached keys")]
    private static partial void LogFetchFailed(ILogger logger, Uri jwksUri, string reason);
}
