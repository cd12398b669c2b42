using System.Reflection;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Kdb.ServiceDefaults;

/// <summary>What every Kdb.Cloud service host shares: configuration, logs, health, metrics, build info.</summary>
public static class ServiceDefaultsExtensions
{
    /// <summary>Tag of the health checks that decide readiness (<c>/health/ready</c>).</summary>
    public const string ReadyTag = "ready";

    /// <summary>Framework log categories that write a line per request or per command at Information.</summary>
    public static readonly IReadOnlyList<string> ChattyCategories =
        ["Microsoft.EntityFrameworkCore", "Microsoft.AspNetCore.Hosting.Diagnostics", "Microsoft.AspNetCore.Routing", "Yarp.ReverseProxy.Forwarder"];

    /// <summary>
    /// Adds <c>KDB_</c> environment variables over appsettings (<c>KDB_Section__Key</c> → <c>Section:Key</c>),
    /// structured JSON console logs, health checks, the Prometheus exporter and build info.
    /// </summary>
    public static IHostApplicationBuilder AddKdbServiceDefaults(this IHostApplicationBuilder builder, string serviceName)
    {
        builder.Configuration.AddEnvironmentVariables("KDB_");

        builder.Logging.ClearProviders();
        if (string.Equals(builder.Configuration["Logging:Format"], "simple", StringComparison.OrdinalIgnoreCase))
        {
            builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.UseUtcTimestamp = true; o.TimestampFormat = "HH:mm:ss.fff "; });
        }
        else
        {
            builder.Logging.AddJsonConsole(o => { o.UseUtcTimestamp = true; o.TimestampFormat = "O"; });
        }

        QuietChattyFrameworkLogs(builder);

        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
        builder.Services.AddHttpClient("kdb-health");
        builder.Services.AddHealthChecks();
        // Malformed bodies are the client's fault in every environment: 400, never an exception and a 500.
        builder.Services.Configure<Microsoft.AspNetCore.Routing.RouteHandlerOptions>(o => o.ThrowOnBadRequest = false);
        builder.Services.AddSingleton(new PrometheusExporter());
        builder.Services.AddSingleton(BuildInfo.For(serviceName, Assembly.GetEntryAssembly() ?? typeof(ServiceDefaultsExtensions).Assembly));
        return builder;
    }

    /// <summary>
    /// Frameworks that log every request or every SQL command at Information (EF Core's executed commands, ASP.NET
    /// Core's request start and finish, YARP's forwarding) go to Warning unless configuration names a level for them:
    /// at the default level a service would spend more CPU formatting JSON about each request than serving it, and
    /// drown its own events. Set <c>Logging:LogLevel:Microsoft.EntityFrameworkCore=Information</c> (for example) to see them.
    /// </summary>
    private static void QuietChattyFrameworkLogs(IHostApplicationBuilder builder)
    {
        foreach (var category in ChattyCategories)
        {
            if (builder.Configuration[$"Logging:LogLevel:{category}"] is null)
            {
                builder.Logging.AddFilter(category, LogLevel.Warning);
            }
        }
    }

    /// <summary>
    /// Maps <c>/health/live</c>, <c>/health/ready</c>, <c>/build_info</c> and <c>/metrics</c>. With a
    /// <paramref name="managementPort"/> they answer only on that port, so they never appear on a port
    /// tenants reach (DESIGN: health and metrics stay off tenant-facing ports).
    /// </summary>
    public static IEndpointRouteBuilder MapKdbManagementEndpoints(this IEndpointRouteBuilder endpoints, int? managementPort = null)
    {
        var group = endpoints.MapGroup(string.Empty);
        if (managementPort is { } port)
        {
            group.RequireHost($"*:{port}");
        }

        // Liveness says only that the process serves requests; dependencies decide readiness.
        group.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false, ResponseWriter = WriteHealthAsync });
        group.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = c => c.Tags.Contains(ReadyTag), ResponseWriter = WriteHealthAsync });
        group.MapGet("/build_info", (BuildInfo info) => Results.Json(info, BuildInfoJson));
        group.MapGet("/metrics", (PrometheusExporter exporter) =>
            Results.Text(exporter.Render(), "text/plain; version=0.0.4; charset=utf-8"));
        return endpoints;
    }

    /// <summary>Adds a readiness check that requires <paramref name="url"/> to answer with a success status.</summary>
    public static IHealthChecksBuilder AddHttpDependency(this IHealthChecksBuilder checks, string name, Uri url) =>
        checks.Add(new HealthCheckRegistration(
            name,
            sp => new HttpDependencyHealthCheck(sp.GetRequiredService<IHttpClientFactory>(), url),
            HealthStatus.Unhealthy,
            [ReadyTag]));

    /// <summary>Adds a readiness check that requires a TCP endpoint to accept connections.</summary>
    public static IHealthChecksBuilder AddTcpDependency(this IHealthChecksBuilder checks, string name, string host, int port) =>
        checks.Add(new HealthCheckRegistration(name, _ => new TcpDependencyHealthCheck(host, port), HealthStatus.Unhealthy, [ReadyTag]));

    private static readonly JsonSerializerOptions BuildInfoJson = new(JsonSerializerDefaults.Web);

    private static Task WriteHealthAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json";
        var checks = new Dictionary<string, object>(StringComparer.Ordinal);
        foreach (var (name, entry) in report.Entries)
        {
            checks[name] = new { status = entry.Status.ToString(), description = entry.Description };
        }

        return context.Response.WriteAsync(JsonSerializer.Serialize(new { status = report.Status.ToString(), checks }, BuildInfoJson));
    }
}

/// <summary>Kestrel listeners for the service hosts.</summary>
public static class ListenerExtensions
{
    /// <summary>
    /// Listens on each port at the configured <c>BindAddress</c> (loopback by default: the local cloud
    /// never exposes a port beyond the machine unless told to).
    /// </summary>
    public static WebApplicationBuilder ListenOn(this WebApplicationBuilder builder, params int[] ports)
    {
        var bind = builder.Configuration["BindAddress"] ?? "127.0.0.1";
        if (!System.Net.IPAddress.TryParse(bind, out var address))
        {
            throw new InvalidOperationException($"BindAddress '{bind}' is not an IP address.");
        }

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            foreach (var port in ports)
            {
                kestrel.Listen(address, port);
            }
        });
        return builder;
    }

    /// <summary>Reads a required port setting, with a default, rejecting values outside 1–65535.</summary>
    public static int GetPort(this IConfiguration configuration, string key, int defaultPort)
    {
        var port = configuration.GetValue(key, defaultPort);
        return port is > 0 and <= 65535 ? port : throw new InvalidOperationException($"{key} = {port} is not a TCP port.");
    }
}
