using System.Diagnostics;
using Kdb.Testing.Portal;
using Kdb.Testing.Postgres;
using Kdb.Testing.Processes;
using Microsoft.Playwright;
using Npgsql;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace Kdb.Portal.Tests;

[CollectionDefinition(Name)]
public sealed class ProxyJourneyCollection : ICollectionFixture<ProxyJourneyCloud>
{
    public const string Name = "portal-through-proxy";
}

/// <summary>
/// The whole local cloud as real processes (<see cref="ProcessCloud"/>: control plane with real provisioning, three
/// nodes, the proxy with TLS, the portal) and headless Chromium on the portal.
/// </summary>
public sealed class ProxyJourneyCloud : IAsyncLifetime
{
    private readonly PostgresFixture _postgres = new();
    private TestDatabase? _database;
    private IPlaywright? _playwright;

    public ProcessCloud Cloud { get; private set; } = null!;

    public IBrowser Browser { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        await _postgres.InitializeAsync();
        _database = await _postgres.CreateDatabaseAsync("cloud");
        _playwright = await Playwright.CreateAsync();
        var browser = HeadlessChromium.LaunchAsync(_playwright);
        Cloud = await ProcessCloud.StartAsync(_database.ConnectionString);
        Browser = await browser;
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.DisposeAsync();
        }

        _playwright?.Dispose();
        if (Cloud is not null)
        {
            await Cloud.DisposeAsync();
        }

        if (_database is not null)
        {
            await _database.DisposeAsync();
        }

        await _postgres.DisposeAsync();
    }
}

/// <summary>
/// The self-service journey against the real local cloud: sign up in the portal, create a database, wait for
/// <c>ready</c>, copy the connection strings it shows, and use exactly those with Npgsql and psql through the proxy
/// to three nodes; then back up and restore into a new database from the portal and find the rows there.
/// </summary>
[Collection(ProxyJourneyCollection.Name)]
public sealed class ProxyJourneyTests(ProxyJourneyCloud fixture, ITestOutputHelper output)
{
    private static readonly LocatorGetByLabelOptions Exact = new() { Exact = true };

    [Fact]
    public async Task Journey_SignupCreateCopyConnectionString_WorksThroughTheProxy_BackupRestoreKeepsRows()
    {
        var cloud = fixture.Cloud;
        await using var context = await HeadlessChromium.NewContextAsync(fixture.Browser, cloud.PortalUrl);
        var page = await context.NewPageAsync();
        try
        {
            await ProcessLauncher.WriteLogsOnFailureAsync(output, () => JourneyAsync(cloud, page), cloud.Processes);
        }
        catch
        {
            output.WriteLine("screenshot: " + await BrowserRun.ScreenshotAsync(page, "proxy-journey.failure") + "; page url: " + page.Url);
            throw;
        }
    }

    private async Task JourneyAsync(ProcessCloud cloud, IPage page)
    {
        await page.GotoAsync("/signup");
        await page.GetByLabel("Your name").FillAsync("Proxy Journey");
        await page.GetByLabel("Email").FillAsync("proxy-journey@example.com");
        await page.GetByLabel("Password").FillAsync(Steps.Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign up" }).ClickAsync();
        await page.WaitForURLAsync("**/orgs/*/databases");

        await page.GetByLabel("Database name").FillAsync("shop");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create database" }).ClickAsync();
        var created = page.GetByTestId("created-database");
        await Expect(created.GetByText("you will not see this password again")).ToBeVisibleAsync();
        await Expect(created.Locator(".badge")).ToHaveTextAsync("ready", new() { Timeout = 120_000 });
        await BrowserRun.ScreenshotAsync(page, "proxy-journey-01-ready");
        var password = await created.GetByLabel("Password", Exact).InputValueAsync();
        var npgsql = await CopyAsync(page, "Npgsql (.NET)");
        var psql = await CopyAsync(page, "psql");
        output.WriteLine("copied: " + npgsql.Replace(password, "***", StringComparison.Ordinal));

        // The strings name the proxy (not a node), TLS verified against the cloud's CA, and the database by id.
        var builder = new NpgsqlConnectionStringBuilder(npgsql);
        Assert.Equal(("127.0.0.1", cloud.ProxyPgPort), (builder.Host, builder.Port));
        Assert.Equal(SslMode.VerifyCA, builder.SslMode);
        Assert.Equal(cloud.Tls.CaCertificatePath, builder.RootCertificate);
        Assert.Matches("^db_[0-9a-z]+$", builder.Database);
        Assert.StartsWith($"psql \"postgresql://owner:{Uri.EscapeDataString(password)}@127.0.0.1:{cloud.ProxyPgPort}/{builder.Database}?sslmode=require", psql, StringComparison.Ordinal);

        // Npgsql with exactly the copied string.
        await using (var connection = new NpgsqlConnection(npgsql))
        {
            await connection.OpenAsync();
            await ExecuteAsync(connection, "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)");
            await ExecuteAsync(connection, "INSERT INTO items VALUES (1, 'apple'), (2, 'pear'), (3, 'plum')");
            Assert.Equal("apple,pear,plum", await NamesAsync(connection));
        }

        // The session was TLS, verified against the CA the string names: another CA's root fails the handshake.
        var otherCa = DevelopmentCa.Write(Path.Combine(Path.GetTempPath(), "kdb-other-ca-" + Guid.NewGuid().ToString("N")));
        try
        {
            var wrongRoot = new NpgsqlConnectionStringBuilder(npgsql) { RootCertificate = otherCa.CaCertificatePath, Pooling = false };
            await using var refused = new NpgsqlConnection(wrongRoot.ConnectionString);
            await Assert.ThrowsAnyAsync<NpgsqlException>(() => refused.OpenAsync());
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(otherCa.CaCertificatePath)!, recursive: true);
        }

        // psql, the copied command as a shell runs it, verifying the certificate (sslrootcert in the URI).
        Assert.Equal("apple,pear,plum", (await PsqlAsync(psql, "SELECT string_agg(name, ',' ORDER BY id) FROM items")).Trim());

        // The database page shows the same strings without the password; with it added they work too.
        await created.GetByRole(AriaRole.Link, new() { Name = "Open the database page" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "shop", Level = 1 })).ToBeVisibleAsync();
        var pageNpgsql = await page.GetByLabel("Npgsql (.NET)", new() { Exact = true }).InputValueAsync();
        Assert.DoesNotContain(password, await page.ContentAsync(), StringComparison.Ordinal);
        Assert.Equal(npgsql.Replace($";Password={password}", string.Empty, StringComparison.Ordinal), pageNpgsql);

