using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Kdb.PgWire.Auth;

/// <summary>
/// The server side of one SCRAM-SHA-256 exchange (RFC 5802), without channel binding: the server
/// offers only SCRAM-SHA-256, so a client may send gs2 flag 'n' or 'y' but not 'p'.
/// </summary>
internal sealed class ScramServerExchange(ScramSha256Verifier verifier, string? serverNonce = null)
{
    private string _clientFirstBare = string.Empty;
    private string _serverFirst = string.Empty;
    private string _gs2Header = string.Empty;
    private string _nonce = string.Empty;

    /// <summary>Handles client-first-message; returns server-first-message, or null when malformed.</summary>
    public string? HandleClientFirst(ReadOnlySpan<byte> message)
    {
        string text;
        try
        {
            text = new UTF8Encoding(false, true).GetString(message);
        }
        catch (DecoderFallbackException)
        {
            return null;
        }

        // gs2-header = gs2-cbind-flag "," [authzid] ","
        int first = text.IndexOf(',', StringComparison.Ordinal);
        int second = first < 0 ? -1 : text.IndexOf(',', first + 1);
        if (second < 0 || !(text.StartsWith("n,", StringComparison.Ordinal) || text.StartsWith("y,", StringComparison.Ordinal)))
        {
            return null;
        }

        _gs2Header = text[..(second + 1)];
        _clientFirstBare = text[(second + 1)..];
        string? clientNonce = null;
        foreach (string attribute in _clientFirstBare.Split(','))
        {
            if (attribute.StartsWith("r=", StringComparison.Ordinal))
            {
                clientNonce = attribute[2..];
            }
            else if (attribute.StartsWith("m=", StringComparison.Ordinal))
            {
                return null; // mandatory extensions are not supported
            }
        }

        if (string.IsNullOrEmpty(clientNonce) || clientNonce.Contains(',', StringComparison.Ordinal))
        {
            return null;
        }

        _nonce = clientNonce + (serverNonce ?? Convert.ToBase64String(RandomNumberGenerator.GetBytes(18)));
        _serverFirst = string.Create(CultureInfo.InvariantCulture, $"r={_nonce},s={Convert.ToBase64String(verifier.Salt)},i={verifier.Iterations}");
        return _serverFirst;
    }

    /// <summary>
    /// Handles client-final-message. Returns server-final-message when the proof matches the verifier,
    /// null otherwise (wrong password, malformed message, or nonce/channel-binding mismatch).
    /// </summary>
    public string? HandleClientFinal(ReadOnlySpan<byte> message)
    {
        string text;
        try
        {
            text = new UTF8Encoding(false, true).GetString(message);
        }
        catch (DecoderFallbackException)
        {
            return null;
        }

        int proofAt = text.LastIndexOf(",p=", StringComparison.Ordinal);
        if (proofAt < 0 || _serverFirst.Length == 0)
        {
            return null;
        }

        string withoutProof = text[..proofAt];
        string? channelBinding = null;
        string? nonce = null;
        foreach (string attribute in withoutProof.Split(','))
        {
            if (attribute.StartsWith("c=", StringComparison.Ordinal))
            {
                channelBinding = attribute[2..];
            }
            else if (attribute.StartsWith("r=", StringComparison.Ordinal))
            {
                nonce = attribute[2..];
            }
        }

        byte[] proof;
        try
        {
            proof = Convert.FromBase64String(text[(proofAt + 3)..]);
        }
        catch (FormatException)
        {
            return null;
        }

        if (channelBinding != Convert.ToBase64String(Encoding.UTF8.GetBytes(_gs2Header)) || nonce != _nonce || proof.Length != 32)
        {
            return null;
        }

        byte[] authMessage = Encoding.UTF8.GetBytes(_clientFirstBare + "," + _serverFirst + "," + withoutProof);
        byte[] clientSignature = HMACSHA256.HashData(verifier.StoredKey, authMessage);
        Span<byte> clientKey = stackalloc byte[32];
        for (int i = 0; i < 32; i++)
        {
            clientKey[i] = (byte)(proof[i] ^ clientSignature[i]);
        }

        Span<byte> storedKey = stackalloc byte[32];
        SHA256.HashData(clientKey, storedKey);
        if (!CryptographicOperations.FixedTimeEquals(storedKey, verifier.StoredKey))
        {
            return null;
        }

        return "v=" + Convert.ToBase64String(HMACSHA256.HashData(verifier.ServerKey, authMessage));
    }
}
