using System.Security.Cryptography;

namespace Kdb.Testing.Ids;

/// <summary>
/// Ids shaped as DESIGN.md fixes them: a type prefix and lowercase Crockford base32. Org, user, API-key, backup and
/// operation ids carry 26 characters (48-bit millisecond time, then 80 random bits; ULID-like, so they sort by
/// creation time, and ids made in one process are strictly increasing); database ids carry 16 random characters.
/// </summary>
public static class KdbIds
{
    /// <summary>Lowercase Crockford base32: digits and letters without i, l, o and u.</summary>
    public const string Alphabet = "0123456789abcdefghjkmnpqrstvwxyz";

    internal const int TimeOrderedLength = 26;
    private const int DatabaseIdLength = 16;

    private static readonly TimeOrderedIdGenerator Shared = new();

    /// <summary>A new <c>org_</c> id.</summary>
    public static string NewOrgId() => NewTimeOrdered("org_");

    /// <summary>A new <c>usr_</c> id.</summary>
    public static string NewUserId() => NewTimeOrdered("usr_");

    /// <summary>A new <c>key_</c> (API key) id.</summary>
    public static string NewApiKeyId() => NewTimeOrdered("key_");

    /// <summary>A new <c>bkp_</c> (backup) id.</summary>
    public static string NewBackupId() => NewTimeOrdered("bkp_");

    /// <summary>A new <c>op_</c> (operation) id.</summary>
    public static string NewOperationId() => NewTimeOrdered("op_");

    /// <summary>A new <c>db_</c> id: 16 random characters (80 bits), a valid PostgreSQL database name.</summary>
    public static string NewDatabaseId()
    {
        Span<byte> random = stackalloc byte[10];
        RandomNumberGenerator.Fill(random);
        var value = UInt128.Zero;
        foreach (var b in random)
        {
            value = (value << 8) | b;
        }

        return "db_" + Encode(value, DatabaseIdLength);
    }

    /// <summary>A time-ordered id with any prefix, for the current time (see the type's remarks).</summary>
    public static string NewTimeOrdered(string prefix) => Shared.Next(prefix, DateTimeOffset.UtcNow);

    /// <summary>The DNS-label form of a database id (<c>db_x</c> becomes <c>db-x</c>), used in SNI and HTTP hosts.</summary>
    /// <exception cref="FormatException"><paramref name="databaseId"/> is not a database id.</exception>
    public static string ToDnsLabel(string databaseId) =>
        IsDatabaseId(databaseId) ? "db-" + databaseId[3..] : throw new FormatException($"'{databaseId}' is not a database id (db_ + 16 base32 characters).");

    /// <summary>True when <paramref name="id"/> is <paramref name="prefix"/> followed by 26 lowercase Crockford base32 characters.</summary>
    public static bool IsTimeOrderedId(string? id, string prefix) =>
        id is not null && id.StartsWith(prefix, StringComparison.Ordinal) && IsBase32(id.AsSpan(prefix.Length), TimeOrderedLength);

    /// <summary>True when <paramref name="id"/> is <c>db_</c> followed by 16 lowercase Crockford base32 characters.</summary>
    public static bool IsDatabaseId(string? id) =>
        id is not null && id.StartsWith("db_", StringComparison.Ordinal) && IsBase32(id.AsSpan(3), DatabaseIdLength);

    /// <summary>The creation time encoded in a time-ordered id.</summary>
    /// <exception cref="FormatException"><paramref name="id"/> is not a time-ordered id with that prefix.</exception>
    public static DateTimeOffset TimestampOf(string id, string prefix)
    {
        if (!IsTimeOrderedId(id, prefix))
        {
            throw new FormatException($"'{id}' is not a time-ordered id with prefix '{prefix}'.");
        }

        long milliseconds = 0;
        foreach (var c in id.AsSpan(prefix.Length, 10))
        {
            milliseconds = (milliseconds << 5) | (long)Alphabet.IndexOf(c, StringComparison.Ordinal);
        }

        return DateTimeOffset.FromUnixTimeMilliseconds(milliseconds);
    }

    internal static string Encode(UInt128 value, int length) =>
        string.Create(length, value, static (chars, v) =>
        {
            for (var i = chars.Length - 1; i >= 0; i--)
            {
                chars[i] = Alphabet[(int)(v & 31)];
                v >>= 5;
            }
        });

    private static bool IsBase32(ReadOnlySpan<char> text, int length)
    {
        if (text.Length != length)
        {
            return false;
        }

        foreach (var c in text)
        {
            if (!Alphabet.Contains(c, StringComparison.Ordinal))
            {
                return false;
            }
        }

        return true;
    }
}