        // The statements' usage appears on the database's Usage tab (the nodes and the proxy report every second here).
        await page.GetByRole(AriaRole.Navigation, new() { Name = "Database sections" }).GetByRole(AriaRole.Link, new() { Name = "Usage" }).ClickAsync();
        await Steps.ReloadUntilTextAsync(page, page.GetByRole(AriaRole.Table, new() { Name = "Database usage" }), "UTC", attempts: 240);
        await Expect(page.GetByTestId("db-usage-ru")).ToBeVisibleAsync();
        await BrowserRun.ScreenshotAsync(page, "proxy-journey-usage");

        // Back up now, then restore into a new database: the rows are there, through the proxy, with the source's owner password.
        await page.GetByRole(AriaRole.Link, new() { Name = "Backups" }).ClickAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Back up now" }).ClickAsync();
        var row = page.Locator("table[aria-label='Backups'] tbody tr");
        await Steps.ReloadUntilTextAsync(page, row.Locator(".badge").First, "completed", attempts: 360);
        await BrowserRun.ScreenshotAsync(page, "proxy-journey-02-backup");
        await row.First.GetByRole(AriaRole.Button).ClickAsync();
        var restore = page.GetByTestId("restore");
        await restore.GetByLabel("New database name").FillAsync("shop-copy");
        await restore.GetByRole(AriaRole.Button, new() { Name = "Restore" }).ClickAsync();
        await page.WaitForURLAsync("**/databases/db_*?restoring=true");
        await Expect(page.Locator(".facts .badge").First).ToHaveTextAsync("ready", new() { Timeout = 120_000 });
        var copyNpgsql = await page.GetByLabel("Npgsql (.NET)", new() { Exact = true }).InputValueAsync();
        var copy = new NpgsqlConnectionStringBuilder(copyNpgsql);
        Assert.NotEqual(builder.Database, copy.Database);
        Assert.Equal(cloud.ProxyPgPort, copy.Port);
        await using (var connection = new NpgsqlConnection(copyNpgsql + ";Password=" + password))
        {
            await connection.OpenAsync();
            Assert.Equal("apple,pear,plum", await NamesAsync(connection));
        }

        await BrowserRun.ScreenshotAsync(page, "proxy-journey-03-restored");
    }

    // Clicks the field's copy button and reads the clipboard: what a user pastes, not the input's value.
    private static async Task<string> CopyAsync(IPage page, string label)
    {
        var created = page.GetByTestId("created-database");
        await created.GetByRole(AriaRole.Button, new() { Name = "Copy " + label, Exact = true }).ClickAsync();
        var copied = await page.EvaluateAsync<string>("() => navigator.clipboard.readText()");
        Assert.Equal(await created.GetByLabel(label, Exact).InputValueAsync(), copied);
        return copied;
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<string> NamesAsync(NpgsqlConnection connection)
    {
        await using var command = new NpgsqlCommand("SELECT name FROM items ORDER BY id", connection);
        await using var reader = await command.ExecuteReaderAsync();
        var names = new List<string>();
        while (await reader.ReadAsync())
        {
            names.Add(reader.GetString(0));
        }

        return string.Join(',', names);
    }

    private static async Task<string> PsqlAsync(string copiedCommand, string sql)
    {
        var start = new ProcessStartInfo("/bin/sh", ["-c", copiedCommand + " -X -A -t -v ON_ERROR_STOP=1 -c \"$KDB_SQL\""])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["KDB_SQL"] = sql;
        start.Environment["PGCONNECT_TIMEOUT"] = "30";
        using var psql = Process.Start(start)!;
        var stdout = psql.StandardOutput.ReadToEndAsync();
        var stderr = psql.StandardError.ReadToEndAsync();
        await psql.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(psql.ExitCode == 0, $"psql exited {psql.ExitCode}: {await stderr}");
        return await stdout;
    }
}
