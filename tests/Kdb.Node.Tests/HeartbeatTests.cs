using System.Collections.Concurrent;
using System.Text.Json;
using Kdb.Node.ControlPlane;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kdb.Node.Tests;

/// <summary>The node's heartbeat client against a scripted control plane on loopback.</summary>
public sealed class HeartbeatTests : IAsyncLifetime
{
    private const string Secret = "node-secret-0123456789abcdefghijklmnopqrstuvwxyz";
    private readonly ConcurrentQueue<(string Path, string? Authorization, string Body)> _heartbeats = new();
    private int _tokenRequests;
    private WebApplication _controlPlane = null!;
    private Uri _baseAddress = null!;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _controlPlane = builder.Build();
        _controlPlane.MapPost("/connect/token", async (HttpContext http) =>
        {
            Interlocked.Increment(ref _tokenRequests);
            var form = await http.Request.ReadFormAsync();
            return form["grant_type"] == "client_credentials" && form["client_id"] == "kdb-node" && form["client_secret"] == Secret
                ? Results.Json(new Dictionary<string, object> { ["access_token"] = "token-" + _tokenRequests, ["expires_in"] = 3600, ["token_type"] = "Bearer" })
                : Results.Json(new { error = "invalid_client" }, statusCode: 401);
        });
        _controlPlane.MapPost("/internal/v1/nodes/{nodeId}/heartbeat", async (HttpContext http, string nodeId) =>
        {
            using var reader = new StreamReader(http.Request.Body);
            _heartbeats.Enqueue((http.Request.Path, http.Request.Headers.Authorization.ToString(), await reader.ReadToEndAsync()));
            return Results.NoContent();
        });
        await _controlPlane.StartAsync();
        _baseAddress = new Uri(_controlPlane.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
    }

    public async Task DisposeAsync() => await _controlPlane.DisposeAsync();

    [Fact]
    public async Task Beat_SendsTheNodeWithAServiceToken_FetchedOnceAndCached()
    {
        using var dir = new TempDir();
        var identity = NodeIdentity.LoadOrCreate(dir.Path);
        var service = Service(identity, Secret);

        await service.BeatAsync(CancellationToken.None);
        await service.BeatAsync(CancellationToken.None);

        Assert.Equal(2, _heartbeats.Count);
        Assert.Equal(1, _tokenRequests);
        var (path, authorization, body) = _heartbeats.First();
        Assert.Equal($"/internal/v1/nodes/{identity.NodeId}/heartbeat", path);
        Assert.Equal("Bearer token-1", authorization);
        using var doc = JsonDocument.Parse(body);
        Assert.Equal("127.0.0.1:7001", doc.RootElement.GetProperty("pgEndpoint").GetString());
        Assert.Equal(100, doc.RootElement.GetProperty("capacity").GetInt32());
    }

    [Fact]
    public async Task Beat_WrongSecret_FailsClearlyAndSendsNothing()
    {
        using var dir = new TempDir();
        var service = Service(NodeIdentity.LoadOrCreate(dir.Path), "wrong");

        var ex = await Assert.ThrowsAsync<HttpRequestException>(() => service.BeatAsync(CancellationToken.None));

        Assert.Contains("refused the kdb-node credentials", ex.Message, StringComparison.Ordinal);
        Assert.Empty(_heartbeats);
    }

    private HeartbeatService Service(NodeIdentity identity, string secret)
    {
        var http = new HttpClient { BaseAddress = _baseAddress };
        var tokens = new ServiceTokenClient(http, new ServiceClientOptions { Id = "kdb-node", Secret = secret }, TimeProvider.System);
        return new HeartbeatService(http, tokens, identity, () => new HeartbeatBody("127.0.0.1:7001", "127.0.0.1:7101", "http://127.0.0.1:7201", 100, []),
            new HeartbeatStatus(), TimeProvider.System, NullLogger<HeartbeatService>.Instance, TimeSpan.FromSeconds(5));
    }
}
