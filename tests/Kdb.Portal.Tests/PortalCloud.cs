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
    public const string ProxySecret = "proxy-secret-0123456789abcdefghijklmnopqrstuvwxyz";
    private const string ProvisioningSecret = "prov-secret-0123456789abcdefghijklmnopqrstuvwxyz";

    private readonly PostgresFixture _postgres = new();
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _gates = new(StringComparer.Ordinal);
    private TestDatabase? _database;
    private WebApplicationFactory<Program>? _controlPlane;
    private HostReceiveEndpointHandle? _provisioning;
    private ILaunchedProcess? _portal;
    private IPlaywright? _playwright;
    private string? _keysDirectory;
    private string? _mailDirectory;

    public Uri ControlPlaneUrl { get; private set; } = null!;

    public Uri PortalUrl { get; private set; } = null!;

    public IBrowser Browser { get; private set; } = null!;

    public HttpClient ControlPlane { get; private set; } = null!;

    public ILaunchedProcess Portal => _portal!;

    /// <summary>Where the control plane's mail sender writes its <c>.eml</c> files (see <see cref="Mailbox"/>).</summary>
    public Mailbox Mail { get; private set; } = null!;

    /// <summary>How many of the control plane's own provisioning consumers the fixture took out (0 when it hosts none).</summary>
    public int RemovedProvisioningConsumers { get; private set; }

    /// <summary>The control plane's warnings and errors.</summary>
    public CapturedLog ControlPlaneLog { get; } = new();

    private readonly ConcurrentDictionary<string, TaskCompletionSource<DatabaseRequested>> _requests = new(StringComparer.Ordinal);

    /// <summary>
    /// Databases whose name starts with this are held in <c>provisioning</c> until <see cref="Release"/>; others
    /// are provisioned at once.
    /// </summary>
    public const string HeldPrefix = "held";

    /// <summary>The size every backup the stand-in takes reports (3 MiB, shown as "3 MiB").</summary>
    public const long BackupSizeBytes = 3L << 20;

    public async Task InitializeAsync()
    {
        await _postgres.InitializeAsync();
        _database = await _postgres.CreateDatabaseAsync("portal");
        var controlPlanePort = FreePorts.Allocate();
        ControlPlaneUrl = new Uri($"http://127.0.0.1:{controlPlanePort}");
        // Chosen before the control plane starts: its mails carry links to the portal.
        var portalPort = FreePorts.Allocate();
        PortalUrl = new Uri($"http://127.0.0.1:{portalPort}");
        _mailDirectory = Directory.CreateTempSubdirectory("kdb-portal-mail-").FullName;
        Mail = new Mailbox(_mailDirectory);
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
            ["RateLimits:PasswordResetRequestsPerMinute"] = "100000",
            ["Mail:Directory"] = _mailDirectory,
            ["Mail:LinkBaseUrl"] = PortalUrl.ToString(),
            // What stays of the embedded provisioning once its consumers are taken out (see ConfigureServices below),
            // its usage collector, talks to a port nobody listens on: there are no nodes to collect from.
            ["Provisioning:ControlPlaneUrl"] = $"http://127.0.0.1:{FreePorts.Allocate()}",
        };
        var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(web =>
        {
            foreach (var (key, value) in settings)
            {
                web.UseSetting(key, value);
            }

            web.ConfigureServices(services =>
            {
                services.AddSingleton<Microsoft.Extensions.Logging.ILoggerProvider>(ControlPlaneLog);

                // The stand-in below is provisioning here: the real consumers the control plane hosts on its in-memory
                // bus would race it and fail (no nodes, no backup objects), so their registrations are taken out.
                var provisioning = services.Where(d => d.ImplementationInstance is MassTransit.Configuration.IConsumerRegistration r
                    && r.Type.Namespace?.StartsWith("Kdb.Provisioning", StringComparison.Ordinal) == true).ToList();
                foreach (var descriptor in provisioning)
                {
                    services.Remove(descriptor);
                }

                RemovedProvisioningConsumers = provisioning.Count;
            });
        });
        factory.UseKestrel();
        factory.StartServer();
        _controlPlane = factory;
        ControlPlane = new HttpClient { BaseAddress = ControlPlaneUrl };
        await WaitReadyAsync(new Uri(ControlPlaneUrl, "/health/ready"));
        await StartProvisioningStandInAsync(factory.Services.GetRequiredService<IBus>());

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
        Browser = await HeadlessChromium.LaunchAsync(_playwright);
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
    public Task<IBrowserContext> NewContextAsync() => HeadlessChromium.NewContextAsync(Browser, PortalUrl);

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

    /// <summary>Moves an org's creation back in time, so it has past monthly statements (no API changes that date).</summary>
    public async Task BackdateOrgAsync(string orgId, TimeSpan age)
    {
        await using var connection = await _database!.OpenConnectionAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = """UPDATE orgs SET "CreatedAt" = now() - @age WHERE "Id" = @id""";
        command.Parameters.AddWithValue("age", age);
        command.Parameters.AddWithValue("id", orgId);
        Assert.Equal(1, await command.ExecuteNonQueryAsync());
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
        foreach (var directory in new[] { _keysDirectory, _mailDirectory })
        {
            if (directory is not null)
            {
                Directory.Delete(directory, recursive: true);
            }
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

            // Backups are "stored" at once and pass a restore drill: the portal shows size and verified badge.
            e.Handler<BackupRequested>(async ctx =>
            {
                var m = ctx.Message;
                var result = new BackupResult(BackupSizeBytes, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(m.BackupId))), 42, "key_portal_tests");
                await ctx.Publish(new BackupCompleted(m.OperationId, DateTimeOffset.UtcNow, m.BackupId, m.DatabaseId, result));
                await ctx.Publish(new BackupVerified("op_" + m.BackupId, DateTimeOffset.UtcNow, m.BackupId, "restore drill: 3 tables, row counts match"));
            });

            // A restore brings back the owner role (with a verifier the control plane records), nothing else.
            e.Handler<RestoreRequested>(ctx =>
            {
                var m = ctx.Message;
                var owner = new RoleVerifier("owner", RoleKind.Owner, Kdb.PgWire.Auth.ScramSha256Verifier.Create("restored owner password").ToString());
                return ctx.Publish(new RestoreCompleted(m.OperationId, DateTimeOffset.UtcNow, m.Target.DatabaseId, [owner]));
            });
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
