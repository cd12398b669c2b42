using System.Security.Cryptography.X509Certificates;

namespace Kdb.Proxy.Tls;

/// <summary>
/// The server certificate for SSLRequest upgrades, read from PEM files (<c>Tls:Certificate</c>, <c>Tls:Key</c>) and
/// reloaded when either file changes, so a renewed certificate is served without a restart.
/// </summary>
internal sealed partial class CertificateSource(string? certificatePath, string? keyPath, TimeProvider time, ILogger<CertificateSource> logger)
{
    // Checking file times on every handshake would cost two stat calls per connection; once a few seconds is enough.
    private static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(5);

    private readonly Lock _lock = new();
    private X509Certificate2? _current;
    private DateTime _loadedStamp;
    private long _checkedAt;

    /// <summary>True when TLS is configured.</summary>
    public bool Enabled => !string.IsNullOrEmpty(certificatePath) && !string.IsNullOrEmpty(keyPath);

    /// <summary>The current certificate, or null when TLS is not configured or the files cannot be read.</summary>
    public X509Certificate2? Current
    {
        get
        {
            if (!Enabled)
            {
                return null;
            }

            long now = time.GetTimestamp();
            if (_current is not null && time.GetElapsedTime(Volatile.Read(ref _checkedAt), now) < CheckInterval)
            {
                return _current;
            }

            lock (_lock)
            {
                Volatile.Write(ref _checkedAt, now);
                try
                {
                    DateTime stamp = Max(File.GetLastWriteTimeUtc(certificatePath!), File.GetLastWriteTimeUtc(keyPath!));
                    if (_current is null || stamp != _loadedStamp)
                    {
                        // Loaded through PKCS#12 so SslStream on Linux can use the ephemeral key.
                        using var pem = X509Certificate2.CreateFromPemFile(certificatePath!, keyPath);
                        _current = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
                        _loadedStamp = stamp;
                        LogLoaded(logger, certificatePath!, _current.NotAfter);
                    }
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
                {
                    LogLoadFailed(logger, certificatePath!, e.Message);
                }

                return _current;
            }
        }
    }

    private static DateTime Max(DateTime a, DateTime b) => a > b ? a : b;

    [LoggerMessage(Level = LogLevel.Information, Message = "Loaded the TLS certificate {Path} (valid until {NotAfter})")]
    private static partial void LogLoaded(ILogger logger, string path, DateTime notAfter);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not load the TLS certificate {Path}: {Reason}")]
    private static partial void LogLoadFailed(ILogger logger, string path, string reason);
}
