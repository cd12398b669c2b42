using System.Buffers.Binary;

namespace Kdb.Storage.Benchmarks;

/// <summary>Synthetic key sets with fixed seeds, shaped after SOSD's distributions.</summary>
internal static class Datasets
{
    public static readonly string[] U64Names = ["dense", "uniform", "lognormal", "books", "osm"];

    public static ulong[] U64(string name, int n)
    {
        var r = new Random((name.Length * 7919) + name[0] + name[^1]);
        var m = n + (n / 20);
        ulong[] raw;
        switch (name)
        {
            case "dense":
                raw = new ulong[n];
                for (var i = 0; i < n; i++)
                {
                    raw[i] = 1_000_000UL + (ulong)i;
                }
                return raw;
            case "uniform":
                raw = new ulong[m];
                for (var i = 0; i < m; i++)
                {
                    raw[i] = (ulong)r.NextInt64(long.MaxValue);
                }
                break;
            case "lognormal":
                raw = new ulong[m];
                for (var i = 0; i < m; i++)
                {
                    raw[i] = (ulong)Math.Min(Math.Exp(Gaussian(r) * 2.0) * 1e12, 9e18);
                }
                break;
            case "books":
                // Heavy-tailed gaps (Pareto α = 1.1): mostly small steps, rare enormous ones.
                raw = new ulong[m];
                ulong acc = 0;
                for (var i = 0; i < m; i++)
                {
                    var gap = Math.Min(1.0 / Math.Pow(1 - r.NextDouble(), 1 / 1.1), 1e9);
                    acc += 1 + (ulong)(gap * 100);
                    raw[i] = acc;
                }
                break;
            case "osm":
                var list = new List<ulong>(m);
                m = n + (n / 5);
                Clusters(r, 0, 1UL << 62, m, 6, list);
                raw = [.. list];
                break;
            default:
                throw new ArgumentException(name);
        }
        Array.Sort(raw);
        var u = 0;
        for (var i = 0; i < raw.Length; i++)
        {
            if (i == 0 || raw[i] != raw[u - 1])
            {
                raw[u++] = raw[i];
            }
        }
        if (u < n)
        {
            throw new InvalidOperationException($"{name}: only {u} distinct keys");
        }
        // Even subsample to exactly n keys, keeping the distribution's tails.
        var result = new ulong[n];
        for (var i = 0; i < n; i++)
        {
            result[i] = raw[(long)i * u / n];
        }
        return result;
    }

    // Recursively sub-clustered points with huge empty jumps between clusters (osm-like cell ids).
    private static void Clusters(Random r, ulong lo, ulong width, int count, int depth, List<ulong> output)
    {
        if (depth == 0 || count < 256 || width < 1024)
        {
            for (var i = 0; i < count; i++)
            {
                output.Add(lo + (ulong)(r.NextDouble() * width));
            }
            return;
        }
        var k = 2 + r.Next(14);
        var weights = new double[k];
        double sum = 0;
        for (var i = 0; i < k; i++)
        {
            weights[i] = -Math.Log(1 - r.NextDouble());
            sum += weights[i];
        }
        var left = count;
        for (var i = 0; i < k; i++)
        {
            var c = i == k - 1 ? left : (int)(count * weights[i] / sum);
            c = Math.Min(c, left);
            left -= c;
            // Keep ≥ 64 slots per point so sub-clusters stay mostly distinct.
            var sub = Math.Min(width, Math.Max(64UL * (ulong)Math.Max(c, 1), width / (ulong)(10 + r.Next(1000))));
            var off = (ulong)(r.NextDouble() * (width - sub));
            Clusters(r, lo + off, sub, c, depth - 1, output);
        }
    }

    private static double Gaussian(Random r) =>
        Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());

    /// <summary>24-byte keys: 16-byte tenant+table+index prefix (1000 drawn, a few coincide) + uniform
    /// u64 suffix. Generated prefix by prefix (sorted suffixes per prefix), so 100M keys need one
    /// key array and a u64 buffer, not a sort of 24-byte structs.</summary>
    public static Key24[] Prefixed(int n)
    {
        var r = new Random(777);
        var prefixes = new (ulong A, ulong B)[1000];
        for (var i = 0; i < prefixes.Length; i++)
        {
            prefixes[i] = ((ulong)r.Next(1, 200), ((ulong)(uint)r.Next(1, 50) << 32) | (uint)r.Next(0, 3));
        }
        var counts = new int[prefixes.Length];
        for (var i = 0; i < n; i++)
        {
            counts[r.Next(prefixes.Length)]++;
        }
        var order = new int[prefixes.Length];
        for (var i = 0; i < order.Length; i++)
        {
            order[i] = i;
        }
        Array.Sort(order, (x, y) => prefixes[x].CompareTo(prefixes[y]) is var c && c != 0 ? c : x.CompareTo(y));
        var keys = new Key24[n];
        var u = 0;
        var buf = Array.Empty<ulong>();
        for (var oi = 0; oi < order.Length;)
        {
            var p = prefixes[order[oi]];
            var c = 0;
            while (oi < order.Length && prefixes[order[oi]] == p)
            {
                c += counts[order[oi++]];
            }
            if (buf.Length < c)
            {
                buf = new ulong[c];
            }
            for (var i = 0; i < c; i++)
            {
                buf[i] = (ulong)r.NextInt64();
            }
            Array.Sort(buf, 0, c);
            for (var i = 0; i < c; i++)
            {
                if (i == 0 || buf[i] != buf[i - 1])
                {
                    keys[u++] = new Key24(p.A, p.B, buf[i]);
                }
            }
        }
        if (u < n)
        {
            // Two equal random suffixes under one prefix: astronomically rare, but never silently short.
            throw new InvalidOperationException($"prefixed: only {u} distinct keys");
        }
        return keys;
    }
}

/// <summary>A 24-byte key as three big-endian words, so numeric order is byte order.</summary>
internal readonly record struct Key24(ulong A, ulong B, ulong C) : IComparable<Key24>
{
    public int CompareTo(Key24 o) => A != o.A ? A.CompareTo(o.A) : B != o.B ? B.CompareTo(o.B) : C.CompareTo(o.C);

    public void WriteTo(Span<byte> dst)
    {
        BinaryPrimitives.WriteUInt64BigEndian(dst, A);
        BinaryPrimitives.WriteUInt64BigEndian(dst[8..], B);
        BinaryPrimitives.WriteUInt64BigEndian(dst[16..], C);
    }
}
