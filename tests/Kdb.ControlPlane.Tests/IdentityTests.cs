using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Kdb.Testing;
using Kdb.Testing.Postgres;
using Kdb.Testing.Tokens;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Kdb.ControlPlane.Tests;

[Collection(TestCollections.Postgres)]
public sealed class IdentityTests(PostgresFixture postgres) : IAsyncLifetime
{
    private ControlPlaneApp _app = null!;

    private HttpClient Client => _app.Client;

    public async Task InitializeAsync() => _app = await ControlPlaneApp.StartAsync(postgres);

    public async Task DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task Signup_ThenPasswordGrant_ThenMe_ShowsThePersonalOrgAsOwner()
    {
        var signup = await SignupAsync("ada@example.com", "correct horse battery");
        var tokens = await PasswordGrantAsync("ada@example.com", "correct horse battery");

        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/me");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", tokens.GetProperty("access_token").GetString());
        using var me = await Client.SendAsync(request);
        var body = await me.Content.ReadFromJsonAsync<JsonElement>();

        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        Assert.Equal(signup.GetProperty("user").GetProperty("id").GetString(), body.GetProperty("id").GetString());
        Assert.Matches("^usr_[0-9a-hjkmnp-tv-z]{26}$", body.GetProperty("id").GetString());
        var org = Assert.Single(body.GetProperty("orgs").EnumerateArray());
        Assert.Matches("^org_[0-9a-hjkmnp-tv-z]{26}$", org.GetProperty("id").GetString());
        Assert.Equal("owner", org.GetProperty("role").GetString());
        Assert.Equal("Bearer", tokens.GetProperty("token_type").GetString());
        Assert.Equal(900, tokens.GetProperty("expires_in").GetInt32());
    }

    [Fact]
    public async Task Signup_DuplicateEmail_Is409Problem()
    {
        await SignupAsync("dup@example.com", "long enough password");

        using var again = await Client.PostAsJsonAsync("/v1/signup", new { email = "DUP@example.com", password = "another long password", name = "Dup" });

        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        Assert.Equal("application/problem+json", again.Content.Headers.ContentType?.MediaType);
        var problem = await again.Content.ReadFromJsonAsync<JsonElement>();
        Assert.EndsWith("/email-taken", problem.GetProperty("type").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("not-an-email", "long enough password", "Name", "email")]
    [InlineData("a@example.com", "short", "Name", "password")]
    [InlineData("b@example.com", "long enough password", "", "name")]
    public async Task Signup_BadInput_IsValidationProblemNamingTheField(string email, string password, string name, string field)
    {
        using var response = await Client.PostAsJsonAsync("/v1/signup", new { email, password, name });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), problem.ToString());
    }

    [Fact]
    public async Task Signup_MalformedJson_IsA400ProblemNotA500()
    {
        using var content = new StringContent("{\"email\": ", Encoding.UTF8, "application/json");
        using var response = await Client.PostAsync(new Uri("/v1/signup", UriKind.Relative), content);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task RefreshToken_RotatesAndReuseRevokesTheWholeFamily()
    {
        await SignupAsync("rot@example.com", "long enough password");
        var first = await PasswordGrantAsync("rot@example.com", "long enough password");
        var r1 = first.GetProperty("refresh_token").GetString()!;

        var second = await TokenAsync(new() { ["grant_type"] = "refresh_token", ["refresh_token"] = r1 });
        Assert.Equal(HttpStatusCode.OK, second.Status);
        var r2 = second.Body.GetProperty("refresh_token").GetString()!;
        Assert.NotEqual(r1, r2);

        var replay = await TokenAsync(new() { ["grant_type"] = "refresh_token", ["refresh_token"] = r1 });
        Assert.Equal(HttpStatusCode.BadRequest, replay.Status);
        Assert.Equal("invalid_grant", replay.Body.GetProperty("error").GetString());

        // The legitimate holder's newer token died with the family.
        var afterReuse = await TokenAsync(new() { ["grant_type"] = "refresh_token", ["refresh_token"] = r2 });
        Assert.Equal("invalid_grant", afterReuse.Body.GetProperty("error").GetString());
    }

    [Fact]
    public async Task RefreshToken_ConcurrentRotationsShareStatements_EachFamilyStaysItsOwn_AndAConcurrentReuseEndsOnlyThatLogin()
    {
        await SignupAsync("batch@example.com", "long enough password");
        var chains = new string[3];
        for (var i = 0; i < chains.Length; i++)
        {
            chains[i] = (await PasswordGrantAsync("batch@example.com", "long enough password")).GetProperty("refresh_token").GetString()!;
        }

        // Rounds of concurrent refreshes (RefreshTokenRotator puts them into shared statements): every one rotates
        // its own family, and every new token is distinct.
        var seen = new HashSet<string>(chains, StringComparer.Ordinal);
        for (var round = 0; round < 4; round++)
        {
            var results = await Task.WhenAll(chains.Select(c => TokenAsync(new() { ["grant_type"] = "refresh_token", ["refresh_token"] = c })));
            for (var i = 0; i < chains.Length; i++)
            {
                Assert.True(results[i].Status == HttpStatusCode.OK, results[i].Body.ToString());
                chains[i] = results[i].Body.GetProperty("refresh_token").GetString()!;
                Assert.True(seen.Add(chains[i]), "a rotation handed out a token twice");
            }
        }

        // The same token presented twice at once: one presentation rotates, the other is a reuse that ends the
        // login — including the successor the first one got. The other logins are untouched.
        var raced = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => TokenAsync(new() { ["grant_type"] = "refresh_token", ["refresh_token"] = chains[0] })));
        var winner = Assert.Single(raced, r => r.Status == HttpStatusCode.OK);
        Assert.Single(raced, r => r.Status == HttpStatusCode.BadRequest && r.Body.GetProperty("error").GetString() == "invalid_grant");
        var successor = await TokenAsync(new() { ["grant_type"] = "refresh_token", ["refresh_token"] = winner.Body.GetProperty("refresh_token").GetString()! });
        Assert.Equal("invalid_grant", successor.Body.GetProperty("error").GetString());
        for (var i = 1; i < chains.Length; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await TokenAsync(new() { ["grant_type"] = "refresh_token", ["refresh_token"] = chains[i] })).Status);
        }
    }

    [Fact]
    public async Task RefreshToken_OfALockedOutUser_IsRefused()
    {
        await SignupAsync("locked-refresh@example.com", "long enough password");
        var refresh = (await PasswordGrantAsync("locked-refresh@example.com", "long enough password")).GetProperty("refresh_token").GetString()!;
        for (var i = 0; i < 5; i++)
        {
            await TokenAsync(new() { ["grant_type"] = "password", ["username"] = "locked-refresh@example.com", ["password"] = "not the password" });
        }

        var refused = await TokenAsync(new() { ["grant_type"] = "refresh_token", ["refresh_token"] = refresh });
        Assert.Equal(HttpStatusCode.BadRequest, refused.Status);
        Assert.Equal("invalid_grant", refused.Body.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Revoke_RefreshToken_EndsItAndUnknownTokensAreStill200()
    {
        await SignupAsync("rev@example.com", "long enough password");
        var tokens = await PasswordGrantAsync("rev@example.com", "long enough password");
        var refresh = tokens.GetProperty("refresh_token").GetString()!;

        using var revoke = await Client.PostAsync(new Uri("/connect/revoke", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = refresh }));
        using var unknown = await Client.PostAsync(new Uri("/connect/revoke", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = "nope" }));
        var after = await TokenAsync(new() { ["grant_type"] = "refresh_token", ["refresh_token"] = refresh });

        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        Assert.Equal(HttpStatusCode.OK, unknown.StatusCode);
        Assert.Equal("invalid_grant", after.Body.GetProperty("error").GetString());
    }

    [Fact]
    public async Task PasswordGrant_WrongPasswordAndUnknownUser_LookAlike_AndLockOutAfterFive()
    {
        await SignupAsync("lock@example.com", "long enough password");

        var unknown = await TokenAsync(new() { ["grant_type"] = "password", ["username"] = "ghost@example.com", ["password"] = "whatever at all" });
        var wrong = await TokenAsync(new() { ["grant_type"] = "password", ["username"] = "lock@example.com", ["password"] = "wrong password!" });
        Assert.Equal(unknown.Body.ToString(), wrong.Body.ToString());

        for (var i = 0; i < 4; i++)
        {
            await TokenAsync(new() { ["grant_type"] = "password", ["username"] = "lock@example.com", ["password"] = "wrong password!" });
        }

        var locked = await TokenAsync(new() { ["grant_type"] = "password", ["username"] = "lock@example.com", ["password"] = "long enough password" });
        Assert.Equal(HttpStatusCode.BadRequest, locked.Status);
        Assert.Equal("invalid_grant", locked.Body.GetProperty("error").GetString());
    }

    [Fact]
    public async Task ClientCredentials_ServiceClient_GetsAnInternalTokenThatValidatesAgainstTheJwks()
    {
        var result = await TokenAsync(new() { ["grant_type"] = "client_credentials", ["client_id"] = "kdb-proxy", ["client_secret"] = ControlPlaneApp.ProxySecret });
        Assert.Equal(HttpStatusCode.OK, result.Status);
        Assert.False(result.Body.TryGetProperty("refresh_token", out _));

        var jwks = new JsonWebKeySet(await Client.GetStringAsync(new Uri("/.well-known/jwks.json", UriKind.Relative)));
        var validation = await new JsonWebTokenHandler().ValidateTokenAsync(result.Body.GetProperty("access_token").GetString(), new TokenValidationParameters
        {
            ValidIssuer = ControlPlaneApp.Issuer,
            ValidAudience = "kdb-internal",
            IssuerSigningKeys = jwks.GetSigningKeys(),
            ValidAlgorithms = ["ES256"],
        });

        Assert.True(validation.IsValid, validation.Exception?.Message);
        Assert.Equal("kdb.proxy", validation.Claims["scope"]);
        Assert.Equal("kdb-proxy", validation.Claims["sub"]);
        Assert.Equal("ES256", ((JsonWebToken)validation.SecurityToken).Alg);
        Assert.False(string.IsNullOrEmpty(((JsonWebToken)validation.SecurityToken).Kid));
    }

    [Fact]
    public async Task ClientCredentials_WrongSecretUnknownClientOrForeignScope_AreRefused()
    {
        var wrong = await TokenAsync(new() { ["grant_type"] = "client_credentials", ["client_id"] = "kdb-proxy", ["client_secret"] = "x" + ControlPlaneApp.ProxySecret });
        var unconfigured = await TokenAsync(new() { ["grant_type"] = "client_credentials", ["client_id"] = "kdb-node", ["client_secret"] = ControlPlaneApp.ProxySecret });
        var scope = await TokenAsync(new() { ["grant_type"] = "client_credentials", ["client_id"] = "kdb-proxy", ["client_secret"] = ControlPlaneApp.ProxySecret, ["scope"] = "kdb.operator" });

        Assert.Equal(HttpStatusCode.Unauthorized, wrong.Status);
        Assert.Equal("invalid_client", wrong.Body.GetProperty("error").GetString());
        Assert.Equal(HttpStatusCode.Unauthorized, unconfigured.Status);
        Assert.Equal("invalid_scope", scope.Body.GetProperty("error").GetString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("grant_type=magic")]
    [InlineData("grant_type=password")]
    [InlineData("grant_type=refresh_token&refresh_token=garbage")]
    public async Task TokenEndpoint_BadRequests_AreOAuthErrors(string form)
    {
        using var content = new StringContent(form, Encoding.UTF8, "application/x-www-form-urlencoded");
        using var response = await Client.PostAsync(new Uri("/connect/token", UriKind.Relative), content);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(body.GetProperty("error").GetString(), new[] { "invalid_request", "unsupported_grant_type", "invalid_grant" });
    }

    [Fact]
    public async Task Discovery_PublishesIssuerJwksAndGrants()
    {
        var doc = await Client.GetFromJsonAsync<JsonElement>("/.well-known/openid-configuration");

        Assert.Equal(ControlPlaneApp.Issuer, doc.GetProperty("issuer").GetString());
        Assert.Equal(ControlPlaneApp.Issuer + "/.well-known/jwks.json", doc.GetProperty("jwks_uri").GetString());
        Assert.Contains("client_credentials", doc.GetProperty("grant_types_supported").EnumerateArray().Select(e => e.GetString()));
        var jwks = await Client.GetFromJsonAsync<JsonElement>("/.well-known/jwks.json");
        var key = Assert.Single(jwks.GetProperty("keys").EnumerateArray());
        Assert.Equal("EC", key.GetProperty("kty").GetString());
        Assert.False(key.TryGetProperty("d", out _), "the JWKS must never carry the private key");
    }

    [Fact]
    public async Task Me_ForgedOrWrongTokens_AreAll401()
    {
        await SignupAsync("jwt@example.com", "long enough password");
        var good = (await PasswordGrantAsync("jwt@example.com", "long enough password")).GetProperty("access_token").GetString()!;
        var parts = good.Split('.');
        var payload = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(Base64UrlEncoder.Decode(parts[1]))!;
        var jwks = await Client.GetStringAsync(new Uri("/.well-known/jwks.json", UriKind.Relative));
        var publicKeyBytes = Encoding.UTF8.GetBytes(jwks);

        string Encode(object header, object body) => Base64UrlEncoder.Encode(JsonSerializer.Serialize(header)) + "." + Base64UrlEncoder.Encode(JsonSerializer.Serialize(body));
        var noneToken = Encode(new { alg = "none", typ = "JWT" }, payload) + ".";
        var hmacInput = Encode(new { alg = "HS256", typ = "JWT", kid = JsonDocument.Parse(Base64UrlEncoder.Decode(parts[0])).RootElement.GetProperty("kid").GetString() }, payload);
        var hmacToken = hmacInput + "." + Base64UrlEncoder.Encode(HMACSHA256.HashData(publicKeyBytes, Encoding.ASCII.GetBytes(hmacInput)));
        var tamperedPayload = new Dictionary<string, JsonElement>(payload) { ["sub"] = JsonSerializer.SerializeToElement("usr_00000000000000000000000000") };
        var tampered = parts[0] + "." + Base64UrlEncoder.Encode(JsonSerializer.Serialize(tamperedPayload)) + "." + parts[2];

        await using var foreignIssuer = await TestTokenIssuer.StartAsync(new TestTokenIssuerOptions { Issuer = ControlPlaneApp.Issuer });
        var unknownKid = foreignIssuer.MintUserToken(payload["sub"].GetString()!);
        var dataToken = foreignIssuer.MintDataToken("org_x", "db_0123456789abcdef", "owner", TimeSpan.FromMinutes(5));
        var expired = _app.Factory.Services.GetRequiredService<Kdb.ControlPlane.Identity.TokenIssuer>()
            .Mint("kdb-api", payload["sub"].GetString()!, DateTime.UtcNow.AddHours(-1), TimeSpan.FromMinutes(15), new Dictionary<string, object>());

        foreach (var (name, token) in new[] { ("none", noneToken), ("hmac", hmacToken), ("tampered", tampered), ("unknown kid", unknownKid), ("data token", dataToken), ("expired", expired), ("garbage", "abc.def.ghi") })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/me");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using var response = await Client.SendAsync(request);
            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{name}: {response.StatusCode}");
        }

        using var ok = new HttpRequestMessage(HttpMethod.Get, "/v1/me");
        ok.Headers.Authorization = new AuthenticationHeaderValue("Bearer", good);
        Assert.Equal(HttpStatusCode.OK, (await Client.SendAsync(ok)).StatusCode);
    }

    private async Task<JsonElement> SignupAsync(string email, string password)
    {
        using var response = await Client.PostAsJsonAsync("/v1/signup", new { email, password, name = email.Split('@')[0] });
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(response.StatusCode == HttpStatusCode.Created, body.ToString());
        return body;
    }

    private async Task<JsonElement> PasswordGrantAsync(string email, string password)
    {
        var result = await TokenAsync(new() { ["grant_type"] = "password", ["username"] = email, ["password"] = password });
        Assert.True(result.Status == HttpStatusCode.OK, result.Body.ToString());
        return result.Body;
    }

    private async Task<(HttpStatusCode Status, JsonElement Body)> TokenAsync(Dictionary<string, string> form)
    {
        using var response = await Client.PostAsync(new Uri("/connect/token", UriKind.Relative), new FormUrlEncodedContent(form));
        return (response.StatusCode, await response.Content.ReadFromJsonAsync<JsonElement>());
    }
}
