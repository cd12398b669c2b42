using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Kdb.Testing.Ports;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Kdb.Testing.Tokens;

/// <summary>
/// A stand-in for the control plane's token issuer, so data-plane tests need no control plane: an ES256 key with a
/// <c>kid</c>, a JWKS at <c>http://127.0.0.1:&lt;port&gt;/.well-known/jwks.json</c> and an OIDC discovery document at
/// <c>/.well-known/openid-configuration</c> served by a small Kestrel app, and helpers that mint tokens with exactly
/// the claims of DESIGN.md. Usable as an xunit class or collection fixture, or through <see cref="StartAsync"/>.
/// </summary>
public sealed class TestTokenIssuer : IAsyncLifetime, IAsyncDisposable
{
    /// <summary>Longest data-token lifetime DESIGN.md allows.</summary>
    public static readonly TimeSpan MaxDataTokenLifetime = TimeSpan.FromHours(24);

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    private readonly TestTokenIssuerOptions _options;
    private readonly TimeProvider _time;
    private readonly JsonWebTokenHandler _handler = new() { SetDefaultTimesOnTokenCreation = false };
    private readonly Lock _gate = new();
    private readonly List<TestSigningKey> _keys = [];
    private WebApplication? _app;
    private Uri? _baseAddress;
    private int _jwksRequests;
    private int _disposed;

    /// <summary>An issuer with default options (its issuer string is its base URL); xunit calls this for fixtures.</summary>
    public TestTokenIssuer()
        : this(new TestTokenIssuerOptions())
    {
    }

    private TestTokenIssuer(TestTokenIssuerOptions options)
    {
        _options = options;
        _time = options.Time ?? TimeProvider.System;
        _keys.Add(TestSigningKey.Create(options.KeyId));
    }

    /// <summary>http://127.0.0.1:&lt;port&gt;/ of the JWKS server.</summary>
    public Uri BaseAddress => _baseAddress ?? throw new InvalidOperationException("The token issuer has not been started.");

    /// <summary>Where the JWKS is served.</summary>
    public Uri JwksUri => new(BaseAddress, ".well-known/jwks.json");

    /// <summary>Where the OIDC discovery document is served.</summary>
    public Uri DiscoveryUri => new(BaseAddress, ".well-known/openid-configuration");

    /// <summary>The <c>iss</c> of minted tokens: the configured issuer, else the base URL without trailing slash.</summary>
    public string Issuer => _options.Issuer ?? BaseAddress.GetLeftPart(UriPartial.Authority);

    /// <summary>The key new tokens are signed with (the newest one).</summary>
    public TestSigningKey CurrentKey
    {
        get
        {
            lock (_gate)
            {
                return _keys[^1];
            }
        }
    }

    /// <summary>How many times the JWKS has been fetched, so tests can check that validators cache it.</summary>
    public int JwksRequestCount => Volatile.Read(ref _jwksRequests);

