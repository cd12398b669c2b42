using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Kdb.Testing.Hosting;
using Kdb.Testing.Ports;
using Kdb.Testing.Postgres;
using Kdb.Testing.Processes;
using Microsoft.AspNetCore.Mvc.Testing;
using Npgsql;

namespace Kdb.Portal.Benchmarks;

/// <summary>
/// What the portal needs to render real pages: a private PostgreSQL 15, the control plane in this process on a
/// real Kestrel port, and the portal as its own process from its build output (as <c>./kdb up</c> runs it).
/// </summary>
internal sealed class BenchCloud : IAsyncDisposable
{
    private const string NodeSecret = "bench-node-secret-0123456789abcdefghijklmnopqrstuvwxyz";
    private const string ProxySecret = "bench-proxy-secret-0123456789abcdefghijklmnopqrstuvwxyz";
    private const string ProvisioningSecret = "bench-prov-secret-0123456789abcdefghijklmnopqrstuvwxyz";

    private readonly List<IAsyncDisposable> _owned = [];
    private readonly List<string> _directories = [];
    private TestDatabase? _database;
    private ILaunchedProcess? _portal;

    public HttpClient ControlPlane { get; private set; } = null!;

    public Uri PortalUrl { get; private set; } = null!;

    /// <summary>The portal's warnings and errors so far, for a run that fails.</summary>
    public IEnumerable<string> PortalProblems =>
        (_portal?.Log ?? string.Empty).Split('\n').Where(l => l.Contains(" fail:", StringComparison.Ordinal) || l.Contains(" warn:", StringComparison.Ordinal));

    public static async Task<BenchCloud> StartAsync()
    {
        var cloud = new BenchCloud();
        try
        {
            await cloud.StartCoreAsync();
            return cloud;
        }
        catch
        {
            await cloud.DisposeAsync();
            throw;
        }
    }

    private async Task StartCoreAsync()
    {
        var postgres = new PostgresFixture();
        await postgres.InitializeAsync();
        _owned.Add(new AsyncDisposer(postgres.DisposeAsync));
        _database = await postgres.CreateDatabaseAsync("portalbench");
        _owned.Add(_database);

        var controlPlanePort = FreePorts.Allocate();
        var portalPort = FreePorts.Allocate();
        PortalUrl = new Uri($"http://127.0.0.1:{portalPort}");
        var mail = Directory.CreateTempSubdirectory("kdb-portal-bench-mail-").FullName;
        var keys = Directory.CreateTempSubdirectory("kdb-portal-bench-keys-").FullName;
        _directories.AddRange([mail, keys]);

        // WebApplicationFactory finds the control plane's content root through MvcTestingAppManifest.json in the
        // current directory; `dotnet run --project` leaves us wherever it was started.
        Directory.SetCurrentDirectory(AppContext.BaseDirectory);
        var unlimited = "100000000";
        var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(web =>
        {
            web.UseSetting("Postgres:ConnectionString", _database.ConnectionString);
            web.UseSetting("ControlPlane:Port", controlPlanePort.ToString(CultureInfo.InvariantCulture));
            web.UseSetting("Tokens:Issuer", $"http://127.0.0.1:{controlPlanePort}");
            web.UseSetting("ServiceClients:Proxy:Secret", ProxySecret);
            web.UseSetting("ServiceClients:Node:Secret", NodeSecret);
            web.UseSetting("ServiceClients:Provisioning:Secret", ProvisioningSecret);
            web.UseSetting("RateLimits:TokenRequestsPerMinute", unlimited);
            web.UseSetting("RateLimits:ApiRequestsPerMinute", unlimited);
            web.UseSetting("Mail:Directory", mail);
            web.UseSetting("Mail:LinkBaseUrl", PortalUrl.ToString());
            // No nodes here: the provisioning consumers the control plane hosts are pointed at a closed port, so
            // they retry quietly rather than fail the seeded backups while pages are timed.
            web.UseSetting("Provisioning:ControlPlaneUrl", $"http://127.0.0.1:{FreePorts.Allocate()}");
            web.UseSetting("Logging:LogLevel:Default", "Critical");
        });
        factory.UseKestrel();
        factory.StartServer();
        _owned.Add(factory);
        ControlPlane = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{controlPlanePort}"), Timeout = TimeSpan.FromSeconds(60) };
        await WaitOkAsync(ControlPlane, "/health/ready");

        _portal = await ProcessLauncher.StartAsync(ProcessSpec.DotNet(RepoPaths.BuiltAssembly("portal/Kdb.Portal")) with
        {
            Name = "portal",
            Environment = new Dictionary<string, string?>
            {
                ["KDB_Portal__Port"] = portalPort.ToString(CultureInfo.InvariantCulture),
                ["KDB_ControlPlane__Url"] = ControlPlane.BaseAddress!.ToString(),
                ["KDB_DataProtection__KeysPath"] = keys,
                ["KDB_Logging__LogLevel__Default"] = "Warning",
                ["ASPNETCORE_ENVIRONMENT"] = "Production",
            },
            Readiness = Readiness.Http(new Uri(PortalUrl, "/health/live")),
            ReadyTimeout = StartBudget,
        });
        _owned.Add(_portal);
    }

