using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Kdb.Testing.Ids;
using Kdb.Testing.Tokens;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Kdb.Testing.Tests;

public sealed class TestTokenIssuerTests(TestTokenIssuer issuer) : IClassFixture<TestTokenIssuer>
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false });
    private readonly JsonWebTokenHandler _handler = new();

    [Fact]
    public async Task MintDataToken_ValidatedAgainstJwksFetchedOverHttp_CarriesTheDesignClaims()
    {
        var orgId = KdbIds.NewOrgId();
        var databaseId = KdbIds.NewDatabaseId();
        var userId = KdbIds.NewUserId();
        var before = DateTimeOffset.UtcNow;

        var token = issuer.MintDataToken(orgId, databaseId, "owner", TimeSpan.FromMinutes(15), userId);
        var result = await ValidateAsync(token, KdbAudiences.Data);

        Assert.True(result.IsValid, result.Exception?.ToString());
        var jwt = (JsonWebToken)result.SecurityToken;
        Assert.Equal("ES256", jwt.Alg);
        Assert.Equal(issuer.CurrentKey.KeyId, jwt.Kid);
        Assert.Equal(issuer.Issuer, jwt.Issuer);
        Assert.Equal([KdbAudiences.Data], jwt.Audiences);
        Assert.Equal(userId, jwt.Subject);
        Assert.Equal(orgId, jwt.GetClaim(KdbClaims.Org).Value);
        Assert.Equal(databaseId, jwt.GetClaim(KdbClaims.Database).Value);
        Assert.Equal("owner", jwt.GetClaim(KdbClaims.Role).Value);
        Assert.InRange(jwt.ValidTo, before.UtcDateTime.AddMinutes(15).AddSeconds(-1), DateTime.UtcNow.AddMinutes(15).AddSeconds(1));
    }

    [Fact]
    public async Task MintServiceToken_Scopes_AreOneSpaceSeparatedClaimOnTheInternalAudience()
    {
        var token = issuer.MintServiceToken("kdb-proxy", [KdbScopes.Proxy, KdbScopes.Operator]);
        var result = await ValidateAsync(token, KdbAudiences.Internal);

        Assert.True(result.IsValid, result.Exception?.ToString());
        var jwt = (JsonWebToken)result.SecurityToken;
        Assert.Equal("kdb-proxy", jwt.Subject);
        Assert.Equal("kdb-proxy", jwt.GetClaim(KdbClaims.ClientId).Value);
        Assert.Equal("kdb.proxy kdb.operator", jwt.GetClaim(KdbClaims.Scope).Value);
    }

    [Fact]
    public async Task MintUserToken_ExtraClaims_ValidOnTheApiAudience()
    {
        var userId = KdbIds.NewUserId();
        var token = issuer.MintUserToken(userId, extraClaims: new Dictionary<string, object> { ["email"] = "dev@example.test" });
        var result = await ValidateAsync(token, KdbAudiences.Api);

        Assert.True(result.IsValid, result.Exception?.ToString());
        var jwt = (JsonWebToken)result.SecurityToken;
        Assert.Equal(userId, jwt.Subject);
        Assert.Equal("dev@example.test", jwt.GetClaim("email").Value);
    }

    [Fact]
    public async Task Validate_WrongAudience_IsRejected()
    {
        var token = issuer.MintDataToken(KdbIds.NewOrgId(), KdbIds.NewDatabaseId(), "owner", TimeSpan.FromMinutes(5));

        var result = await ValidateAsync(token, KdbAudiences.Internal);

        Assert.False(result.IsValid);
        Assert.IsType<SecurityTokenInvalidAudienceException>(result.Exception);
    }

    [Fact]
    public async Task Validate_ExpiredToken_IsRejected()
    {
        var token = issuer.Mint(new TestTokenRequest(KdbAudiences.Data, KdbIds.NewUserId())
        {
            IssuedAt = DateTimeOffset.UtcNow.AddHours(-2),
            Lifetime = TimeSpan.FromHours(1),
        });

        var result = await ValidateAsync(token, KdbAudiences.Data);

        Assert.False(result.IsValid);
        Assert.IsType<SecurityTokenExpiredException>(result.Exception);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Validate_SignedByAnotherKey_IsRejected(bool sameKeyId)
    {
        using var foreign = TestSigningKey.Create(sameKeyId ? issuer.CurrentKey.KeyId : null);
        var token = issuer.Mint(new TestTokenRequest(KdbAudiences.Data, KdbIds.NewUserId()) { SigningKey = foreign });

        var result = await ValidateAsync(token, KdbAudiences.Data);

        Assert.False(result.IsValid);
        Assert.IsAssignableFrom<SecurityTokenInvalidSignatureException>(result.Exception);
    }

    [Fact]
    public async Task Validate_PayloadAlteredAfterSigning_IsRejected()
    {
        var token = issuer.MintDataToken(KdbIds.NewOrgId(), KdbIds.NewDatabaseId(), "readonly", TimeSpan.FromMinutes(5));
        var parts = token.Split('.');
        var payload = Encoding.UTF8.GetString(Base64UrlEncoder.DecodeBytes(parts[1])).Replace("\"readonly\"", "\"owner\"", StringComparison.Ordinal);
        var forged = $"{parts[0]}.{Base64UrlEncoder.Encode(Encoding.UTF8.GetBytes(payload))}.{parts[2]}";

        var result = await ValidateAsync(forged, KdbAudiences.Data);

        Assert.False(result.IsValid);
        Assert.IsAssignableFrom<SecurityTokenInvalidSignatureException>(result.Exception);
    }

    [Fact]
    public async Task Validate_WrongIssuer_IsRejected()
    {
        var token = issuer.Mint(new TestTokenRequest(KdbAudiences.Data, KdbIds.NewUserId()) { Issuer = "https://someone-else.test" });

        var result = await ValidateAsync(token, KdbAudiences.Data);

        Assert.False(result.IsValid);
        Assert.IsType<SecurityTokenInvalidIssuerException>(result.Exception);
    }

    [Fact]
    public async Task Validate_TruncatedOrRandomTokens_AreRejected()
    {
        var token = issuer.MintServiceToken("kdb-node", [KdbScopes.Node]);
        var random = new Random(7);
        var candidates = new List<string> { string.Empty, "not-a-jwt", token[..(token.Length / 2)], token[..token.LastIndexOf('.')] };
        for (var i = 0; i < 20; i++)
        {
            var bytes = new byte[random.Next(1, 300)];
            random.NextBytes(bytes);
            candidates.Add(Base64UrlEncoder.Encode(bytes) + "." + Base64UrlEncoder.Encode(bytes) + "." + Base64UrlEncoder.Encode(bytes));
        }

        foreach (var candidate in candidates)
        {
            var result = await ValidateAsync(candidate, KdbAudiences.Internal);
            Assert.False(result.IsValid, candidate);
            Assert.NotNull(result.Exception);
        }
    }

    [Fact]
    public async Task Discovery_Document_NamesTheIssuerAndTheJwksUri()
    {
        using var discovery = await Http.GetFromJsonAsync<JsonDocument>(issuer.DiscoveryUri);

        Assert.Equal(issuer.Issuer, discovery!.RootElement.GetProperty("issuer").GetString());
        Assert.Equal(issuer.JwksUri.ToString(), discovery.RootElement.GetProperty("jwks_uri").GetString());
        Assert.Equal("127.0.0.1", issuer.JwksUri.Host);
        Assert.Equal("/.well-known/jwks.json", issuer.JwksUri.AbsolutePath);
    }

    [Fact]
    public async Task Jwks_Document_HoldsOnlyPublicEs256Keys()
    {
        var before = issuer.JwksRequestCount;
        using var jwks = await Http.GetFromJsonAsync<JsonDocument>(issuer.JwksUri);

        foreach (var key in jwks!.RootElement.GetProperty("keys").EnumerateArray())
        {
            Assert.Equal("EC", key.GetProperty("kty").GetString());
            Assert.Equal("P-256", key.GetProperty("crv").GetString());
            Assert.Equal("ES256", key.GetProperty("alg").GetString());
            Assert.False(key.TryGetProperty("d", out _), "the JWKS leaks a private key");
        }

        Assert.True(issuer.JwksRequestCount > before);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-60)]
    [InlineData(24 * 3600 + 1)]
    public void MintDataToken_LifetimeOutsideDesignBounds_Throws(int seconds) =>
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            issuer.MintDataToken(KdbIds.NewOrgId(), KdbIds.NewDatabaseId(), "owner", TimeSpan.FromSeconds(seconds)));

    [Fact]
    public void MintServiceToken_ScopeWithSpace_Throws() =>
        Assert.Throws<ArgumentException>(() => issuer.MintServiceToken("kdb-proxy", ["kdb.proxy kdb.node"]));

    [Fact]
    public async Task StartAsync_ConfiguredIssuerAndClock_AppearInDiscoveryAndTokens()
    {
        var fixedNow = new DateTimeOffset(2030, 6, 1, 12, 0, 0, TimeSpan.Zero);
        await using var custom = await TestTokenIssuer.StartAsync(new TestTokenIssuerOptions
        {
            Issuer = "https://auth.kdb.localhost",
            KeyId = "custom-kid",
            Time = new FixedTimeProvider(fixedNow),
        });

        using var discovery = await Http.GetFromJsonAsync<JsonDocument>(custom.DiscoveryUri);
        var token = new JsonWebToken(custom.MintServiceToken("kdb-provisioning", [KdbScopes.Provisioning], TimeSpan.FromMinutes(10)));

        Assert.Equal("https://auth.kdb.localhost", discovery!.RootElement.GetProperty("issuer").GetString());
        Assert.Equal("https://auth.kdb.localhost", token.Issuer);
        Assert.Equal("custom-kid", token.Kid);
        Assert.Equal(fixedNow.UtcDateTime, token.IssuedAt);
        Assert.Equal(fixedNow.UtcDateTime.AddMinutes(10), token.ValidTo);
        Assert.NotEqual(issuer.JwksUri, custom.JwksUri);
    }

    [Fact]
    public async Task RotateKey_NewKid_IsServedAndBothKeysStillValidate()
    {
        await using var rotating = await TestTokenIssuer.StartAsync();
        var oldToken = rotating.MintUserToken(KdbIds.NewUserId());
        var oldKid = rotating.CurrentKey.KeyId;

        var newKey = rotating.RotateKey();
        var newToken = rotating.MintUserToken(KdbIds.NewUserId());

        Assert.NotEqual(oldKid, newKey.KeyId);
        Assert.Equal(newKey.KeyId, new JsonWebToken(newToken).Kid);
        var keys = await FetchKeysAsync(rotating);
        Assert.Equal(2, keys.Count);
        Assert.True((await Validate(rotating, keys, oldToken, KdbAudiences.Api)).IsValid);
        Assert.True((await Validate(rotating, keys, newToken, KdbAudiences.Api)).IsValid);

        rotating.RotateKey(keepPrevious: false);
        var remaining = await FetchKeysAsync(rotating);
        Assert.Single(remaining);
        Assert.False((await Validate(rotating, remaining, oldToken, KdbAudiences.Api)).IsValid);
    }

    private async Task<TokenValidationResult> ValidateAsync(string token, string audience) =>
        await Validate(issuer, await FetchKeysAsync(issuer), token, audience);

    private Task<TokenValidationResult> Validate(TestTokenIssuer source, IList<SecurityKey> keys, string token, string audience) =>
        _handler.ValidateTokenAsync(token, new TokenValidationParameters
        {
            ValidIssuer = source.Issuer,
            ValidAudience = audience,
            IssuerSigningKeys = keys,
            ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256],
            RequireSignedTokens = true,
            RequireExpirationTime = true,
        });

    private static async Task<IList<SecurityKey>> FetchKeysAsync(TestTokenIssuer source)
    {
        var json = await Http.GetStringAsync(source.JwksUri);
        return new JsonWebKeySet(json).GetSigningKeys();
    }

    private sealed class FixedTimeProvider(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}
