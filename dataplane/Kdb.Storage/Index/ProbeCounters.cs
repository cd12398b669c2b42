using System.Numerics;

namespace Kdb.Storage.Index;

/// <summary>
/// Probe lengths of one engine's learned-index lookups as a histogram, and its mispredicts. Every segment index of the
/// engine records here, so the counts survive compaction (a segment's own counters go with it). Lookups run on many
/// threads at once: counts are striped by thread over cache-line-padded rows, so a lookup pays two or three
/// uncontended interlocked increments and no allocation.
/// </summary>
internal sealed class ProbeCounters
{
    /// <summary>Upper bounds of the buckets (positions compared); a last bucket holds everything above.</summary>
    public static readonly long[] Bounds = [1, 2, 4, 8, 16, 32, 64, 128];

    private const int Stripes = 16;
    private const int Stride = 16; // 128 bytes: a row per stripe, never sharing a cache line with another
    private const int SumSlot = 10;
    private const int MispredictSlot = 11;
    private readonly long[] _counts = new long[Stripes * Stride];

    /// <summary>Records a lookup that compared <paramref name="probes"/> keys; a mispredict found its key away from the predicted position.</summary>
    public void Record(long probes, bool mispredict)
    {
        var row = (Environment.CurrentManagedThreadId & (Stripes - 1)) * Stride;
        var bucket = probes <= 1 ? 0 : Math.Min(64 - BitOperations.LeadingZeroCount((ulong)(probes - 1)), Bounds.Length);
        Interlocked.Increment(ref _counts[row + bucket]);
        Interlocked.Add(ref _counts[row + SumSlot], probes);
        if (mispredict)
        {
            Interlocked.Increment(ref _counts[row + MispredictSlot]);
        }
    }

    /// <summary>Bucket counts (not cumulative; <see cref="Bounds"/>.Length + 1 of them), the sum of probes and the mispredicts.</summary>
    public (long[] Buckets, long Sum, long Mispredicts) Snapshot()
    {
        var buckets = new long[Bounds.Length + 1];
        long sum = 0, mispredicts = 0;
        for (var s = 0; s < Stripes; s++)
        {
            var row = s * Stride;
            for (var b = 0; b < buckets.Length; b++)
            {
                buckets[b] += Volatile.Read(ref _counts[row + b]);
            }

            sum += Volatile.Read(ref _counts[row + SumSlot]);
            mispredicts += Volatile.Read(ref _counts[row + MispredictSlot]);
        }

        return (buckets, sum, mispredicts);
    }
}

/// <summary>A histogram of durations in seconds (index builds, compactions): rare events, so plain interlocked counts.</summary>
internal sealed class DurationHistogram
{
    /// <summary>Upper bounds in seconds; a last bucket holds everything above.</summary>
    public static readonly double[] Bounds = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60];

    private readonly long[] _buckets = new long[Bounds.Length + 1];
    private long _sumTicks;

    public void Record(long elapsedTicks)
    {
        var seconds = (double)elapsedTicks / System.Diagnostics.Stopwatch.Frequency;
        var bucket = Array.BinarySearch(Bounds, seconds);
        Interlocked.Increment(ref _buckets[bucket >= 0 ? bucket : ~bucket]);
        Interlocked.Add(ref _sumTicks, elapsedTicks);
    }

    public DurationSnapshot Snapshot()
    {
        var buckets = new long[_buckets.Length];
        long count = 0;
        for (var i = 0; i < buckets.Length; i++)
        {
            buckets[i] = Volatile.Read(ref _buckets[i]);
            count += buckets[i];
        }

        return new DurationSnapshot(buckets, count, (double)Volatile.Read(ref _sumTicks) / System.Diagnostics.Stopwatch.Frequency);
    }
}
