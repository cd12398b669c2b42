using System.Security.Cryptography;
using System.Text.Json;
using Kdb.ControlPlane.Data;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace Kdb.ControlPlane.Identity;

/// <summary>
/// ES256 signing keys: created encrypted at rest (Data Protection), rotated so that a new key is published
/// <see cref="TokenOptions.SigningKeyPublishLead"/> before it signs, and a retired key stays published until
/// every token it signed has expired. Several instances agree through a PostgreSQL advisory lock.
/// </summary>
public sealed class SigningKeyService(
    IServiceScopeFactory scopes,
    IDataProtectionProvider protection,
    IOptions<TokenOptions> options,
    TimeProvider time) : IStartupTask
{
    private const long AdvisoryLockKey = 0x4B44425F4B455953; // "KDB_KEYS"
    private readonly IDataProtector _protector = protection.CreateProtector("Kdb.ControlPlane.SigningKeys.v1");
    private volatile KeySet _keys = KeySet.Empty;

    /// <summary>The key that signs now.</summary>
    public SigningCredentials Current => _keys.Signing ?? throw new InvalidOperationException("no signing key is active yet");

    /// <summary>Public keys published in the JWKS now.</summary>
    public IReadOnlyList<JsonWebKey> Published => _keys.Published;

    /// <summary>The JWKS document (<c>/.well-known/jwks.json</c>).</summary>
    public string JwksJson => _keys.Jwks;

    /// <summary>Keys a validator accepts, by kid.</summary>
    public IEnumerable<SecurityKey> ResolveValidationKeys(string? kid) =>
        _keys.Published.Where(k => kid is null || k.Kid == kid);

    public Task RunAsync(CancellationToken cancellationToken) => EnsureAsync(cancellationToken);

    /// <summary>Creates whatever keys the schedule calls for, then reloads the published set.</summary>
    public async Task EnsureAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
        var records = await db.SigningKeys.AsNoTracking().ToListAsync(cancellationToken);

        // Usually (every restart, most rotation checks) no key is due: one read, no lock, no transaction.
        if (DueActivation(records, time.GetUtcNow(), o) is not null)
        {
            await using (var tx = await db.Database.BeginTransactionAsync(cancellationToken))
            {
                await db.Database.ExecuteSqlRawAsync($"SELECT pg_advisory_xact_lock({AdvisoryLockKey})", cancellationToken);
                var now = time.GetUtcNow();
                // Another instance may have created it while this one waited for the lock.
                var keys = await db.SigningKeys.AsNoTracking().ToListAsync(cancellationToken);
                if (DueActivation(keys, now, o) is { } activates)
                {
                    db.SigningKeys.Add(CreateKey(now, activates, o.SigningKeyLifetime));
                }

                await db.SaveChangesAsync(cancellationToken);
                await tx.CommitAsync(cancellationToken);
            }

            records = await db.SigningKeys.AsNoTracking().ToListAsync(cancellationToken);
        }

        Load(records);
    }

    /// <summary>When a new key must start signing, or null when the schedule needs none now.</summary>
    private static DateTimeOffset? DueActivation(List<SigningKeyRecord> keys, DateTimeOffset now, TokenOptions o)
    {
        var active = keys.Where(k => k.ActivatesAt <= now && k.RetiredAt > now).MaxBy(k => k.ActivatesAt);
        if (active is null)
        {
            // Bootstrap (or every key lapsed while the service was down): sign at once.
            return now;
        }

        // The successor is published now and signs only once caches have had time to fetch it.
        return active.RetiredAt - now <= o.SigningKeyPublishLead * 2 && !keys.Any(k => k.ActivatesAt > active.ActivatesAt)
            ? now + o.SigningKeyPublishLead
            : null;
    }

    private void Load(List<SigningKeyRecord> records)
    {
        var o = options.Value;
        var now = time.GetUtcNow();
        var publishedRecords = records
            .Where(k => k.PublishedAt <= now && k.RetiredAt + o.LongestTokenLifetime + o.ClockSkew > now)
            .OrderBy(k => k.ActivatesAt)
            .ToList();
        var published = publishedRecords.Select(k => new JsonWebKey(k.PublicJwk)).ToList();
        var jwks = "{\"keys\":[" + string.Join(',', publishedRecords.Select(k => k.PublicJwk)) + "]}";
        var signingRecord = records.Where(k => k.ActivatesAt <= now && k.RetiredAt > now).MaxBy(k => k.ActivatesAt);
        SigningCredentials? signing = null;
        if (signingRecord is not null)
        {
            var ecdsa = ECDsa.Create();
            ecdsa.ImportPkcs8PrivateKey(Convert.FromBase64String(_protector.Unprotect(signingRecord.ProtectedPrivateKey)), out _);
            signing = new SigningCredentials(new ECDsaSecurityKey(ecdsa) { KeyId = signingRecord.Kid }, SecurityAlgorithms.EcdsaSha256);
        }

        _keys = new KeySet(signing, published, jwks);
    }

    private SigningKeyRecord CreateKey(DateTimeOffset publishedAt, DateTimeOffset activatesAt, TimeSpan lifetime)
    {
        using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var jwk = JsonWebKeyConverter.ConvertFromECDsaSecurityKey(new ECDsaSecurityKey(ecdsa));
        // RFC 7638 thumbprint: a kid that names the key itself, identical on every instance.
        var kid = Base64UrlEncoder.Encode(jwk.ComputeJwkThumbprint());
        var publicJwk = new JsonWebKey { Kty = jwk.Kty, Crv = jwk.Crv, X = jwk.X, Y = jwk.Y, Kid = kid, Alg = SecurityAlgorithms.EcdsaSha256, Use = "sig" };
        return new SigningKeyRecord
        {
            Kid = kid,
            Algorithm = SecurityAlgorithms.EcdsaSha256,
            ProtectedPrivateKey = _protector.Protect(Convert.ToBase64String(ecdsa.ExportPkcs8PrivateKey())),
            PublicJwk = JsonSerializer.Serialize(new { kty = publicJwk.Kty, crv = publicJwk.Crv, x = publicJwk.X, y = publicJwk.Y, kid, alg = publicJwk.Alg, use = publicJwk.Use }),
            PublishedAt = publishedAt,
            ActivatesAt = activatesAt,
            RetiredAt = activatesAt + lifetime,
        };
    }

    private sealed record KeySet(SigningCredentials? Signing, IReadOnlyList<JsonWebKey> Published, string Jwks)
    {
        public static readonly KeySet Empty = new(null, [], "{\"keys\":[]}");
    }
}

/// <summary>Keeps signing keys rotating while the control plane runs.</summary>
internal sealed class SigningKeyRotation(SigningKeyService keys, StartupState state, TimeProvider time, ILogger<SigningKeyRotation> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            await Task.Delay(TimeSpan.FromMinutes(1), time, stoppingToken);
            if (!state.IsReady)
            {
                continue;
            }

            try
            {
                await keys.EnsureAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogWarning(ex, "Signing key rotation failed; retrying in a minute");
            }
        }
    }
}
