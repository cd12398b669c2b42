using Kdb.Node.Auth;
using Kdb.Testing.Ids;
using Kdb.Testing.Tokens;
using Microsoft.Extensions.Configuration;
using Microsoft.IdentityModel.Tokens;

namespace Kdb.Node.Tests.Auth;

/// <summary>The token validator against the ES256 test issuer's JWKS served over HTTP.</summary>
public sealed class TokenValidatorTests(TestTokenIssuer issuer) : IClassFixture<TestTokenIssuer>
{
    private const string Database = "db_app";
    private const string Role = "owner";

    private ITokenValidator Validator(TimeProvider? time = null, TestTokenIssuer? from = null) =>
        TokenValidators.Create(new TokenValidatorOptions { Issuer = (from ?? issuer).Issuer, AllowHttpIssuer = true }, time: time);

    private string DataToken(string database = Database, string role = Role, TimeSpan? ttl = null) =>
        issuer.MintDataToken(KdbIds.NewOrgId(), database, role, ttl ?? TimeSpan.FromMinutes(5));

    [Fact]
    public async Task DataToken_Good_IsValidWithItsSubject()
    {
        var user = KdbIds.NewUserId();
        var token = issuer.MintDataToken(KdbIds.NewOrgId(), Database, Role, TimeSpan.FromMinutes(5), user);

        var check = await Validator().ValidateDataTokenAsync(token, Database, Role, default);

        Assert.True(check.IsValid, check.Failure.ToString());
        Assert.Equal(user, check.Subject);
    }

    [Fact]
    public async Task DataToken_EveryWrongShape_IsRefusedWithItsReason()
    {
        var validator = Validator();
        using var foreign = TestSigningKey.Create(issuer.CurrentKey.KeyId);
        using var unknown = TestSigningKey.Create();
        var cases = new (string Token, TokenFailure Expected)[]
        {
            (DataToken(database: "db_other"), TokenFailure.WrongDatabase),
            (DataToken(role: "readonly"), TokenFailure.WrongRole),
            (Mint(KdbAudiences.Data, issuedAt: DateTimeOffset.UtcNow.AddHours(-2)), TokenFailure.Expired),
            (Mint(KdbAudiences.Data, key: foreign), TokenFailure.InvalidSignature),
            (Mint(KdbAudiences.Data, key: unknown), TokenFailure.UnknownKey),
            (Mint(KdbAudiences.Api), TokenFailure.WrongAudience),
            (issuer.MintServiceToken("kdb-proxy", [KdbScopes.Proxy]), TokenFailure.WrongAudience),
            (Mint(KdbAudiences.Data, tokenIssuer: "https://someone-else.test"), TokenFailure.WrongIssuer),
        };

        foreach (var (token, expected) in cases)
        {
            var check = await validator.ValidateDataTokenAsync(token, Database, Role, default);
            Assert.False(check.IsValid, expected.ToString());
            Assert.Equal(expected, check.Failure);
        }
    }

    [Fact]
    public async Task DataToken_PayloadAlteredAfterSigning_IsRefused()
    {
        var parts = DataToken(role: "readonly").Split('.');
        var payload = System.Text.Encoding.UTF8.GetString(Base64UrlEncoder.DecodeBytes(parts[1])).Replace("\"readonly\"", "\"owner\"", StringComparison.Ordinal);
        var forged = $"{parts[0]}.{Base64UrlEncoder.Encode(System.Text.Encoding.UTF8.GetBytes(payload))}.{parts[2]}";

        var check = await Validator().ValidateDataTokenAsync(forged, Database, Role, default);

        Assert.Equal(TokenFailure.InvalidSignature, check.Failure);
    }

    [Fact]
    public async Task InternalToken_RequiredScopeAmongSeveral_IsValid_OtherwiseMissingScope()
    {
        var validator = Validator();
        var token = issuer.MintServiceToken("kdb-proxy", [KdbScopes.Operator, KdbScopes.Proxy]);

        Assert.True((await validator.ValidateInternalTokenAsync(token, KdbScopes.Proxy, default)).IsValid);
        Assert.True((await validator.ValidateInternalTokenAsync(token, KdbScopes.Operator, default)).IsValid);
        Assert.Equal(TokenFailure.MissingScope, (await validator.ValidateInternalTokenAsync(token, KdbScopes.Provisioning, default)).Failure);
        Assert.Equal(TokenFailure.MissingScope, (await validator.ValidateInternalTokenAsync(token, "kdb.prox", default)).Failure);
        Assert.Equal(TokenFailure.WrongAudience, (await validator.ValidateInternalTokenAsync(DataToken(), KdbScopes.Proxy, default)).Failure);
    }

