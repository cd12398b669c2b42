using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Kdb.ControlPlane.Data;

/// <summary>Wires the DbContext and brings the schema up to date.</summary>
public static class DatabaseSetup
{
    public static void Configure(DbContextOptionsBuilder options, string connectionString) =>
        options.UseNpgsql(connectionString)
            // Migrations carry SQL bodies and no model snapshot (see Migrations.cs); the schema test guards drift.
            .ConfigureWarnings(w => w.Ignore(RelationalEventId.PendingModelChangesWarning));

    /// <summary>The model's create script, for writing the next migration.</summary>
    public static string GenerateSchemaScript()
    {
        var options = new DbContextOptionsBuilder<ControlPlaneDbContext>();
        Configure(options, "Host=localhost;Database=schema");
        using var context = new ControlPlaneDbContext(options.Options);
        return context.Database.GenerateCreateScript();
    }
}

/// <summary>Whether start-up work that readiness depends on has finished.</summary>
public sealed class StartupState
{
    private volatile string? _pending = "migrations have not run yet";

    public bool IsReady => _pending is null;

    public string? Pending => _pending;

    public void Set(string? pending) => _pending = pending;
}

/// <summary>
/// Until the start-up work is done, every request but health, metrics and build info is answered 503 with
/// Retry-After: before the signing keys are loaded a valid token would be refused (401), the JWKS would be empty and
/// the token endpoint would fail (500), so a node or proxy reaching a restarting control plane would be misled.
/// </summary>
public static class StartupGate
{
    private static readonly string[] AlwaysOpen = ["/health", "/metrics", "/build_info"];

    public static IApplicationBuilder UseStartupGate(this IApplicationBuilder app)
    {
        var state = app.ApplicationServices.GetRequiredService<StartupState>();
        return app.Use(async (http, next) =>
        {
            if (state.IsReady || Array.Exists(AlwaysOpen, p => http.Request.Path.StartsWithSegments(p, StringComparison.OrdinalIgnoreCase)))
            {
                await next(http);
                return;
            }

            http.Response.Headers.RetryAfter = "1";
            await Results.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "The control plane is starting", detail: state.Pending).ExecuteAsync(http);
        });
    }
}

/// <summary>Ready only when the schema is migrated and keys and service clients are ensured.</summary>
internal sealed class StartupHealthCheck(StartupState state) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(state.IsReady ? HealthCheckResult.Healthy("migrated") : HealthCheckResult.Unhealthy(state.Pending));
}

/// <summary>
/// Applies migrations, then the start-up ensures, retrying while PostgreSQL is unreachable: a control
/// plane started before its database reports not-ready instead of crashing.
/// </summary>
internal sealed partial class DatabaseMigrator(
    IServiceScopeFactory scopes,
    StartupState state,
    IEnumerable<IStartupTask> tasks,
    ILogger<DatabaseMigrator> logger,
    TimeProvider time) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using (var scope = scopes.CreateAsyncScope())
                {
                    var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
                    await db.Database.MigrateAsync(stoppingToken);
                }

                // The tasks are independent (service clients, signing keys): side by side, one's query waits on
                // PostgreSQL while the other's is compiled, which shortens a restart on a busy machine.
                state.Set("running start-up tasks " + string.Join(", ", tasks.Select(t => t.GetType().Name)));
                await Task.WhenAll(tasks.Select(t => t.RunAsync(stoppingToken)));

                state.Set(null);
                LogMigrated(logger);
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                state.Set($"database not ready: {ex.Message}");
                LogRetry(logger, ex.Message);
                await Task.Delay(TimeSpan.FromSeconds(2), time, stoppingToken);
            }
        }
    }

    [LoggerMessage(LogLevel.Information, "Control-plane schema is up to date")]
    private static partial void LogMigrated(ILogger logger);

    [LoggerMessage(LogLevel.Warning, "Control-plane database not ready, retrying: {Reason}")]
    private static partial void LogRetry(ILogger logger, string reason);
}

/// <summary>Work that must finish after migrations and before the control plane reports ready.</summary>
public interface IStartupTask
{
    Task RunAsync(CancellationToken cancellationToken);
}
