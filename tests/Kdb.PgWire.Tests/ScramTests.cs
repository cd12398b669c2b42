using System.Text;
using Kdb.PgWire.Auth;

namespace Kdb.PgWire.Tests;

public sealed class ScramTests
{
    private const string ClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    private const string ServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    private const string ClientFinal = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";

    private static ScramSha256Verifier Rfc7677Verifier() =>
        ScramSha256Verifier.Create("pencil", 4096, Convert.FromBase64String("W22ZaJ0SNY7soEsUEjb6gQ=="));

    [Fact]
    public void Exchange_Rfc7677Vector_ProducesServerFirstAndSignature()
    {
        var exchange = new ScramServerExchange(Rfc7677Verifier(), ServerNonce);
        Assert.Equal("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", exchange.HandleClientFirst(Encoding.UTF8.GetBytes(ClientFirst)));
        Assert.Equal("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", exchange.HandleClientFinal(Encoding.UTF8.GetBytes(ClientFinal)));
    }

    [Fact]
    public void Exchange_WrongPassword_Rejected()
    {
        var exchange = new ScramServerExchange(ScramSha256Verifier.Create("not pencil", 4096, Convert.FromBase64String("W22ZaJ0SNY7soEsUEjb6gQ==")), ServerNonce);
        exchange.HandleClientFirst(Encoding.UTF8.GetBytes(ClientFirst));
        Assert.Null(exchange.HandleClientFinal(Encoding.UTF8.GetBytes(ClientFinal)));
    }

    [Theory]
    [InlineData("p=tls-server-end-point,,n=user,r=abc")]
    [InlineData("n,,n=user")]
    [InlineData("x,,n=user,r=abc")]
    [InlineData("n,,m=ext,n=user,r=abc")]
    public void Exchange_MalformedOrChannelBindingClientFirst_Rejected(string message)
    {
        var exchange = new ScramServerExchange(Rfc7677Verifier());
        Assert.Null(exchange.HandleClientFirst(Encoding.UTF8.GetBytes(message)));
    }

    [Theory]
    [InlineData("c=biws,r=rOprNGfwEbeRWgbNEkqOWRONG,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")]
    [InlineData("c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")]
    [InlineData("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=!!!")]
    [InlineData("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")]
    public void Exchange_TamperedClientFinal_Rejected(string message)
    {
        var exchange = new ScramServerExchange(Rfc7677Verifier(), ServerNonce);
        exchange.HandleClientFirst(Encoding.UTF8.GetBytes(ClientFirst));
        Assert.Null(exchange.HandleClientFinal(Encoding.UTF8.GetBytes(message)));
    }

    [Fact]
    public void Verifier_TextForm_RoundTripsAndMatchesPostgresLayout()
    {
        ScramSha256Verifier v = Rfc7677Verifier();
        string text = v.ToString();
        Assert.StartsWith("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$", text, StringComparison.Ordinal);
        ScramSha256Verifier parsed = ScramSha256Verifier.Parse(text);
        Assert.Equal(v.StoredKey, parsed.StoredKey);
        Assert.Equal(v.ServerKey, parsed.ServerKey);
        Assert.Equal(v.Salt, parsed.Salt);
        Assert.Equal(4096, parsed.Iterations);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("md5abcdef")]
    [InlineData("SCRAM-SHA-256$4096:c2FsdA==$short:short")]
    [InlineData("SCRAM-SHA-256$x:c2FsdA==$AAAA:AAAA")]
    [InlineData("SCRAM-SHA-256$4096:c2FsdA==")]
    [InlineData("SCRAM-SHA-256$4096:!!$AAAA:AAAA")]
    public void Verifier_Malformed_TryParseFalse(string? text)
    {
        Assert.False(ScramSha256Verifier.TryParse(text, out _));
        Assert.Throws<FormatException>(() => ScramSha256Verifier.Parse(text ?? string.Empty));
    }

    [Fact]
    public void FakeVerifier_SameNameSameSecret_Deterministic_DifferentNamesDiffer()
    {
        byte[] secret = Encoding.UTF8.GetBytes("server secret for tests");
        ScramSha256Verifier a1 = ScramSha256Verifier.CreateFake(secret, "db", "ghost");
        ScramSha256Verifier a2 = ScramSha256Verifier.CreateFake(secret, "db", "ghost");
        ScramSha256Verifier b = ScramSha256Verifier.CreateFake(secret, "db", "phantom");
        ScramSha256Verifier other = ScramSha256Verifier.CreateFake(Encoding.UTF8.GetBytes("another secret"), "db", "ghost");
        Assert.Equal(a1.ToString(), a2.ToString());
        Assert.NotEqual(a1.Salt, b.Salt);
        Assert.NotEqual(a1.Salt, other.Salt);
        Assert.Equal(16, a1.Salt.Length);
        Assert.Equal(ScramSha256Verifier.DefaultIterations, a1.Iterations);
    }
}
