using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Kdb.ServiceDefaults.Tests;

public sealed class DependencyHealthCheckTests
{
    [Fact]
    public async Task TcpDependency_ClosedPort_IsUnhealthy()
    {
        var check = new TcpDependencyHealthCheck("127.0.0.1", ClosedPort());

        var result = await check.CheckHealthAsync(new HealthCheckContext());

        Assert.Equal(HealthStatus.Unhealthy, result.Status);
    }

    [Fact]
    public async Task TcpDependency_ListeningPort_IsHealthy()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var check = new TcpDependencyHealthCheck("127.0.0.1", ((IPEndPoint)listener.LocalEndpoint).Port);

        var result = await check.CheckHealthAsync(new HealthCheckContext());

        Assert.Equal(HealthStatus.Healthy, result.Status);
    }

    [Fact]
    public async Task HttpDependency_ClosedPort_IsUnhealthyWithoutThrowing()
    {
        using var services = new ServiceCollection().AddHttpClient().BuildServiceProvider();
        var check = new HttpDependencyHealthCheck(services.GetRequiredService<IHttpClientFactory>(), new Uri($"http://127.0.0.1:{ClosedPort()}/health/live"));

        var result = await check.CheckHealthAsync(new HealthCheckContext());

        Assert.Equal(HealthStatus.Unhealthy, result.Status);
        Assert.Contains("unreachable", result.Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WritableDirectory_PathIsAFile_IsUnhealthy()
    {
        var file = Path.GetTempFileName();
        try
        {
            var result = await new WritableDirectoryHealthCheck(file).CheckHealthAsync(new HealthCheckContext());
            Assert.Equal(HealthStatus.Unhealthy, result.Status);
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
