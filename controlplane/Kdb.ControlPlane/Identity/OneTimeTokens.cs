using System.Security.Cryptography;
using System.Text;

namespace Kdb.ControlPlane.Identity;

/// <summary>
/// High-entropy one-time tokens sent by mail (invitations, password resets): only their SHA-256 is stored,
/// which is enough for 256 random bits, and lookups by hash need no constant-time compare.
/// </summary>
internal static class OneTimeTokens
{
    public static (string Value, string Hash) New()
    {
        var value = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        return (value, Hash(value));
    }

    public static string Hash(string value) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(value)));
}
