using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Mvc.Testing;

namespace Kdb.ControlPlane.Tests;

public sealed class HealthTests
{
    [Fact]
    public async Task Ready_PostgresDown_Reports503WhileLiveStays200()
    {
        var closedPort = ClosedPort();
        await using var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(web =>
            web.UseSetting("Postgres:ConnectionString", $"Host=127.0.0.1;Port={closedPort};Username=postgres;Password=x;Database=kdb").UseSetting("Logging:LogLevel:Default", "None"));
        using var client = factory.CreateClient();

        using var live = await client.GetAsync(new Uri("/health/live", UriKind.Relative));
        using var ready = await client.GetAsync(new Uri("/health/ready", UriKind.Relative));

        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        Assert.Contains("PostgreSQL unreachable", await ready.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task BuildInfoAndMetrics_AreServed()
    {
        await using var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(web =>
            web.UseSetting("Postgres:ConnectionString", $"Host=127.0.0.1;Port={ClosedPort()};Username=postgres;Password=x;Database=kdb").UseSetting("Logging:LogLevel:Default", "None"));
        using var client = factory.CreateClient();

        var info = await client.GetStringAsync(new Uri("/build_info", UriKind.Relative));
        await client.GetAsync(new Uri("/health/live", UriKind.Relative));
        using var metrics = await client.GetAsync(new Uri("/metrics", UriKind.Relative));

        Assert.Contains("\"service\":\"controlplane\"", info, StringComparison.Ordinal);
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", metrics.Content.Headers.ContentType?.ToString());
        Assert.Contains("# TYPE ", await metrics.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
