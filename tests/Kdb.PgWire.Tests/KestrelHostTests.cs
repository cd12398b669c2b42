using System.Net;
using Kdb.PgWire.Auth;
using Kdb.PgWire.Server;
using Kdb.PgWire.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;

namespace Kdb.PgWire.Tests;

/// <summary>
/// The handler behind a Kestrel connection handler, the way the node host serves pgwire: Kestrel's
/// transport pipes (with their own backpressure) and the SSLRequest upgrade through PgTls over them.
/// </summary>
public sealed class KestrelHostTests : IAsyncLifetime
{
    private readonly TestDatabase _database = new();
    private WebApplication _app = null!;
    private System.Security.Cryptography.X509Certificates.X509Certificate2 _certificate = null!;
    private int _port;

    public async Task InitializeAsync()
    {
        _certificate = TestServer.CreateCertificate();
        var authenticator = new TestAuthenticator();
        authenticator.AddRole(TestServer.DatabaseName, TestServer.User, ScramSha256Verifier.Create(TestServer.Password).ToString());
        var handler = new PgConnectionHandler(new PgServerOptions(), new TestSessionFactory(_database), authenticator);

        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(handler);
        builder.Services.AddSingleton(_certificate);
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.UseConnectionHandler<PgKestrelConnectionHandler>()));
        _app = builder.Build();
        await _app.StartAsync();
        string address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        _port = new Uri(address).Port;
    }

    public async Task DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _certificate.Dispose();
    }

    private string ConnectionString(string extra) =>
        $"Host=127.0.0.1;Port={_port};Username={TestServer.User};Password={TestServer.Password};Database={TestServer.DatabaseName};Server Compatibility Mode=NoTypeLoading;Pooling=false;Timeout=15;{extra}";

    [Theory]
    [InlineData("SSL Mode=Disable")]
    [InlineData("SSL Mode=Require")]
    public async Task Kestrel_PlainAndTls_TypesRoundTrip(string ssl)
    {
        await using var c = new NpgsqlConnection(ConnectionString(ssl));
        await c.OpenAsync();
        Assert.Equal(ssl.EndsWith("Require", StringComparison.Ordinal), _database.LastStartup!.IsTls);
        await using var cmd = new NpgsqlCommand("SELECT $1, $2, $3", c);
        cmd.Parameters.Add(new NpgsqlParameter { Value = 12.5m, NpgsqlDbType = NpgsqlDbType.Numeric });
        cmd.Parameters.Add(new NpgsqlParameter { Value = new byte[70_000], NpgsqlDbType = NpgsqlDbType.Bytea });
        cmd.Parameters.Add(new NpgsqlParameter { Value = "kestrel", NpgsqlDbType = NpgsqlDbType.Text });
        await using NpgsqlDataReader r = await cmd.ExecuteReaderAsync();
        Assert.True(await r.ReadAsync());
        Assert.Equal(12.5m, r.GetDecimal(0));
        Assert.Equal(70_000, ((byte[])r.GetValue(1)).Length);
        Assert.Equal("kestrel", r.GetString(2));
    }

    [Fact]
    public async Task Kestrel_LargeResult_StreamsAllRows()
    {
        await using var c = new NpgsqlConnection(ConnectionString("SSL Mode=Require"));
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT * FROM generate_series(1, 200000)", c);
        await using NpgsqlDataReader r = await cmd.ExecuteReaderAsync();
        long sum = 0;
        while (await r.ReadAsync())
        {
            sum += r.GetInt32(0);
        }

        Assert.Equal(200000L * 200001 / 2, sum);
    }

    [Fact]
    public async Task Kestrel_Cancel_Reports57014()
    {
        await using var c = new NpgsqlConnection(ConnectionString("SSL Mode=Disable"));
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT pg_sleep(60)", c);
        Task<object?> running = cmd.ExecuteScalarAsync();
        Assert.True(await _database.SleepStarted.WaitAsync(TimeSpan.FromSeconds(20)));
        cmd.Cancel();
        OperationCanceledException e = await Assert.ThrowsAsync<OperationCanceledException>(() => running);
        Assert.Equal("57014", Assert.IsType<PostgresException>(e.InnerException).SqlState);
    }

    /// <summary>The adapter the node host will have: Kestrel connection → PgConnectionHandler.</summary>
    private sealed class PgKestrelConnectionHandler(PgConnectionHandler handler, System.Security.Cryptography.X509Certificates.X509Certificate2 certificate) : ConnectionHandler
    {
        public override Task OnConnectedAsync(ConnectionContext connection)
        {
            bool loopback = connection.RemoteEndPoint is IPEndPoint ip && IPAddress.IsLoopback(ip.Address);
            var info = new PgConnectionInfo(IsLoopback: loopback, UpgradeToTls: PgTls.CreateUpgrade(connection.Transport, certificate));
            return handler.HandleAsync(connection.Transport, info, connection.ConnectionClosed);
        }
    }
}
