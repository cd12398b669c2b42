using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Kdb.PgWire.Auth;

/// <summary>
/// A SCRAM-SHA-256 verifier (RFC 5802 / 7677) in PostgreSQL's text form
/// <c>SCRAM-SHA-256$&lt;iterations&gt;:&lt;salt&gt;$&lt;StoredKey&gt;:&lt;ServerKey&gt;</c> (base64 parts), as
/// pg_authid.rolpassword stores it. The password itself is never kept.
/// </summary>
/// <param name="Iterations">PBKDF2 iteration count.</param>
/// <param name="Salt">Random salt.</param>
/// <param name="StoredKey">H(HMAC(SaltedPassword, "Client Key")).</param>
/// <param name="ServerKey">HMAC(SaltedPassword, "Server Key").</param>
public sealed record ScramSha256Verifier(int Iterations, byte[] Salt, byte[] StoredKey, byte[] ServerKey)
{
    /// <summary>PostgreSQL's default (scram_iterations = 4096).</summary>
    public const int DefaultIterations = 4096;

    private const string Prefix = "SCRAM-SHA-256$";

    /// <summary>
    /// Derives a verifier from a password. The password is used as UTF-8 without SASLprep
    /// normalization, which equals SASLprep for ASCII passwords (what kdb generates).
    /// </summary>
    public static ScramSha256Verifier Create(string password, int iterations = DefaultIterations, byte[]? salt = null)
    {
        ArgumentNullException.ThrowIfNull(password);
        ArgumentOutOfRangeException.ThrowIfLessThan(iterations, 1);
        salt ??= RandomNumberGenerator.GetBytes(16);
        byte[] salted = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, 32);
        byte[] clientKey = HMACSHA256.HashData(salted, "Client Key"u8);
        byte[] storedKey = SHA256.HashData(clientKey);
        byte[] serverKey = HMACSHA256.HashData(salted, "Server Key"u8);
        CryptographicOperations.ZeroMemory(salted);
        return new ScramSha256Verifier(iterations, salt, storedKey, serverKey);
    }

    /// <summary>Parses the text form; false when it is malformed.</summary>
    public static bool TryParse(string? text, out ScramSha256Verifier? verifier)
    {
        verifier = null;
        if (text is null || !text.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return false;
        }

        string[] halves = text[Prefix.Length..].Split('$');
        if (halves.Length != 2)
        {
            return false;
        }

        string[] left = halves[0].Split(':');
        string[] right = halves[1].Split(':');
        if (left.Length != 2 || right.Length != 2
            || !int.TryParse(left[0], NumberStyles.None, CultureInfo.InvariantCulture, out int iterations) || iterations < 1)
        {
            return false;
        }

        try
        {
            byte[] salt = Convert.FromBase64String(left[1]);
            byte[] stored = Convert.FromBase64String(right[0]);
            byte[] server = Convert.FromBase64String(right[1]);
            if (stored.Length != 32 || server.Length != 32 || salt.Length == 0)
            {
                return false;
            }

            verifier = new ScramSha256Verifier(iterations, salt, stored, server);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    /// <summary>Parses the text form; throws <see cref="FormatException"/> when malformed.</summary>
    public static ScramSha256Verifier Parse(string text) =>
        TryParse(text, out ScramSha256Verifier? v) ? v! : throw new FormatException("not a SCRAM-SHA-256 verifier");

    /// <summary>
    /// A verifier for a (database, user) that does not exist, derived from a server secret: the same
    /// name always gets the same salt and iteration count, so probing reveals nothing, and no password
    /// can match it (its StoredKey is not the hash of any known key).
    /// </summary>
    public static ScramSha256Verifier CreateFake(ReadOnlySpan<byte> serverSecret, string database, string user, int iterations = DefaultIterations)
    {
        byte[] name = Encoding.UTF8.GetBytes(database + "\0" + user);
        byte[] salt = Derive(serverSecret, "salt", name)[..16];
        return new ScramSha256Verifier(iterations, salt, Derive(serverSecret, "stored", name), Derive(serverSecret, "server", name));
    }

    /// <summary>The text form.</summary>
    public override string ToString() =>
        $"{Prefix}{Iterations.ToString(CultureInfo.InvariantCulture)}:{Convert.ToBase64String(Salt)}${Convert.ToBase64String(StoredKey)}:{Convert.ToBase64String(ServerKey)}";

    private static byte[] Derive(ReadOnlySpan<byte> secret, string label, byte[] name)
    {
        byte[] input = [.. Encoding.ASCII.GetBytes(label), 0, .. name];
        return HMACSHA256.HashData(secret, input);
    }
}
