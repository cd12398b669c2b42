using System.Globalization;
using Kdb.Testing.Ids;
using Kdb.Testing.Tokens;
using Npgsql;

namespace Kdb.Node.Tests.Standalone;

/// <summary>
/// A node with a TLS certificate from a test CA, token logins checked against the ES256 test issuer's JWKS, and no
/// development flag: TLS with Npgsql and psql (require, verify-ca), data-token and proxy logins over TLS, and every
/// bad token failing exactly like a wrong password.
/// </summary>
[Collection(StandaloneCollection.Name)]
public sealed class SecureLoginTests(SecureNodeFixture fixture) : IClassFixture<SecureNodeFixture>
{
    private StandaloneNode Node => fixture.Node;

    private TestTokenIssuer Issuer => fixture.Issuer;

    private string Tls(string mode = "VerifyCA", string? root = null) => $"SslMode={mode};RootCertificate={root ?? fixture.Ca.CaPemPath};Pooling=false";

    [Fact]
    public async Task Npgsql_ScramOverVerifiedTls_IsSecure()
    {
        await using var c = new NpgsqlConnection(Node.ConnectionString(extra: Tls()));
        await c.OpenAsync();

        // VerifyCA cannot open without TLS and the CA's signature on the server certificate.
        Assert.Equal(StandaloneNode.Owner, await ScalarAsync(c, "SELECT current_user"));
    }

    [Fact]
    public async Task Npgsql_VerifyCaAgainstAnotherCa_FailsTheHandshake()
    {
        await using var c = new NpgsqlConnection(Node.ConnectionString(extra: Tls(root: fixture.Ca.OtherCaPemPath)));

        var error = await Assert.ThrowsAnyAsync<Exception>(() => c.OpenAsync());

        Assert.IsNotType<PostgresException>(error);
    }

