using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Kdb.Node.Tests.Standalone;

/// <summary>
/// A throwaway CA and a server certificate it signed (SANs localhost and 127.0.0.1) in a temporary directory: the
/// node loads <see cref="ServerPfxPath"/>; clients verify with <see cref="CaPemPath"/>.
/// </summary>
internal sealed class TestCa : IDisposable
{
    public const string PfxPassword = "test-pfx";

    private TestCa(string directory) => Directory = directory;

    public string Directory { get; }

    public string ServerPfxPath => Path.Combine(Directory, "server.pfx");

    public string CaPemPath => Path.Combine(Directory, "ca.pem");

    /// <summary>A second, unrelated CA: verify-ca against it must fail.</summary>
    public string OtherCaPemPath => Path.Combine(Directory, "other-ca.pem");

    public static TestCa Create()
    {
        var ca = new TestCa(System.IO.Directory.CreateTempSubdirectory("kdb-test-ca-").FullName);
        var now = DateTimeOffset.UtcNow;
        using var caCert = CreateCa("CN=kdb test CA", now);
        using var other = CreateCa("CN=kdb other CA", now);
        using var serverKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", serverKey, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(System.Net.IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(caCert, true, false));
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        using var server = request.Create(caCert, now.AddDays(-1), now.AddDays(30), serial);
        using var withKey = server.CopyWithPrivateKey(serverKey);
        File.WriteAllBytes(ca.ServerPfxPath, withKey.Export(X509ContentType.Pfx, PfxPassword));
        File.WriteAllText(ca.CaPemPath, caCert.ExportCertificatePem());
        File.WriteAllText(ca.OtherCaPemPath, other.ExportCertificatePem());
        return ca;
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static X509Certificate2 CreateCa(string subject, DateTimeOffset now)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        return request.CreateSelfSigned(now.AddDays(-1), now.AddYears(1));
    }
}
