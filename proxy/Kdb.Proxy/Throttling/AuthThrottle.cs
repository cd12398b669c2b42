using System.Collections.Concurrent;

namespace Kdb.Proxy.Throttling;

/// <summary>What the throttle says about a login attempt.</summary>
public enum ThrottleVerdict
{
    /// <summary>Go ahead and authenticate.</summary>
    Allowed = 0,

    /// <summary>Within the backoff after failed logins, or another attempt of the pair is in flight: refuse without a verdict.</summary>
    Throttled = 1,
}

/// <summary>
/// Failed-login throttle per (client IP, requested database name), as CockroachDB's sqlproxy does it: after a
/// few failures the pair waits an exponentially growing, capped delay; an attempt during the wait, or concurrent with
/// another attempt of the same pair, gets a throttle error instead of an authentication verdict, so guesses
/// cannot run in parallel. Pairs that logged in successfully are exempt. Failures recorded before the route
/// entry's <c>lockoutResetAt</c> are forgotten. The first <see cref="ProxyOptions.ThrottleFreeFailures"/> failures
/// cost no wait: libpq and Npgsql retry a refused login once more on their own (the sslmode/gssencmode "prefer"
/// fallback), and that retry must get the same verdict, not a throttle error.
/// </summary>
internal sealed class AuthThrottle(ProxyOptions options, TimeProvider time)
{
    // Bounds memory under a flood of distinct pairs: past it the table starts over.
    private const int MaxPairs = 100_000;

    private readonly ConcurrentDictionary<(string Ip, string Database), PairState> _pairs = new();

    /// <summary>Pairs currently waiting out a backoff (for metrics and tests).</summary>
    public int LockedPairs
    {
        get
        {
            int n = 0;
            DateTimeOffset now = time.GetUtcNow();
            foreach (KeyValuePair<(string, string), PairState> p in _pairs)
            {
                if (!p.Value.Succeeded && p.Value.NextAllowedAt > now)
                {
                    n++;
                }
            }

            return n;
        }
    }

    /// <summary>
    /// Starts an attempt. When allowed, the caller must end it with <see cref="Succeeded"/> or <see cref="Failed"/>
    /// (or <see cref="Abandon"/> when the client left before a verdict).
    /// </summary>
    public ThrottleVerdict Begin(string ip, string database, DateTimeOffset? lockoutResetAt)
    {
        if (_pairs.Count > MaxPairs)
        {
            _pairs.Clear();
        }

        PairState state = _pairs.GetOrAdd((ip, database), static _ => new PairState());
        DateTimeOffset now = time.GetUtcNow();
        lock (state)
        {
            if (state.Succeeded)
            {
                return ThrottleVerdict.Allowed;
            }

            if (lockoutResetAt is { } reset && state.LastFailureAt is { } last && last <= reset)
            {
                state.Reset();
            }

            if (state.InFlight || (state.Failures > 0 && now < state.NextAllowedAt))
            {
                return ThrottleVerdict.Throttled;
            }

            state.InFlight = true;
            return ThrottleVerdict.Allowed;
        }
    }

    /// <summary>Ends an attempt that logged in: the pair is exempt from now on.</summary>
    public void Succeeded(string ip, string database)
    {
        if (_pairs.TryGetValue((ip, database), out PairState? state))
        {
            lock (state)
            {
                state.Reset();
                state.Succeeded = true;
            }
        }
    }

    /// <summary>Ends an attempt that failed authentication; returns the backoff now imposed.</summary>
    public TimeSpan Failed(string ip, string database)
    {
        PairState state = _pairs.GetOrAdd((ip, database), static _ => new PairState());
        DateTimeOffset now = time.GetUtcNow();
        lock (state)
        {
            state.InFlight = false;
            if (state.Succeeded)
            {
                return TimeSpan.Zero;
            }

            state.LastFailureAt = now;
            state.Failures++;
            int over = state.Failures - options.ThrottleFreeFailures;
            double factor = over <= 0 ? 0 : Math.Pow(2, Math.Min(over - 1, 30));
            TimeSpan delay = TimeSpan.FromTicks((long)Math.Min(options.ThrottleBaseDelay.Ticks * factor, options.ThrottleMaxDelay.Ticks));
            state.NextAllowedAt = now + delay;
            return delay;
        }
    }

    /// <summary>Ends an attempt without a verdict (the client went away or the backend was unreachable).</summary>
    public void Abandon(string ip, string database)
    {
        if (_pairs.TryGetValue((ip, database), out PairState? state))
        {
            lock (state)
            {
                state.InFlight = false;
            }
        }
    }

    private sealed class PairState
    {
        public bool InFlight { get; set; }

        public bool Succeeded { get; set; }

        public int Failures { get; set; }

        public DateTimeOffset? LastFailureAt { get; set; }

        public DateTimeOffset NextAllowedAt { get; set; }

        public void Reset()
        {
            Failures = 0;
            LastFailureAt = null;
            NextAllowedAt = default;
        }
    }
}
