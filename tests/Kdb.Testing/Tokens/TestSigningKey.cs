using System.Security.Cryptography;
using Microsoft.IdentityModel.Tokens;

namespace Kdb.Testing.Tokens;

/// <summary>An ES256 (ECDSA P-256) signing key with a key id, as the control plane's token issuer uses.</summary>
public sealed class TestSigningKey : IDisposable
{
    private readonly ECDsa _ecdsa;

    private TestSigningKey(ECDsa ecdsa, string keyId)
    {
        _ecdsa = ecdsa;
        KeyId = keyId;
        SecurityKey = new ECDsaSecurityKey(ecdsa) { KeyId = keyId };
        Credentials = new SigningCredentials(SecurityKey, SecurityAlgorithms.EcdsaSha256);
    }

    /// <summary>The <c>kid</c> written into token headers and the JWKS.</summary>
    public string KeyId { get; }

    /// <summary>The key (with its private part) as an IdentityModel key.</summary>
    public ECDsaSecurityKey SecurityKey { get; }

    /// <summary>ES256 signing credentials.</summary>
    public SigningCredentials Credentials { get; }

    /// <summary>A fresh P-256 key; the key id defaults to a random one.</summary>
    public static TestSigningKey Create(string? keyId = null) =>
        new(ECDsa.Create(ECCurve.NamedCurves.nistP256), keyId ?? "test-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)));

    /// <summary>The public half as a JWK object (kty, crv, x, y, kid, use, alg) ready to serialize into a JWKS.</summary>
    public Dictionary<string, string> PublicJwk()
    {
        var parameters = _ecdsa.ExportParameters(includePrivateParameters: false);
        return new Dictionary<string, string>
        {
            ["kty"] = "EC",
            ["crv"] = "P-256",
            ["x"] = Base64UrlEncoder.Encode(parameters.Q.X),
            ["y"] = Base64UrlEncoder.Encode(parameters.Q.Y),
            ["kid"] = KeyId,
            ["use"] = "sig",
            ["alg"] = "ES256",
        };
    }

    /// <summary>Releases the key.</summary>
    public void Dispose() => _ecdsa.Dispose();
}
