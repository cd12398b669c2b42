using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Kdb.Contracts.V1;
using Kdb.Testing.Hosting;
using Kdb.Testing.Ports;
using Kdb.Testing.Postgres;
using Kdb.Testing.Processes;
using MassTransit;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace Kdb.Portal.Tests;

[CollectionDefinition(Name)]
public sealed class PortalCollection : ICollectionFixture<PortalCloud>
{
    public const string Name = "portal";
}

/// <summary>
/// A small real cloud for the portal: a private PostgreSQL, the control plane in-process on Kestrel (a real
/// port), a stand-in for provisioning on the control plane's bus, the portal as a real process, and Debian's
/// headless Chromium driven by Playwright.
/// </summary>
public sealed class PortalCloud : IAsyncLifetime
{
    public const string NodeSecret = "node-secret-0123456789abcdefghijklmnopqrstuvwxyz";
    private const string ProxySecret = "proxy-secret-0123456789abcdefghijklmnopqrstuvwxyz";
    private const string ProvisioningSecret = "prov-secret-0123456789abcdefghijklmnopqrstuvwxyz";

    private readonly PostgresFixture _postgres = new();
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _gates = new(StringComparer.Ordinal);
    private TestDatabase? _database;
    private WebApplicationFactory<Program>? _controlPlane;
    private HostReceiveEndpointHandle? _provisioning;
    private ILaunchedProcess? _portal;
    private IPlaywright? _playwright;
    private string? _keysDirectory;

    public Uri ControlPlaneUrl { get; private set; } = null!;

    public Uri PortalUrl { get; private set; } = null!;

    public IBrowser Browser { get; private set; } = null!;

    public HttpClient ControlPlane { get; private set; } = null!;

    public ILaunchedProcess Portal => _portal!;

    /// <summary>The control plane's warnings and errors.</summary>
    public CapturedLog ControlPlaneLog { get; } = new();

    private readonly ConcurrentDictionary<string, TaskCompletionSource<DatabaseRequested>> _requests = new(StringComparer.Ordinal);

    /// <summary>
    /// Databases whose name starts with this are held in <c>provisioning</c> until <see cref="Release"/>; others
    /// are provisioned at once.
    /// </summary>
    public const string HeldPrefix = "held";

