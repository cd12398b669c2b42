using Kdb.Node.Auth;
using Kdb.Node.ControlPlane;
using Kdb.Proxy;
using Kdb.Proxy.Http;
using Kdb.Proxy.Logs;
using Kdb.Proxy.Pg;
using Kdb.Proxy.Routing;
using Kdb.Proxy.Throttling;
using Kdb.Proxy.Tls;
using Kdb.ServiceDefaults;
using Microsoft.Extensions.Diagnostics.HealthChecks;

var builder = WebApplication.CreateBuilder(args);
builder.AddKdbServiceDefaults("proxy");
ProxyOptions options = ProxyOptions.Read(builder.Configuration);
builder.Services.AddSingleton(options);

// The relay's pipe continuations run on the socket's completion instead of hopping to the thread pool: one hop less
// each way per statement (the proxy's own code on the pipes never blocks).
// (Proxy:InlineScheduling=false turns it off: the benchmark measures both in one run.)
bool inline = builder.Configuration.GetValue("Proxy:InlineScheduling", true);
builder.WebHost.UseSockets(sockets => sockets.UnsafePreferInlineScheduling = inline);
if (inline && Environment.GetEnvironmentVariable(InlineCompletionsVariable) is null && System.Reflection.Assembly.GetEntryAssembly() == typeof(Program).Assembly)
{
    // The runtime's own half of the same choice: socket completions run on the epoll threads (one per core) instead
    // of being queued to the thread pool, so each network event wakes one thread, not two. The runtime reads this
    // variable once, at the first socket operation, which has not happened yet. Nothing in the proxy blocks a
    // thread on I/O, which is what makes running on the epoll threads safe. Only in the proxy's own process: a host
    // that embeds it (tests) keeps the runtime's default.
    Environment.SetEnvironmentVariable(InlineCompletionsVariable, "1");
}

builder.Services.AddSingleton(TimeProvider.System);

// Tenants reach the PostgreSQL and HTTP ports; health and metrics answer only on the management port.
var bind = System.Net.IPAddress.Parse(builder.Configuration["BindAddress"] ?? "127.0.0.1");
builder.ListenOn(options.ManagementPort);
builder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.Listen(bind, options.HttpPort);

    // The data API's own limit (DESIGN: 1 MiB bodies); Kestrel answers 413 before the body reaches a node.
    kestrel.Limits.MaxRequestBodySize = HttpFront.MaxBodyBytes;
});
builder.Services.AddSingleton<RouteTableProxyConfig>();
builder.Services.AddSingleton<Yarp.ReverseProxy.Configuration.IProxyConfigProvider>(sp => sp.GetRequiredService<RouteTableProxyConfig>());
builder.Services.AddReverseProxy();
builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = options.DrainTimeout);

var controlPlaneUrl = new Uri(builder.Configuration["ControlPlane:Url"] ?? "http://127.0.0.1:5100");
builder.Services.AddHealthChecks()
    .AddHttpDependency("controlplane", new Uri(controlPlaneUrl, "/health/live"))
    .AddCheck<RoutesLoadedCheck>("routes");

// The control plane: a long-poll needs a timeout above its 30 s.
var http = new HttpClient(new SocketsHttpHandler { UseProxy = false, PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
{
    BaseAddress = controlPlaneUrl,
    Timeout = TimeSpan.FromSeconds(75),
};
string? staticToken = builder.Configuration["Proxy:ServiceToken"];
var serviceClient = new ServiceTokenClient(http, new ServiceClientOptions
{
    Id = builder.Configuration["ServiceClient:Id"] ?? "kdb-proxy",
    Secret = builder.Configuration["ServiceClient:Secret"] ?? string.Empty,
}, TimeProvider.System);
builder.Services.AddSingleton<IControlPlaneClient>(new ControlPlaneClient(http, options.ProxyId, ct =>
    staticToken is { Length: > 0 } ? ValueTask.FromResult(staticToken) : new ValueTask<string>(serviceClient.GetAsync(ct))));

// Data tokens are the control plane's: its issuer and JWKS unless configured otherwise.
TokenValidatorOptions? tokenOptions = TokenValidatorOptions.Read(builder.Configuration.GetSection("Tokens"), development: controlPlaneUrl.IsLoopback)
    ?? new TokenValidatorOptions { Issuer = controlPlaneUrl.GetLeftPart(UriPartial.Authority), AllowHttpIssuer = controlPlaneUrl.IsLoopback };

builder.Services.AddSingleton<IRouteCache, RouteCache>();
builder.Services.AddSingleton<AuthThrottle>();
builder.Services.AddSingleton<CancelMap>();
builder.Services.AddSingleton<ProxyMetrics>();
builder.Services.AddSingleton<ConnectionLog>();
builder.Services.AddSingleton<IConnectionLog>(sp => sp.GetRequiredService<ConnectionLog>());
builder.Services.AddHostedService(sp => sp.GetRequiredService<ConnectionLog>());
builder.Services.AddHostedService<RouteFollower>();
builder.Services.AddHostedService<UsageReporter>();
builder.Services.AddSingleton(sp => new CertificateSource(
    builder.Configuration["Tls:Certificate"], builder.Configuration["Tls:Key"], TimeProvider.System, sp.GetRequiredService<ILogger<CertificateSource>>()));
builder.Services.AddSingleton(sp => new PgFrontServices(
    options,
    sp.GetRequiredService<IRouteCache>(),
    sp.GetRequiredService<AuthThrottle>(),
    sp.GetRequiredService<CancelMap>(),
    sp.GetRequiredService<IConnectionLog>(),
    TokenValidators.Create(tokenOptions, logger: sp.GetRequiredService<ILogger<PgFrontConnection>>()),
    sp.GetRequiredService<CertificateSource>(),
    sp.GetRequiredService<IControlPlaneClient>(),
    sp.GetRequiredService<ProxyMetrics>(),
    TimeProvider.System,
    sp.GetRequiredService<ILogger<PgFrontConnection>>()));

// The PostgreSQL port is the proxy's own socket listener (see PgListener), opened beside Kestrel's ports.
builder.Services.AddSingleton(sp => new PgListener(
    sp.GetRequiredService<PgFrontServices>(), sp.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>(), bind, sp.GetRequiredService<ILogger<PgListener>>()));
builder.Services.AddHostedService(sp => sp.GetRequiredService<PgListener>());

var app = builder.Build();
app.MapKdbManagementEndpoints(options.ManagementPort);
app.MapHttpFront(options.HttpPort, app.Services.GetRequiredService<PgFrontServices>().Tokens);
app.Run();

/// <summary>Entry point, visible to WebApplicationFactory in tests.</summary>
public partial class Program
{
    private const string InlineCompletionsVariable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";
}

/// <summary>Ready once the PostgreSQL port is open and the first full route table has been loaded.</summary>
internal sealed class RoutesLoadedCheck(IRouteCache routes, PgListener pg) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(!pg.Listening ? HealthCheckResult.Unhealthy("the PostgreSQL port is not open")
            : routes.Loaded ? HealthCheckResult.Healthy($"route version {routes.Version}") : HealthCheckResult.Unhealthy("no route table yet"));
}
