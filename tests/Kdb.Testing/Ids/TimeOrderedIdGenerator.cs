using System.Security.Cryptography;

namespace Kdb.Testing.Ids;

/// <summary>
/// ULID-like ids: 48-bit millisecond time then 80 random bits, in 26 lowercase Crockford base32 characters. One
/// instance never repeats an id and never goes backwards: a clock that stalls or steps back reuses the last
/// timestamp and increments the random part. Instances are separate so that tests feeding odd clocks cannot
/// disturb the process-wide generator behind <see cref="KdbIds"/>.
/// </summary>
internal sealed class TimeOrderedIdGenerator
{
    private static readonly UInt128 RandomLimit = UInt128.One << 80;

    private readonly Lock _gate = new();
    private long _lastMilliseconds = -1;
    private UInt128 _lastRandom;

    public string Next(string prefix, DateTimeOffset now)
    {
        ArgumentException.ThrowIfNullOrEmpty(prefix);
        var milliseconds = now.ToUnixTimeMilliseconds();
        ArgumentOutOfRangeException.ThrowIfNegative(milliseconds, nameof(now));

        Span<byte> bytes = stackalloc byte[10];
        RandomNumberGenerator.Fill(bytes);
        var random = UInt128.Zero;
        foreach (var b in bytes)
        {
            random = (random << 8) | b;
        }

        lock (_gate)
        {
            if (milliseconds <= _lastMilliseconds)
            {
                milliseconds = _lastMilliseconds;
                random = _lastRandom + 1;
                if (random == RandomLimit)
                {
                    milliseconds++;
                    random = UInt128.Zero;
                }
            }

            _lastMilliseconds = milliseconds;
            _lastRandom = random;
        }

        return prefix + KdbIds.Encode(((UInt128)(ulong)milliseconds << 80) | random, KdbIds.TimeOrderedLength);
    }
}