    [Fact]
    public async Task RandomAndTruncatedTokens_AreRefusedWithoutThrowing()
    {
        var validator = Validator();
        var token = DataToken();
        var random = new Random(11);
        var candidates = new List<string> { string.Empty, "not-a-jwt", "a.b.c", token[..(token.Length / 2)], token[..token.LastIndexOf('.')], token + "x", new string('a', 20_000) };
        for (var i = 0; i < 40; i++)
        {
            var bytes = new byte[random.Next(1, 400)];
            random.NextBytes(bytes);
            candidates.Add(random.Next(3) switch
            {
                0 => Base64UrlEncoder.Encode(bytes),
                1 => $"{Base64UrlEncoder.Encode(bytes)}.{Base64UrlEncoder.Encode(bytes)}.{Base64UrlEncoder.Encode(bytes)}",
                _ => $"{token.Split('.')[0]}.{Base64UrlEncoder.Encode(bytes)}.{token.Split('.')[2]}",
            });
        }

        foreach (var candidate in candidates)
        {
            Assert.False((await validator.ValidateDataTokenAsync(candidate, Database, Role, default)).IsValid, candidate);
            Assert.False((await validator.ValidateInternalTokenAsync(candidate, KdbScopes.Proxy, default)).IsValid, candidate);
        }
    }

    [Fact]
    public async Task Jwks_IsCached_RefetchedOnNewKid_AndAtMostOncePerMinuteForUnknownKids()
    {
        await using var own = await TestTokenIssuer.StartAsync();
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        var validator = Validator(clock, own);
        string Token() => own.MintDataToken(KdbIds.NewOrgId(), Database, Role, TimeSpan.FromMinutes(30));

        for (var i = 0; i < 20; i++)
        {
            Assert.True((await validator.ValidateDataTokenAsync(Token(), Database, Role, default)).IsValid);
        }

        Assert.Equal(1, own.JwksRequestCount);

        // A rotated key is picked up on its first token, once the minute since the last fetch has passed.
        clock.Advance(TimeSpan.FromMinutes(1));
        own.RotateKey();
        Assert.True((await validator.ValidateDataTokenAsync(Token(), Database, Role, default)).IsValid);
        Assert.Equal(2, own.JwksRequestCount);

        // A flood of unknown kids costs at most one fetch per minute.
        using var stranger = TestSigningKey.Create();
        for (var i = 0; i < 20; i++)
        {
            var forged = own.Mint(new TestTokenRequest(KdbAudiences.Data, "u") { SigningKey = stranger });
            Assert.Equal(TokenFailure.UnknownKey, (await validator.ValidateDataTokenAsync(forged, Database, Role, default)).Failure);
        }

        Assert.Equal(2, own.JwksRequestCount);
        clock.Advance(TimeSpan.FromSeconds(61));
        var later = own.Mint(new TestTokenRequest(KdbAudiences.Data, "u") { SigningKey = stranger });
        Assert.Equal(TokenFailure.UnknownKey, (await validator.ValidateDataTokenAsync(later, Database, Role, default)).Failure);
        Assert.Equal(3, own.JwksRequestCount);
    }

    [Fact]
    public async Task Jwks_FailedFetch_IsRetriedWithinSeconds_NotAfterAWholeMinute()
    {
        await using var own = await TestTokenIssuer.StartAsync();
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        // The issuer is real; the first two requests never reach it, as when it is still starting or too slow to answer.
        using var http = new HttpClient(new FailingFirst(2, new SocketsHttpHandler { UseProxy = false }));
        var validator = TokenValidators.Create(new TokenValidatorOptions { Issuer = own.Issuer, AllowHttpIssuer = true }, http, clock);
        string Token() => own.MintDataToken(KdbIds.NewOrgId(), Database, Role, TimeSpan.FromMinutes(30));

        Assert.Equal(TokenFailure.UnknownKey, (await validator.ValidateDataTokenAsync(Token(), Database, Role, default)).Failure);
        clock.Advance(TimeSpan.FromMilliseconds(500));
        Assert.Equal(TokenFailure.UnknownKey, (await validator.ValidateDataTokenAsync(Token(), Database, Role, default)).Failure);
        // One second after the first failure: tried again (and failed again); the next try waits twice as long.
        clock.Advance(TimeSpan.FromMilliseconds(500));
        Assert.Equal(TokenFailure.UnknownKey, (await validator.ValidateDataTokenAsync(Token(), Database, Role, default)).Failure);
        clock.Advance(TimeSpan.FromSeconds(1.5));
        Assert.Equal(TokenFailure.UnknownKey, (await validator.ValidateDataTokenAsync(Token(), Database, Role, default)).Failure);
        Assert.Equal(0, own.JwksRequestCount);
        clock.Advance(TimeSpan.FromSeconds(0.5));
        Assert.True((await validator.ValidateDataTokenAsync(Token(), Database, Role, default)).IsValid);
        Assert.Equal(1, own.JwksRequestCount);

        // Once fetched, unknown kids are back to at most one fetch per minute.
        using var stranger = TestSigningKey.Create();
        clock.Advance(TimeSpan.FromSeconds(30));
        var forged = own.Mint(new TestTokenRequest(KdbAudiences.Data, "u") { SigningKey = stranger });
        Assert.Equal(TokenFailure.UnknownKey, (await validator.ValidateDataTokenAsync(forged, Database, Role, default)).Failure);
        Assert.Equal(1, own.JwksRequestCount);
    }