    public async Task InitializeAsync()
    {
        await _postgres.InitializeAsync();
        _database = await _postgres.CreateDatabaseAsync("portal");
        var controlPlanePort = FreePorts.Allocate();
        ControlPlaneUrl = new Uri($"http://127.0.0.1:{controlPlanePort}");
        var settings = new Dictionary<string, string>
        {
            ["ControlPlane:Port"] = controlPlanePort.ToString(CultureInfo.InvariantCulture),
            ["Postgres:ConnectionString"] = _database.ConnectionString,
            ["Tokens:Issuer"] = ControlPlaneUrl.ToString().TrimEnd('/'),
            ["ServiceClients:Proxy:Secret"] = ProxySecret,
            ["ServiceClients:Node:Secret"] = NodeSecret,
            ["ServiceClients:Provisioning:Secret"] = ProvisioningSecret,
            ["Connection:Host"] = "127.0.0.1",
            ["Logging:LogLevel:Default"] = "Warning",
            // Every portal request refreshes its token (see the portal settings below): allow the traffic.
            ["RateLimits:TokenRequestsPerMinute"] = "100000",
            ["RateLimits:ApiRequestsPerMinute"] = "100000",
        };
        var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(web =>
        {
            foreach (var (key, value) in settings)
            {
                web.UseSetting(key, value);
            }

            web.ConfigureServices(services => services.AddSingleton<Microsoft.Extensions.Logging.ILoggerProvider>(ControlPlaneLog));
        });
        factory.UseKestrel();
        factory.StartServer();
        _controlPlane = factory;
        ControlPlane = new HttpClient { BaseAddress = ControlPlaneUrl };
        await WaitReadyAsync(new Uri(ControlPlaneUrl, "/health/ready"));
        await StartProvisioningStandInAsync(factory.Services.GetRequiredService<IBus>());

        var portalPort = FreePorts.Allocate();
        PortalUrl = new Uri($"http://127.0.0.1:{portalPort}");
        _keysDirectory = Directory.CreateTempSubdirectory("kdb-portal-keys-").FullName;
        _portal = await ProcessLauncher.StartAsync(ProcessSpec.DotNet(RepoPaths.BuiltAssembly("portal/Kdb.Portal")) with
        {
            Name = "portal",
            Environment = new Dictionary<string, string?>
            {
                ["KDB_Portal__Port"] = portalPort.ToString(CultureInfo.InvariantCulture),
                ["KDB_ControlPlane__Url"] = ControlPlaneUrl.ToString(),
                ["KDB_DataProtection__KeysPath"] = _keysDirectory,
                // Longer than the access tokens live: every request refreshes, so rotation is exercised throughout.
                ["KDB_Session__RefreshBefore"] = "01:00:00",
                ["KDB_Logging__Format"] = "simple",
                ["ASPNETCORE_ENVIRONMENT"] = "Production",
            },
            Readiness = Readiness.Http(new Uri(PortalUrl, "/health/live")),
            ReadyTimeout = TimeSpan.FromSeconds(60),
        });

        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = "/usr/bin/chromium",
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"],
        });
    }

    /// <summary>The DatabaseRequested event provisioning received for the database named <paramref name="name"/>.</summary>
    public async Task<DatabaseRequested> RequestForAsync(string name)
    {
        // The outbox publishes after commit, so the event may trail the API's answer a little.
        return await RequestSlot(name).Task.WaitAsync(TimeSpan.FromSeconds(60));
    }

    /// <summary>Lets a held database (see <see cref="HeldPrefix"/>) finish provisioning.</summary>
    public void Release(string databaseName) => Gate(databaseName).TrySetResult();

    /// <summary>A fresh browser context (its own cookies) on the portal, allowed to use the clipboard.</summary>
    public async Task<IBrowserContext> NewContextAsync()
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = PortalUrl.ToString(), ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        await context.GrantPermissionsAsync(["clipboard-read", "clipboard-write"], new BrowserContextGrantPermissionsOptions { Origin = PortalUrl.ToString().TrimEnd('/') });
        context.SetDefaultTimeout(20_000);
        return context;
    }

    /// <summary>Signs a user up through the API and returns an access token and their first org.</summary>
    public async Task<(string Token, string OrgId)> SignupThroughApiAsync(string email, string password)
    {
        using var signup = await ControlPlane.PostAsJsonAsync("/v1/signup", new { email, password, name = email.Split('@')[0] });
        signup.EnsureSuccessStatusCode();
        var orgId = (await signup.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("org").GetProperty("id").GetString()!;
        var token = await TokenAsync(new Dictionary<string, string> { ["grant_type"] = "password", ["username"] = email, ["password"] = password });
        return (token!, orgId);
    }

    /// <summary>An access token from the token endpoint, or null when refused.</summary>
    public async Task<string?> TokenAsync(Dictionary<string, string> form)
    {
        using var response = await ControlPlane.PostAsync(new Uri("/connect/token", UriKind.Relative), new FormUrlEncodedContent(form));
        return response.IsSuccessStatusCode ? (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("access_token").GetString() : null;
    }

    /// <summary>Calls the management or internal API directly.</summary>
    public async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpMethod method, string path, string token, object? body = null)
    {
        using var request = new HttpRequestMessage(method, new Uri(path, UriKind.Relative));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        using var response = await ControlPlane.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.DisposeAsync();
        }

        _playwright?.Dispose();
        if (_portal is not null)
        {
            await _portal.DisposeAsync();
        }

        foreach (var gate in _gates.Values)
        {
            gate.TrySetResult();
        }

        if (_provisioning is not null)
        {
            await _provisioning.StopAsync();
        }

        ControlPlane?.Dispose();
        if (_controlPlane is not null)
        {
            await _controlPlane.DisposeAsync();
        }

        if (_database is not null)
        {
            await _database.DisposeAsync();
        }

        await _postgres.DisposeAsync();
        if (_keysDirectory is not null)
        {
            Directory.Delete(_keysDirectory, recursive: true);
        }
    }

    private TaskCompletionSource<DatabaseRequested> RequestSlot(string name) =>
        _requests.GetOrAdd(name, _ => new TaskCompletionSource<DatabaseRequested>(TaskCreationOptions.RunContinuationsAsynchronously));

    private TaskCompletionSource Gate(string name) =>
        _gates.GetOrAdd(name, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    private async Task StartProvisioningStandInAsync(IBus bus)
    {
        _provisioning = bus.ConnectReceiveEndpoint("portal-test-provisioning-" + Guid.NewGuid().ToString("N"), e =>
        {
            e.Handler<DatabaseRequested>(async ctx =>
            {
                var name = await DatabaseNameAsync(ctx.Message.DatabaseId);
                RequestSlot(name).TrySetResult(ctx.Message);
                if (name.StartsWith(HeldPrefix, StringComparison.Ordinal))
                {
                    // Held in the background: the consumer returns, so redeliveries cannot pile up behind it.
                    _ = Task.Run(async () =>
                    {
                        await Gate(name).Task;
                        await bus.Publish(new DatabaseProvisioned(ctx.Message.OperationId, DateTimeOffset.UtcNow, ctx.Message.DatabaseId, 7));
                    });
                    return;
                }

                await ctx.Publish(new DatabaseProvisioned(ctx.Message.OperationId, DateTimeOffset.UtcNow, ctx.Message.DatabaseId, 7));
            });
            e.Handler<DatabaseDeletionRequested>(ctx =>
                ctx.Publish(new DatabaseDeleted(ctx.Message.OperationId, DateTimeOffset.UtcNow, ctx.Message.DatabaseId)));
        });
        await _provisioning.Ready;
    }

    // The event carries no name; the stand-in looks it up the way an operator would, in the control plane's store.
    private async Task<string> DatabaseNameAsync(string databaseId)
    {
        await using var connection = await _database!.OpenConnectionAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = """SELECT "Name" FROM databases WHERE "Id" = @id""";
        command.Parameters.AddWithValue("id", databaseId);
        return (string)(await command.ExecuteScalarAsync())!;
    }

    private async Task WaitReadyAsync(Uri url)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                using var response = await ControlPlane.GetAsync(url);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("control plane not ready at " + url);
            }

            await Task.Delay(200);
        }
    }
}