    /// <summary>Starts an issuer with <paramref name="options"/>.</summary>
    public static async Task<TestTokenIssuer> StartAsync(TestTokenIssuerOptions? options = null, CancellationToken cancellationToken = default)
    {
        var issuer = new TestTokenIssuer(options ?? new TestTokenIssuerOptions());
        try
        {
            await issuer.StartServerAsync(cancellationToken);
            return issuer;
        }
        catch
        {
            await issuer.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Adds a new signing key (with a new <c>kid</c>) that signs from now on, to test validators that refetch the JWKS
    /// on an unknown <c>kid</c>. With <paramref name="keepPrevious"/> the JWKS keeps serving the older keys.
    /// </summary>
    public TestSigningKey RotateKey(bool keepPrevious = true)
    {
        var key = TestSigningKey.Create();
        lock (_gate)
        {
            if (!keepPrevious)
            {
                foreach (var old in _keys)
                {
                    old.Dispose();
                }

                _keys.Clear();
            }

            _keys.Add(key);
        }

        return key;
    }

    /// <summary>
    /// A data token (<c>aud: kdb-data</c>) with <c>sub</c>, <c>org</c>, <c>db</c>, <c>role</c> and <c>exp</c> = now + <paramref name="ttl"/>.
    /// </summary>
    /// <param name="orgId">The org owning the database.</param>
    /// <param name="databaseId">The database the token opens.</param>
    /// <param name="role">The database role (the pgwire startup user must match it).</param>
    /// <param name="ttl">Lifetime, more than zero and at most 24 h.</param>
    /// <param name="subject">The user or API key that asked for it; a fresh user id when null.</param>
    public string MintDataToken(string orgId, string databaseId, string role, TimeSpan ttl, string? subject = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(orgId);
        ArgumentException.ThrowIfNullOrEmpty(databaseId);
        ArgumentException.ThrowIfNullOrEmpty(role);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ttl, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(ttl, MaxDataTokenLifetime);
        return Mint(new TestTokenRequest(KdbAudiences.Data, subject ?? Ids.KdbIds.NewUserId())
        {
            Lifetime = ttl,
            Claims = new Dictionary<string, object>
            {
                [KdbClaims.Org] = orgId,
                [KdbClaims.Database] = databaseId,
                [KdbClaims.Role] = role,
            },
        });
    }

    /// <summary>
    /// A client-credentials token (<c>aud: kdb-internal</c>) for a service client: <c>sub</c> and <c>client_id</c> are
    /// <paramref name="clientId"/>, <c>scope</c> holds <paramref name="scopes"/> space-separated.
    /// </summary>
    public string MintServiceToken(string clientId, IEnumerable<string> scopes, TimeSpan? ttl = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(clientId);
        ArgumentNullException.ThrowIfNull(scopes);
        var scopeList = scopes.ToArray();
        foreach (var scope in scopeList)
        {
            if (string.IsNullOrEmpty(scope) || scope.Contains(' ', StringComparison.Ordinal))
            {
                throw new ArgumentException($"Scope '{scope}' is empty or contains a space.", nameof(scopes));
            }
        }

        return Mint(new TestTokenRequest(KdbAudiences.Internal, clientId)
        {
            Lifetime = ttl ?? TimeSpan.FromHours(1),
            Claims = new Dictionary<string, object>
            {
                [KdbClaims.ClientId] = clientId,
                [KdbClaims.Scope] = string.Join(' ', scopeList),
            },
        });
    }

    /// <summary>A user token for the management API (<c>aud: kdb-api</c>, <c>sub</c> = <paramref name="userId"/>) with optional extra claims.</summary>
    public string MintUserToken(string userId, TimeSpan? ttl = null, IReadOnlyDictionary<string, object>? extraClaims = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(userId);
        return Mint(new TestTokenRequest(KdbAudiences.Api, userId)
        {
            Lifetime = ttl ?? TimeSpan.FromHours(1),
            Claims = extraClaims ?? new Dictionary<string, object>(),
        });
    }

    /// <summary>Mints any token shape (see <see cref="TestTokenRequest"/>), signed ES256 with a <c>kid</c> header.</summary>
    public string Mint(TestTokenRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(request.Lifetime, TimeSpan.Zero, nameof(request));
        var issuedAt = (request.IssuedAt ?? _time.GetUtcNow()).UtcDateTime;
        var claims = new Dictionary<string, object>(request.Claims, StringComparer.Ordinal)
        {
            [KdbClaims.Subject] = request.Subject,
            ["jti"] = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)),
        };

        return _handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = request.Issuer ?? Issuer,
            Audience = request.Audience,
            Claims = claims,
            IssuedAt = issuedAt,
            NotBefore = issuedAt,
            Expires = issuedAt + request.Lifetime,
            SigningCredentials = (request.SigningKey ?? CurrentKey).Credentials,
        });
    }

    /// <summary>The JWKS document currently served (public keys only).</summary>
    public string JwksJson()
    {
        List<Dictionary<string, string>> keys;
        lock (_gate)
        {
            keys = [.. _keys.Select(k => k.PublicJwk())];
        }

        return JsonSerializer.Serialize(new Dictionary<string, object> { ["keys"] = keys }, Json);
    }

    /// <summary>Starts the JWKS server.</summary>
    public Task InitializeAsync() => StartServerAsync(CancellationToken.None);

    /// <summary>Stops the server and releases the keys.</summary>
    public async ValueTask DisposeAsync()
    {
        // xunit may call both this and IAsyncLifetime.DisposeAsync on a fixture.
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
            _app = null;
        }

        lock (_gate)
        {
            foreach (var key in _keys)
            {
                key.Dispose();
            }
        }
    }

    Task IAsyncLifetime.DisposeAsync() => DisposeAsync().AsTask();

    private string DiscoveryJson() => JsonSerializer.Serialize(
        new Dictionary<string, object>
        {
            ["issuer"] = Issuer,
            ["jwks_uri"] = JwksUri.ToString(),
            ["id_token_signing_alg_values_supported"] = new[] { "ES256" },
            ["response_types_supported"] = new[] { "token" },
            ["subject_types_supported"] = new[] { "public" },
            ["grant_types_supported"] = new[] { "password", "refresh_token", "client_credentials" },
        },
        Json);

    private async Task StartServerAsync(CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = [],
            ContentRootPath = AppContext.BaseDirectory,
            EnvironmentName = "Production",
        });
        builder.Logging.ClearProviders();

        // Port 0: the kernel picks a port nobody holds, with no window between choosing and binding it.
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        app.MapGet("/.well-known/jwks.json", () =>
        {
            Interlocked.Increment(ref _jwksRequests);
            return Results.Text(JwksJson(), "application/json");
        });
        app.MapGet("/.well-known/openid-configuration", () => Results.Text(DiscoveryJson(), "application/json"));
        await app.StartAsync(cancellationToken);
        _app = app;

        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var bound = new Uri(address);
        FreePorts.Reserve(bound.Port);
        _baseAddress = new Uri($"http://127.0.0.1:{bound.Port}/");
    }
}