    /// <summary>Signs up through the API; returns the user's access token and first org.</summary>
    public async Task<(string Token, string OrgId)> SignupAsync(string email, string password)
    {
        using var signup = await ControlPlane.PostAsJsonAsync(new Uri("/v1/signup", UriKind.Relative), new { email, password, name = "bench" });
        await EnsureAsync(signup, HttpStatusCode.Created, HttpStatusCode.OK);
        var orgId = (await signup.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("org").GetProperty("id").GetString()!;
        return (await GrantAsync(new() { ["grant_type"] = "password", ["username"] = email, ["password"] = password }), orgId);
    }

    public Task<string> ServiceTokenAsync(string client) => GrantAsync(new()
    {
        ["grant_type"] = "client_credentials",
        ["client_id"] = client,
        ["client_secret"] = client == "kdb-node" ? NodeSecret : ProxySecret,
    });

    /// <summary>Sends one API request as <paramref name="token"/>; fails the run on a status other than <paramref name="expected"/>.</summary>
    public async Task<JsonElement> SendAsync(HttpMethod method, string path, string token, object? body, params HttpStatusCode[] expected)
    {
        using var request = new HttpRequestMessage(method, new Uri(path, UriKind.Relative));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        using var response = await ControlPlane.SendAsync(request);
        await EnsureAsync(response, expected.Length == 0 ? [HttpStatusCode.OK] : expected);
        var text = await response.Content.ReadAsStringAsync();
        return text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>
    /// Adds <paramref name="count"/> ready databases to the org straight into the control plane's table, shaped as
    /// provisioning leaves them: creating them through the API would derive a SCRAM verifier each and take minutes.
    /// </summary>
    public async Task SeedDatabasesAsync(string orgId, int count)
    {
        await using var connection = new NpgsqlConnection(_database!.ConnectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = """
            INSERT INTO databases ("Id", "OrgId", "Name", "Status", "QuotaState", "TenantId", "GroupId", "SizeBytes", "CreatedAt", "ReplicaNodeIds")
            SELECT 'db_' || substr(md5(@org || i::text), 1, 16), @org, 'seeded-' || lpad(i::text, 5, '0'), 'ready', 'ok',
                   (floor(random() * 1e15)::bigint << 8) + i, 7, i * 4096, now() - make_interval(secs => i), '{}'
            FROM generate_series(1, @count) AS i
            """;
        command.Parameters.AddWithValue("org", orgId);
        command.Parameters.AddWithValue("count", count);
        await command.ExecuteNonQueryAsync();
        command.CommandText = "ANALYZE databases";
        await command.ExecuteNonQueryAsync();
    }

    public async ValueTask DisposeAsync()
    {
        ControlPlane?.Dispose();
        for (var i = _owned.Count - 1; i >= 0; i--)
        {
            await _owned[i].DisposeAsync();
        }

        foreach (var directory in _directories)
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private async Task<string> GrantAsync(Dictionary<string, string> form)
    {
        using var response = await ControlPlane.PostAsync(new Uri("/connect/token", UriKind.Relative), new FormUrlEncodedContent(form));
        await EnsureAsync(response, HttpStatusCode.OK);
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("access_token").GetString()!;
    }

    private static async Task EnsureAsync(HttpResponseMessage response, params HttpStatusCode[] expected)
    {
        if (Array.IndexOf(expected, response.StatusCode) < 0)
        {
            throw new InvalidOperationException($"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }
    }

    private static readonly TimeSpan StartBudget = TimeSpan.FromMinutes(5);

    private static async Task WaitOkAsync(HttpClient client, string path)
    {
        // Returns as soon as it answers; the budget only has to outlast a machine other runs keep busy.
        var deadline = DateTime.UtcNow + StartBudget;
        while (true)
        {
            try
            {
                using var response = await client.GetAsync(new Uri(path, UriKind.Relative));
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException) when (DateTime.UtcNow < deadline)
            {
                // not listening yet
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"the control plane did not become ready within {StartBudget.TotalSeconds} s");
            }

            await Task.Delay(200);
        }
    }

    private sealed class AsyncDisposer(Func<Task> dispose) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync() => await dispose();
    }
}