    /// <summary>Fails the first <paramref name="failures"/> requests as a refused connection would, then passes them on.</summary>
    private sealed class FailingFirst(int failures, HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        private int _left = failures;

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Interlocked.Decrement(ref _left) >= 0
                ? Task.FromException<HttpResponseMessage>(new HttpRequestException("connection refused (injected)"))
                : base.SendAsync(request, cancellationToken);
    }

    [Fact]
    public async Task Expiry_FollowsTheInjectedClock()
    {
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        var validator = Validator(clock);
        var token = DataToken(ttl: TimeSpan.FromMinutes(5));

        Assert.True((await validator.ValidateDataTokenAsync(token, Database, Role, default)).IsValid);
        clock.Advance(TimeSpan.FromMinutes(6));
        Assert.Equal(TokenFailure.Expired, (await validator.ValidateDataTokenAsync(token, Database, Role, default)).Failure);
    }

    [Fact]
    public async Task InternalToken_RememberedAfterItsCheck_StillExpiresAndStillNeedsItsScope()
    {
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        var validator = Validator(clock);
        var token = issuer.MintServiceToken("kdb-proxy", [KdbScopes.Proxy], TimeSpan.FromMinutes(5));

        Assert.True((await validator.ValidateInternalTokenAsync(token, KdbScopes.Proxy, default)).IsValid);
        Assert.True((await validator.ValidateInternalTokenAsync(token, KdbScopes.Proxy, default)).IsValid);
        Assert.Equal(TokenFailure.MissingScope, (await validator.ValidateInternalTokenAsync(token, KdbScopes.Operator, default)).Failure);

        // A forged copy differs in its text, so the remembered check never covers it.
        var parts = token.Split('.');
        var forged = $"{parts[0]}.{parts[1]}.{parts[2][..^4]}AAAA";
        Assert.False((await validator.ValidateInternalTokenAsync(forged, KdbScopes.Proxy, default)).IsValid);

        clock.Advance(TimeSpan.FromMinutes(6));
        Assert.Equal(TokenFailure.Expired, (await validator.ValidateInternalTokenAsync(token, KdbScopes.Proxy, default)).Failure);
    }

    [Fact]
    public async Task IssuerDown_EveryTokenRefused_NothingThrown()
    {
        var port = Kdb.Testing.Ports.FreePorts.Allocate();
        var validator = TokenValidators.Create(new TokenValidatorOptions { Issuer = $"http://127.0.0.1:{port}", AllowHttpIssuer = true });

        var check = await validator.ValidateDataTokenAsync(DataToken(), Database, Role, default);

        Assert.Equal(TokenFailure.UnknownKey, check.Failure);
    }

    [Fact]
    public void Options_HttpIssuerWithoutDevelopmentFlag_IsRejected_AndNoIssuerMeansNoValidator()
    {
        var http = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Tokens:Issuer"] = "http://cp.example.test" }).Build();
        var error = Assert.Throws<InvalidOperationException>(() => TokenValidatorOptions.Read(http.GetSection("Tokens")));
        Assert.Contains("https", error.Message, StringComparison.Ordinal);

        var dev = TokenValidatorOptions.Read(http.GetSection("Tokens"), development: true)!;
        Assert.Equal(new Uri("http://cp.example.test/.well-known/jwks.json"), dev.EffectiveJwksUri);

        var bad = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Tokens:Issuer"] = "not a url" }).Build();
        Assert.Contains("Tokens:Issuer", Assert.Throws<InvalidOperationException>(() => TokenValidatorOptions.Read(bad.GetSection("Tokens"))).Message, StringComparison.Ordinal);

        Assert.Null(TokenValidatorOptions.Read(new ConfigurationBuilder().Build().GetSection("Tokens")));
    }

    private string Mint(string audience, DateTimeOffset? issuedAt = null, TestSigningKey? key = null, string? tokenIssuer = null) =>
        issuer.Mint(new TestTokenRequest(audience, KdbIds.NewUserId())
        {
            IssuedAt = issuedAt,
            Lifetime = TimeSpan.FromHours(1),
            SigningKey = key,
            Issuer = tokenIssuer,
            Claims = new Dictionary<string, object> { ["db"] = Database, ["role"] = Role, ["org"] = KdbIds.NewOrgId() },
        });

    private sealed class ManualClock(DateTimeOffset start) : TimeProvider
    {
        private DateTimeOffset _now = start;

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }
}
