using System.Net;
using System.Text.Json;
using Kdb.Testing;
using Kdb.Testing.Postgres;

namespace Kdb.ControlPlane.Tests;

[Collection(TestCollections.Postgres)]
public sealed class OpenApiTests(PostgresFixture postgres) : IAsyncLifetime
{
    private ControlPlaneApp _app = null!;

    public async Task InitializeAsync() => _app = await ControlPlaneApp.StartAsync(postgres);

    public async Task DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task Document_DescribesTheManagementApi()
    {
        using var response = await _app.Client.GetAsync(new Uri("/openapi/v1.json", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());

        Assert.StartsWith("3.", doc.RootElement.GetProperty("openapi").GetString(), StringComparison.Ordinal);
        var paths = doc.RootElement.GetProperty("paths");
        foreach (var path in new[] { "/v1/signup", "/v1/me", "/v1/orgs", "/v1/orgs/{orgId}/databases", "/v1/databases/{databaseId}", "/v1/databases/{databaseId}/roles", "/v1/orgs/{orgId}/api-keys", "/v1/operations/{operationId}", "/v1/databases/{databaseId}/usage" })
        {
            Assert.True(paths.TryGetProperty(path, out _), $"{path} is missing from the document");
        }
    }
}
