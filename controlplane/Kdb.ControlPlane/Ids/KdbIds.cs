using System.Security.Cryptography;

namespace Kdb.ControlPlane.Ids;

/// <summary>
/// Ids of DESIGN.md: a type prefix and lowercase Crockford base32. Org, user, key, backup and operation ids
/// are 26 characters, time-ordered like ULIDs (48-bit milliseconds, then 80 random bits); database ids are
/// 16 random characters, valid PostgreSQL database names.
/// </summary>
public static class KdbIds
{
    private const string Alphabet = "0123456789abcdefghjkmnpqrstvwxyz";

    /// <summary>A new time-ordered id with <paramref name="prefix"/> (e.g. <c>org_</c>).</summary>
    public static string NewTimeOrdered(string prefix, TimeProvider time)
    {
        Span<byte> bytes = stackalloc byte[16];
        var ms = (ulong)time.GetUtcNow().ToUnixTimeMilliseconds();
        for (var i = 5; i >= 0; i--)
        {
            bytes[i] = (byte)ms;
            ms >>= 8;
        }

        RandomNumberGenerator.Fill(bytes[6..]);
        return prefix + Encode(bytes, 26);
    }

    /// <summary>A new database id: <c>db_</c> + 16 random characters.</summary>
    public static string NewDatabaseId()
    {
        Span<byte> bytes = stackalloc byte[10];
        RandomNumberGenerator.Fill(bytes);
        return "db_" + Encode(bytes, 16);
    }

    /// <summary>True when <paramref name="id"/> has <paramref name="prefix"/> and <paramref name="length"/> valid characters after it.</summary>
    public static bool IsValid(string? id, string prefix, int length = 26)
    {
        if (id is null || id.Length != prefix.Length + length || !id.StartsWith(prefix, StringComparison.Ordinal))
        {
            return false;
        }

        foreach (var c in id.AsSpan(prefix.Length))
        {
            if (!Alphabet.Contains(c, StringComparison.Ordinal))
            {
                return false;
            }
        }

        return true;
    }

    // Big-endian base32 of the whole byte string, so lexical order follows numeric (and so time) order.
    private static string Encode(ReadOnlySpan<byte> bytes, int chars)
    {
        Span<char> output = stackalloc char[chars];
        var bitBuffer = 0;
        var bitCount = 0;
        var totalBits = chars * 5;
        var padBits = totalBits - (bytes.Length * 8);
        var o = 0;
        // Leading pad bits (zero) let 128 bits fill 26 characters (130 bits) exactly like ULID.
        bitCount = padBits > 0 ? padBits : 0;
        foreach (var b in bytes)
        {
            bitBuffer = (bitBuffer << 8) | b;
            bitCount += 8;
            while (bitCount >= 5 && o < chars)
            {
                output[o++] = Alphabet[(bitBuffer >> (bitCount - 5)) & 31];
                bitCount -= 5;
            }
        }

        while (o < chars)
        {
            output[o++] = Alphabet[(bitBuffer << (5 - bitCount)) & 31];
            bitCount = 0;
        }

        return new string(output);
    }
}
