using System.Net;
using Kdb.Testing;
using Kdb.Testing.Postgres;
using Microsoft.AspNetCore.Mvc.Testing;

namespace Kdb.ControlPlane.Tests;

[CollectionDefinition(TestCollections.Postgres)]
public sealed class PostgresCollection : ICollectionFixture<PostgresFixture>;

/// <summary>A control plane on a fresh database of the shared private PostgreSQL, ready (migrated, keys made).</summary>
public sealed class ControlPlaneApp : IAsyncDisposable
{
    public const string ProxySecret = "proxy-secret-0123456789abcdefghijklmnopqrstuvwxyz";
    public const string Issuer = "http://controlplane.test";

    private ControlPlaneApp(WebApplicationFactory<Program> factory, TestDatabase database)
    {
        Factory = factory;
        Database = database;
        Client = factory.CreateClient();
    }

    public WebApplicationFactory<Program> Factory { get; }

    public TestDatabase Database { get; }

    public HttpClient Client { get; }

    public static async Task<ControlPlaneApp> StartAsync(PostgresFixture postgres)
    {
        var database = await postgres.CreateDatabaseAsync("cp");
        var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(web =>
        {
            web.UseSetting("Postgres:ConnectionString", database.ConnectionString);
            web.UseSetting("Tokens:Issuer", Issuer);
            web.UseSetting("ServiceClients:Proxy:Secret", ProxySecret);
            web.UseSetting("Logging:LogLevel:Default", "Warning");
        });
        var app = new ControlPlaneApp(factory, database);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            using var ready = await app.Client.GetAsync(new Uri("/health/ready", UriKind.Relative));
            if (ready.StatusCode == HttpStatusCode.OK)
            {
                return app;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("control plane not ready: " + await ready.Content.ReadAsStringAsync());
            }

            await Task.Delay(200);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Factory.DisposeAsync();
        await Database.DisposeAsync();
    }
}
