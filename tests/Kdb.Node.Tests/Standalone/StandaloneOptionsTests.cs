using Kdb.Node.Standalone;
using Kdb.PgWire.Auth;
using Kdb.Sql.Sessions;
using Kdb.Storage;
using Microsoft.Extensions.Configuration;

namespace Kdb.Node.Tests.Standalone;

public sealed class StandaloneOptionsTests
{
    private static IConfiguration Config(params (string Key, string Value)[] settings) =>
        new ConfigurationBuilder().AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value))).Build();

    [Fact]
    public void Read_PasswordRole_StoresOnlyAVerifier()
    {
        var options = StandaloneOptions.Read(Config(
            ("Standalone:Databases:app:Roles:owner:Password", "pw-123"),
            ("Standalone:Databases:app:Roles:ro:Kind", "readonly"),
            ("Standalone:Databases:app:Roles:ro:Verifier", ScramSha256Verifier.Create("x").ToString()),
            ("Standalone:Durability", "periodic"),
            ("Standalone:StatementTimeout", "00:00:30")));

        var db = Assert.Single(options.Databases);
        Assert.Equal(DurabilityMode.Periodic, options.Durability);
        Assert.Equal(TimeSpan.FromSeconds(30), options.StatementTimeout);
        Assert.Equal(SqlRoleKind.Owner, db.Roles["owner"].Kind);
        Assert.StartsWith("SCRAM-SHA-256$", db.Roles["owner"].Verifier, StringComparison.Ordinal);
        Assert.DoesNotContain("pw-123", db.Roles["owner"].Verifier, StringComparison.Ordinal);
        Assert.Equal(SqlRoleKind.ReadOnly, db.Roles["ro"].Kind);
        Assert.Equal(StandaloneOptions.DefaultTenant("app"), db.TenantId);
    }

    [Theory]
    [InlineData("Standalone:Databases:app:Roles:owner:Kind", "superuser", "Kind")]
    [InlineData("Standalone:Databases:app:Roles:owner:Verifier", "md5abc", "Verifier")]
    [InlineData("Standalone:Databases:app:TenantId", "0", "TenantId")]
    [InlineData("Standalone:Durability", "sometimes", "Durability")]
    public void Read_InvalidSetting_NamesTheKey(string key, string value, string expected)
    {
        var ex = Assert.Throws<InvalidOperationException>(() => StandaloneOptions.Read(Config(
            ("Standalone:Databases:app:Roles:owner:Password", "pw"), (key, value))));

        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_NoDatabases_Refused()
    {
        var ex = Assert.Throws<InvalidOperationException>(() => StandaloneOptions.Read(Config()));

        Assert.Contains("Standalone:Databases", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_TwoDatabasesOneTenant_Refused()
    {
        var ex = Assert.Throws<InvalidOperationException>(() => StandaloneOptions.Read(Config(
            ("Standalone:Databases:a:TenantId", "7"), ("Standalone:Databases:a:Roles:o:Password", "p"),
            ("Standalone:Databases:b:TenantId", "7"), ("Standalone:Databases:b:Roles:o:Password", "p"))));

        Assert.Contains("tenant id 7", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DefaultTenant_IsStableAndDistinct()
    {
        Assert.Equal(StandaloneOptions.DefaultTenant("app"), StandaloneOptions.DefaultTenant("app"));
        Assert.NotEqual(StandaloneOptions.DefaultTenant("app"), StandaloneOptions.DefaultTenant("app2"));
        Assert.NotEqual(0UL, StandaloneOptions.DefaultTenant("app"));
    }
}