    [Theory]
    [InlineData("require")]
    [InlineData("verify-ca")]
    public async Task Psql_OverTls_ReportsAnSslConnection(string mode)
    {
        var r = await Tools.RunAsync("psql", ["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", Conninfo(mode), "-c", "select 40 + 2", "-c", @"\conninfo"], StandaloneNode.OwnerPassword);

        Assert.True(r.ExitCode == 0, Tools.Describe(r));
        Assert.StartsWith("42", r.Output.Trim(), StringComparison.Ordinal);
        Assert.Contains("SSL connection (protocol: TLS", r.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DataToken_OverTls_LogsInAsTheTokensRole()
    {
        var token = Issuer.MintDataToken(KdbIds.NewOrgId(), StandaloneNode.Database, StandaloneNode.Reader, TimeSpan.FromMinutes(5));

        await using var c = new NpgsqlConnection(TokenConnectionString(StandaloneNode.Reader, token, "--kdb:jwt=true"));
        await c.OpenAsync();

        Assert.Equal(StandaloneNode.Reader, await ScalarAsync(c, "SELECT current_user"));

        // The readonly role keeps its kind when it logs in with a token.
        var denied = await Assert.ThrowsAsync<PostgresException>(() => ScalarAsync(c, "CREATE TABLE token_ddl (id int)"));
        Assert.Equal("42501", denied.SqlState);
    }

    [Fact]
    public async Task DataToken_WithPsqlOverTls_Works()
    {
        var token = Issuer.MintDataToken(KdbIds.NewOrgId(), StandaloneNode.Database, StandaloneNode.Owner, TimeSpan.FromMinutes(5));

        var r = await Tools.RunAsync("psql", ["-X", "-A", "-t", Conninfo("verify-ca") + " options='--kdb:jwt=true'", "-c", "select current_user"], token);

        Assert.True(r.ExitCode == 0, Tools.Describe(r));
        Assert.Equal(StandaloneNode.Owner, r.Output.Trim());
    }

    [Fact]
    public async Task BadTokens_AllFailLikeAWrongPassword()
    {
        var wrongPassword = await LoginErrorAsync(Node.ConnectionString(password: "wrong-password", extra: Tls()));
        using var foreign = TestSigningKey.Create(Issuer.CurrentKey.KeyId);
        var org = KdbIds.NewOrgId();
        var tokens = new Dictionary<string, string>
        {
            ["wrong db"] = Issuer.MintDataToken(org, "other", StandaloneNode.Owner, TimeSpan.FromMinutes(5)),
            ["wrong role"] = Issuer.MintDataToken(org, StandaloneNode.Database, StandaloneNode.Reader, TimeSpan.FromMinutes(5)),
            ["unknown role"] = Issuer.MintDataToken(org, StandaloneNode.Database, "nobody", TimeSpan.FromMinutes(5)),
            ["expired"] = DataToken(issuedAt: DateTimeOffset.UtcNow.AddHours(-3)),
            ["foreign key"] = DataToken(key: foreign),
            ["wrong audience"] = Issuer.MintServiceToken("kdb-proxy", [KdbScopes.Proxy]),
            ["api audience"] = Issuer.MintUserToken(KdbIds.NewUserId()),
            ["garbage"] = "eyJhbGciOiJFUzI1NiJ9.garbage.garbage",
        };

        Assert.Equal("28P01", wrongPassword.SqlState);
        foreach (var (name, token) in tokens)
        {
            var user = name == "unknown role" ? "nobody" : StandaloneNode.Owner;
            var error = await LoginErrorAsync(TokenConnectionString(user, token, "--kdb:jwt=true"));
            Assert.True(error.SqlState == "28P01", $"{name}: {error.SqlState} {error.MessageText}");
            Assert.Equal(wrongPassword.MessageText.Replace(StandaloneNode.Owner, user, StringComparison.Ordinal), error.MessageText);
        }
    }

    [Fact]
    public async Task DataToken_WithoutTls_IsRefusedBeforeThePasswordIsSent()
    {
        var token = Issuer.MintDataToken(KdbIds.NewOrgId(), StandaloneNode.Database, StandaloneNode.Owner, TimeSpan.FromMinutes(5));

        var error = await LoginErrorAsync(Node.ConnectionString(password: token, extra: "SslMode=Disable;Pooling=false;Options=--kdb:jwt=true"));

        Assert.Equal("28P01", error.SqlState);
        Assert.Contains("SSL", error.Hint, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ProxyLogin_ProxyScope_TrustsTheStartupUser_OtherScopesFail()
    {
        var proxy = Issuer.MintServiceToken("kdb-proxy", [KdbScopes.Proxy]);
        await using (var c = new NpgsqlConnection(TokenConnectionString(StandaloneNode.Reader, proxy, "--kdb:proxy=true")))
        {
            await c.OpenAsync();
            Assert.Equal(StandaloneNode.Reader, await ScalarAsync(c, "SELECT current_user"));
        }

        var node = Issuer.MintServiceToken("kdb-node", [KdbScopes.Node]);
        var error = await LoginErrorAsync(TokenConnectionString(StandaloneNode.Reader, node, "--kdb:proxy=true"));
        Assert.Equal("28P01", error.SqlState);

        // A data token is no proxy token, even for the right database and role.
        var data = Issuer.MintDataToken(KdbIds.NewOrgId(), StandaloneNode.Database, StandaloneNode.Reader, TimeSpan.FromMinutes(5));
        Assert.Equal("28P01", (await LoginErrorAsync(TokenConnectionString(StandaloneNode.Reader, data, "--kdb:proxy=true"))).SqlState);
    }

    private static async Task<object?> ScalarAsync(NpgsqlConnection c, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, c);
        return await cmd.ExecuteScalarAsync();
    }

    private static async Task<PostgresException> LoginErrorAsync(string connectionString)
    {
        await using var c = new NpgsqlConnection(connectionString);
        return await Assert.ThrowsAsync<PostgresException>(() => c.OpenAsync());
    }

    private string TokenConnectionString(string user, string token, string option) =>
        Node.ConnectionString(user: user, password: token, extra: Tls() + ";Options=" + option);

    private string Conninfo(string sslmode) => string.Create(
        CultureInfo.InvariantCulture,
        $"host=127.0.0.1 port={Node.PgPort} user={StandaloneNode.Owner} dbname={StandaloneNode.Database} sslmode={sslmode} sslrootcert={fixture.Ca.CaPemPath}");

    private string DataToken(DateTimeOffset? issuedAt = null, TestSigningKey? key = null) =>
        Issuer.Mint(new TestTokenRequest(KdbAudiences.Data, KdbIds.NewUserId())
        {
            IssuedAt = issuedAt,
            Lifetime = TimeSpan.FromHours(1),
            SigningKey = key,
            Claims = new Dictionary<string, object> { ["db"] = StandaloneNode.Database, ["role"] = StandaloneNode.Owner, ["org"] = KdbIds.NewOrgId() },
        });
}

/// <summary>The test CA, the token issuer and a node that uses both (TLS on, development flag off).</summary>
public sealed class SecureNodeFixture : IAsyncLifetime
{
    public StandaloneNode Node { get; private set; } = null!;

    public TestTokenIssuer Issuer { get; private set; } = null!;

    internal TestCa Ca { get; } = TestCa.Create();

    public async Task InitializeAsync()
    {
        Issuer = await TestTokenIssuer.StartAsync();
        Node = await StandaloneNode.StartAsync(new Dictionary<string, string>
        {
            ["Standalone:TlsCertificatePath"] = Ca.ServerPfxPath,
            ["Standalone:TlsCertificatePassword"] = TestCa.PfxPassword,
            ["Tokens:Issuer"] = Issuer.Issuer,
            ["Tokens:AllowHttpIssuer"] = "true",
        });
    }

    public async Task DisposeAsync()
    {
        await Node.DisposeAsync();
        await Issuer.DisposeAsync();
        Ca.Dispose();
    }
}
