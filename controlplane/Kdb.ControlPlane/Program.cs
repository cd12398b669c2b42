using Kdb.ControlPlane;
using Kdb.ControlPlane.Api;
using Kdb.ControlPlane.Data;
using Kdb.ControlPlane.Databases;
using Kdb.ControlPlane.Identity;
using Kdb.ControlPlane.Internal;
using Kdb.ControlPlane.Mail;
using Kdb.ControlPlane.Usage;
using Kdb.Messaging;
using Kdb.Provisioning;
using Kdb.ServiceDefaults;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Npgsql;

if (args is ["schema-script"])
{
    // Prints the model's create script: the starting point of the next migration's SQL.
    Console.Write(DatabaseSetup.GenerateSchemaScript());
    return;
}

var builder = WebApplication.CreateBuilder(args);
builder.AddKdbServiceDefaults("controlplane");
builder.ListenOn(builder.Configuration.GetPort("ControlPlane:Port", 5100));
// The largest body any endpoint takes; RequestSizeLimits narrows it to 1 MiB everywhere but usage ingestion.
builder.WebHost.ConfigureKestrel(o => o.Limits.MaxRequestBodySize = RequestSizeLimits.UsageLimit);

var postgres = builder.Configuration["Postgres:ConnectionString"];
if (string.IsNullOrWhiteSpace(postgres))
{
    throw new InvalidOperationException("Postgres:ConnectionString (env KDB_Postgres__ConnectionString) is required.");
}

builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddDbContext<ControlPlaneDbContext>(o => DatabaseSetup.Configure(o, postgres));
builder.Services.AddSingleton<StartupState>();
builder.Services.AddHealthChecks()
    .Add(new HealthCheckRegistration("postgres", _ => new PostgresHealthCheck(postgres), HealthStatus.Unhealthy, [ServiceDefaultsExtensions.ReadyTag]))
    .Add(new HealthCheckRegistration("startup", sp => new StartupHealthCheck(sp.GetRequiredService<StartupState>()), HealthStatus.Unhealthy, [ServiceDefaultsExtensions.ReadyTag]));

// Several instances share one Data Protection key ring, kept in PostgreSQL.
builder.Services.AddDataProtection().SetApplicationName("Kdb.Cloud.ControlPlane");
builder.Services.AddSingleton<IConfigureOptions<KeyManagementOptions>>(sp =>
    new ConfigureOptions<KeyManagementOptions>(o => o.XmlRepository = new DbXmlRepository(sp.GetRequiredService<IServiceScopeFactory>())));

builder.Services.Configure<TokenOptions>(builder.Configuration.GetSection(TokenOptions.Section));
builder.Services.AddSingleton<SigningKeyService>();
builder.Services.AddSingleton<TokenIssuer>();
builder.Services.AddSingleton(sp => new RefreshTokenRotator(NpgsqlDataSource.Create(postgres), sp.GetRequiredService<IOptions<TokenOptions>>(), sp.GetRequiredService<TimeProvider>()));
builder.Services.AddSingleton<ServiceClientRegistry>();
builder.Services.AddSingleton<IStartupTask>(sp => sp.GetRequiredService<ServiceClientRegistry>());
builder.Services.AddSingleton<IStartupTask>(sp => sp.GetRequiredService<SigningKeyService>());
builder.Services.AddHostedService<DatabaseMigrator>();
builder.Services.AddHostedService<SigningKeyRotation>();
builder.Services.AddHostedService<OutboxDispatcher>();
builder.Services.AddHostedService<OperationReconciler>();
builder.Services.AddKdbMail(builder.Configuration);
builder.Services.AddSingleton<PasswordResetQueue>();
builder.Services.AddHostedService<PasswordResetMailer>();
builder.Services.AddHostedService<QuotaSweep>();
builder.Services.AddSingleton<QuotaCoalescer>();
builder.Services.AddHostedService(sp => sp.GetRequiredService<QuotaCoalescer>());
builder.Services.AddHostedService<BackupRetention>();
builder.Services.AddHostedService<BackupScheduler>();
builder.Services.AddHostedService<RestoreDrillScheduler>();
builder.Services.AddHostedService<DatabaseRetention>();
builder.Services.AddHostedService<CreationWarmUp>();

builder.Services.AddIdentityCore<User>(o =>
    {
        o.User.RequireUniqueEmail = true;
        o.Password.RequiredLength = 10;
        o.Password.RequireDigit = false;
        o.Password.RequireLowercase = false;
        o.Password.RequireUppercase = false;
        o.Password.RequireNonAlphanumeric = false;
        o.Lockout.MaxFailedAccessAttempts = 5;
        o.Lockout.DefaultLockoutTimeSpan = TimeSpan.FromMinutes(15);
        o.Lockout.AllowedForNewUsers = true;
    })
    .AddEntityFrameworkStores<ControlPlaneDbContext>();

