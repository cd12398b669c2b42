using Kdb.Testing.Ports;
using Kdb.Testing.Proxy;
using Kdb.Testing.Tokens;
using Npgsql;

namespace Kdb.Proxy.Tests;

/// <summary>A proxy that has not heard from the control plane yet refuses logins as retryable, never as a wrong password.</summary>
public sealed class StartupTests
{
    [Fact]
    public async Task WithoutRouteTable_LoginIsRetryable57P03_SameForEveryName_NotAWrongPassword()
    {
        await using var issuer = await TestTokenIssuer.StartAsync();
        // Nothing listens on this port: the control plane is down for the whole test.
        var controlPlane = new Uri($"http://127.0.0.1:{FreePorts.Allocate()}");
        await using var proxy = await ProxyProcess.StartAsync(controlPlane, issuer, readinessPath: "/health/live");

        var answers = new List<(string State, string Message)>();
        foreach (var database in new[] { "db_" + Guid.NewGuid().ToString("N")[..16], "postgres", new string('x', 70) })
        {
            var e = await Assert.ThrowsAsync<PostgresException>(async () =>
            {
                await using var conn = new NpgsqlConnection(proxy.ConnectionString(database, "owner", "secret"));
                await conn.OpenAsync();
            });
            answers.Add((e.SqlState, e.MessageText));
        }

        Assert.All(answers, a => Assert.Equal("57P03", a.State));
        Assert.Single(answers.Select(a => a.Message).Distinct());
    }
}
