using System.Net;
using Microsoft.AspNetCore.Mvc.Testing;

namespace Kdb.Proxy.Tests;

public sealed class ManagementPortTests
{
    [Theory]
    [InlineData("/health/live")]
    [InlineData("/health/ready")]
    [InlineData("/metrics")]
    [InlineData("/build_info")]
    public async Task ManagementEndpoints_OnTenantPort_AreNotFound(string path)
    {
        await using var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(web =>
        {
            web.UseSetting("Proxy:ManagementPort", "6490");
            web.UseSetting("ControlPlane:Url", "http://127.0.0.1:9");
            web.UseSetting("Logging:LogLevel:Default", "Warning");
        });
        using var tenant = factory.CreateClient(new WebApplicationFactoryClientOptions { BaseAddress = new Uri("http://localhost:6480") });
        using var management = factory.CreateClient(new WebApplicationFactoryClientOptions { BaseAddress = new Uri("http://localhost:6490") });

        using var onTenantPort = await tenant.GetAsync(new Uri(path, UriKind.Relative));
        using var onManagementPort = await management.GetAsync(new Uri(path, UriKind.Relative));

        Assert.Equal(HttpStatusCode.NotFound, onTenantPort.StatusCode);
        Assert.NotEqual(HttpStatusCode.NotFound, onManagementPort.StatusCode);
    }

    [Fact]
    public async Task Ready_ControlPlaneDown_Reports503()
    {
        await using var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(web =>
        {
            web.UseSetting("Proxy:ManagementPort", "6490");
            web.UseSetting("ControlPlane:Url", "http://127.0.0.1:9");
            web.UseSetting("Logging:LogLevel:Default", "Warning");
        });
        using var management = factory.CreateClient(new WebApplicationFactoryClientOptions { BaseAddress = new Uri("http://localhost:6490") });

        using var ready = await management.GetAsync(new Uri("/health/ready", UriKind.Relative));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
    }
}