// One scheme per audience, picked by path: /internal takes only service tokens, so the user scheme never
// sees (and logs an audience failure for) a node's heartbeat or a proxy's poll.
builder.Services.AddAuthentication(InternalAuth.ByPath)
    .AddPolicyScheme(InternalAuth.ByPath, "user or service by path", o => o.ForwardDefaultSelector = http =>
        http.Request.Path.StartsWithSegments("/internal", StringComparison.OrdinalIgnoreCase) ? InternalAuth.Scheme : JwtBearerDefaults.AuthenticationScheme)
    .AddJwtBearer();
builder.Services.AddSingleton<IConfigureOptions<JwtBearerOptions>>(sp => new ConfigureNamedOptions<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme, o =>
{
    o.MapInboundClaims = false;
    o.TokenValidationParameters = TokenIssuer.ValidationParameters(
        sp.GetRequiredService<IOptions<TokenOptions>>().Value, sp.GetRequiredService<SigningKeyService>(), KdbAudiences.Api);
}));
builder.Services.AddAuthorization();
builder.Services.AddInternalAuth();
builder.Services.AddSingleton<RouteSignal>();
builder.Services.AddSingleton<OutboxSignal>();
builder.Services.AddSingleton<IProxyTracker, ProxyTracker>();
builder.Services.AddProblemDetails();
builder.Services.AddKdbRateLimits(builder.Configuration);
builder.Services.AddOpenApi("v1");

// In the embedded deployment the provisioning consumers share the control plane's in-memory bus:
// one process cannot hear another's in-memory bus. With RabbitMQ they run in their own worker.
var busOptions = builder.Configuration.GetSection(BusOptions.Section).Get<BusOptions>() ?? new BusOptions();
builder.Services.AddKdbBus(builder.Configuration, bus =>
{
    bus.AddConsumer<DatabaseProvisionedConsumer>();
    bus.AddConsumer<DatabaseProvisioningFailedConsumer>();
    bus.AddConsumer<DatabaseDeletedConsumer>();
    bus.AddConsumer<DatabaseUndeletedConsumer>();
    bus.AddConsumer<BackupCompletedConsumer>();
    bus.AddConsumer<BackupFailedConsumer>();
    bus.AddConsumer<RestoreCompletedConsumer>();
    bus.AddConsumer<RestoreFailedConsumer>();
    bus.AddConsumer<BackupVerifiedConsumer>();
    bus.AddConsumer<RestoreDrillFailedConsumer>();
    bus.AddConsumer<DatabaseMovedConsumer>();
    bus.AddConsumer<DatabaseMoveFailedConsumer>();
    // Provisioning:Embedded=false leaves provisioning out: the control plane's own tests and benchmark stand in
    // for it (publishing its outcome events), and a real one racing them would answer first.
    if (!busOptions.IsRabbitMq && builder.Configuration.GetValue("Provisioning:Embedded", true))
    {
        bus.AddProvisioningConsumers();
    }
});

// Data Protection's own hosted service reads the key ring as the host starts, before DatabaseMigrator has
// created its table (an error logged on every first start). The ring loads on first use instead, which is
// after migrations: the start-up tasks are its first users. Removed last, as
// AddAuthentication and others call AddDataProtection again, which would re-add it.
if (builder.Services.FirstOrDefault(d => d.ServiceType == typeof(IHostedService) && d.ImplementationType?.Name == "DataProtectionHostedService") is { } keyRingWarmup)
{
    builder.Services.Remove(keyRingWarmup);
}

var app = builder.Build();
app.UseExceptionHandler();
app.UseStartupGate();
app.UseRequestSizeLimits();
app.UseStatusCodePages();
app.UseApiAdmission(app.Configuration);
app.UseAuthentication();
app.UseAuthorization();
app.UseRateLimiter();
app.UseAuditLog();
app.UseIdempotencyKeys();
app.MapKdbManagementEndpoints();
app.MapOpenApi("/openapi/{documentName}.json").AllowAnonymous();
app.MapTokenEndpoints();
// Every management-API route is rate limited per user or API key (per IP when anonymous).
var api = app.MapGroup(string.Empty).RequireRateLimiting(RateLimits.ApiPolicy);
api.MapAccountEndpoints();
api.MapOrgEndpoints();
api.MapMemberEndpoints();
app.MapPasswordResetEndpoints();
api.MapApiKeyEndpoints();
api.MapDatabaseEndpoints();
api.MapDatabaseRetentionEndpoints();
api.MapRoleEndpoints();
api.MapBackupEndpoints();
api.MapBackupScheduleEndpoints();
api.MapRestoreEndpoints();
app.MapRouteTableEndpoints();
app.MapNodeEndpoints();
app.MapPlacementEndpoints();
app.MapOperationHeartbeatEndpoints();
app.MapDatabaseMoveEndpoints();
app.MapUsageEndpoints();
app.MapConnectionLogIngestion();
app.MapBackupKeyEndpoints();
api.MapConnectionSecurityEndpoints();
api.MapQuotaEndpoints();
api.MapInvoiceEndpoints();
api.MapAuditLogEndpoints();
app.Run();

/// <summary>Entry point, visible to WebApplicationFactory in tests.</summary>
public partial class Program;
