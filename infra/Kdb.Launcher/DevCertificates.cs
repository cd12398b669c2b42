using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Kdb.Launcher;

/// <summary>
/// The local cloud's development CA and the server certificate every TLS listener presents
/// (SANs <c>localhost</c>, <c>127.0.0.1</c>, <c>*.kdb.localhost</c>: DESIGN, TLS in the local cloud).
/// Made once; connection URIs point <c>sslrootcert</c> at <see cref="CaCertificatePath"/>.
/// </summary>
internal sealed class DevCertificates(string directory)
{
    public string CaCertificatePath => Path.Combine(directory, "ca.crt");

    public string CaKeyPath => Path.Combine(directory, "ca.key");

    public string ServerCertificatePath => Path.Combine(directory, "server.crt");

    public string ServerKeyPath => Path.Combine(directory, "server.key");

    public bool Exist => File.Exists(CaCertificatePath) && File.Exists(ServerCertificatePath) && File.Exists(ServerKeyPath);

    public void EnsureCreated(TimeProvider time)
    {
        if (Exist)
        {
            return;
        }

        Directory.CreateDirectory(directory);
        var now = time.GetUtcNow();
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=Kdb.Cloud local development CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        using var ca = caRequest.CreateSelfSigned(now.AddDays(-1), now.AddYears(10));

        using var serverKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var serverRequest = new CertificateRequest("CN=localhost", serverKey, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddDnsName("*.kdb.localhost");
        san.AddIpAddress(System.Net.IPAddress.Loopback);
        serverRequest.CertificateExtensions.Add(san.Build());
        serverRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        serverRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, true));
        serverRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        serverRequest.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        using var server = serverRequest.Create(ca, now.AddDays(-1), now.AddYears(2), serial);

        FileUtil.WriteAtomic(CaKeyPath, caKey.ExportPkcs8PrivateKeyPem(), privateFile: true);
        FileUtil.WriteAtomic(ServerKeyPath, serverKey.ExportPkcs8PrivateKeyPem(), privateFile: true);
        FileUtil.WriteAtomic(ServerCertificatePath, server.ExportCertificatePem());
        FileUtil.WriteAtomic(CaCertificatePath, ca.ExportCertificatePem());
    }
}
