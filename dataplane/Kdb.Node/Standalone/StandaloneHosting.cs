using System.Net;
using Kdb.Node.Auth;
using Kdb.PgWire.Server;
using Microsoft.AspNetCore.Connections;

namespace Kdb.Node.Standalone;

/// <summary>Wires standalone mode into the node host: the data plane singleton and the pgwire listener.</summary>
public static class StandaloneHosting
{
    /// <summary>True when <c>Node:Mode</c> is <c>standalone</c>.</summary>
    public static bool IsStandalone(IConfiguration configuration) =>
        string.Equals(configuration["Node:Mode"], "standalone", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Opens the standalone data plane and listens for PostgreSQL clients on <paramref name="pgPort"/>. Token logins
    /// are checked against the issuer in section <c>Tokens</c> (<see cref="TokenValidatorOptions.Read"/>), if any.
    /// </summary>
    public static StandaloneServer AddStandaloneNode(this WebApplicationBuilder builder, string dataDirectory, int pgPort)
    {
        var options = StandaloneOptions.Read(builder.Configuration);
        var tokenOptions = TokenValidatorOptions.Read(builder.Configuration.GetSection("Tokens"), options.DevelopmentTokensOnLoopback);
        var server = new StandaloneServer(dataDirectory, options);
        builder.Services.AddSingleton(server);
        builder.Services.AddSingleton(new StandaloneMetrics(server));
        builder.Services.AddSingleton(sp =>
        {
            var tokens = tokenOptions is null
                ? null
                : TokenValidators.Create(tokenOptions, time: sp.GetService<TimeProvider>(), logger: sp.GetRequiredService<ILoggerFactory>().CreateLogger("Kdb.Node.Auth"));
            return new PgConnectionHandler(server.ProtocolOptions(), server, new StandaloneAuthenticator(server, tokens));
        });
        builder.Services.AddSingleton(new StandaloneTls(server.LoadCertificate()));
        var retention = builder.Configuration.GetValue("Standalone:GcRetention", TimeSpan.FromMinutes(10));
        builder.Services.AddHostedService(sp => new GcThresholdService(server, retention, sp.GetService<TimeProvider>() ?? TimeProvider.System));
        var bind = builder.Configuration["BindAddress"] ?? "127.0.0.1";
        var address = IPAddress.Parse(bind);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(address, pgPort, listen => listen.UseConnectionHandler<PgKestrelConnectionHandler>()));
        builder.UseInlineSocketScheduling("Standalone:InlineSocketCompletions");
        return server;
    }
}
