using System.Net;
using System.Text.Json;
using Kdb.Testing.Ports;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Kdb.Testing.Proxy;

/// <summary>A replica in a route entry (DESIGN: the route table).</summary>
public sealed record TestReplica(string NodeId, string PgEndpoint, string HttpEndpoint);

/// <summary>A role in a route entry.</summary>
public sealed record TestRouteRole(string Name, string Kind, string ScramVerifier);

/// <summary>Limits in a route entry.</summary>
public sealed record TestRouteLimits(int MaxConnections, int StatementsPerSecond);

/// <summary>A route entry with the control plane's JSON shape.</summary>
public sealed record TestRouteEntry(
    string DatabaseId,
    string TenantId,
    string OrgId,
    string? GroupId,
    IReadOnlyList<TestReplica> Replicas,
    string? LeaderNodeId,
    IReadOnlyList<TestRouteRole> Roles,
    string QuotaState,
    TestRouteLimits Limits,
    DateTimeOffset? LockoutResetAt,
    long Version);

/// <summary>A connection-log event as a proxy posts it.</summary>
public sealed record TestConnectionEvent(string? Source, string? DatabaseId, DateTimeOffset? At, string? Kind, string? Reason, string? ClientIp, string? User);

/// <summary>A usage record as a proxy posts it.</summary>
public sealed record TestUsageRecord(string? Source, long Sequence, string? DatabaseId, DateTimeOffset HourStart, long EgressBytes, long Connections);

/// <summary>
/// The control plane's route-table contract served from a test: <c>GET /internal/v1/routes?since=&amp;proxy=</c> (long-poll),
/// <c>GET /internal/v1/routes/{id}</c>, <c>POST /internal/v1/connection-log</c>, <c>POST /internal/v1/usage</c> and <c>/health/live</c>, speaking the
/// same JSON as the real control plane so a real proxy can follow it without the whole control-plane chain.
/// </summary>
public sealed class RouteTableServer : IAsyncDisposable
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, TestRouteEntry> _entries = new(StringComparer.Ordinal);
    private readonly List<(long Version, string Id)> _removals = [];
    private readonly List<TestConnectionEvent> _events = [];
    private readonly List<TestUsageRecord> _usage = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private WebApplication? _app;
    private long _version;
    private int _singleFetches;

    /// <summary>The server's base URL.</summary>
    public Uri BaseAddress { get; private set; } = null!;

    /// <summary>How many single-entry fetches proxies made.</summary>
    public int SingleFetches => Volatile.Read(ref _singleFetches);

    /// <summary>Names that <c>GET /internal/v1/routes/{id}</c> serves although the long-poll does not announce them.</summary>
    public HashSet<string> HiddenFromPoll { get; } = new(StringComparer.Ordinal);

    public static async Task<RouteTableServer> StartAsync()
    {
        var server = new RouteTableServer();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory, EnvironmentName = "Production" });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        app.MapGet("/health/live", () => Results.Ok());
        app.MapGet("/internal/v1/routes", server.PollAsync);
        app.MapGet("/internal/v1/routes/{databaseId}", server.GetOne);
        app.MapPost("/internal/v1/connection-log", server.Ingest);
        app.MapPost("/internal/v1/usage", server.IngestUsage);
        await app.StartAsync();
        server._app = app;
        var bound = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        FreePorts.Reserve(bound.Port);
        server.BaseAddress = new Uri($"http://127.0.0.1:{bound.Port}/");
        return server;
    }

    /// <summary>Adds or replaces an entry (its version is assigned here) and wakes long-polls.</summary>
    public TestRouteEntry Upsert(TestRouteEntry entry)
    {
        lock (_gate)
        {
            var stored = entry with { Version = ++_version };
            _entries[entry.DatabaseId] = stored;
            Pulse();
            return stored;
        }
    }

    /// <summary>Removes an entry and wakes long-polls.</summary>
    public void Remove(string databaseId)
    {
        lock (_gate)
        {
            _entries.Remove(databaseId);
            _removals.Add((++_version, databaseId));
            Pulse();
        }
    }

    /// <summary>The entry of a database, if any.</summary>
    public TestRouteEntry? Get(string databaseId)
    {
        lock (_gate)
        {
            return _entries.GetValueOrDefault(databaseId);
        }
    }

    /// <summary>The events proxies posted so far.</summary>
    public IReadOnlyList<TestConnectionEvent> Events
    {
        get
        {
            lock (_gate)
            {
                return [.. _events];
            }
        }
    }

    /// <summary>The usage records proxies posted so far.</summary>
    public IReadOnlyList<TestUsageRecord> Usage
    {
        get
        {
            lock (_gate)
            {
                return [.. _usage];
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
            _app = null;
        }
    }

    private void Pulse() => Interlocked.Exchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    private async Task<IResult> PollAsync(HttpContext http, long? since)
    {
        if (http.Request.Headers.Authorization.Count == 0)
        {
            return Results.Unauthorized();
        }

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            Task wake;
            lock (_gate)
            {
                wake = _changed.Task;
                if (since is null)
                {
                    return Results.Json(new { version = _version, full = true, upserts = _entries.Values.Where(e => !HiddenFromPoll.Contains(e.DatabaseId)).ToList(), removals = Array.Empty<string>() }, JsonSerializerOptions.Web);
                }

                var upserts = _entries.Values.Where(e => e.Version > since && !HiddenFromPoll.Contains(e.DatabaseId)).ToList();
                var removals = _removals.Where(r => r.Version > since).Select(r => r.Id).ToList();
                if (upserts.Count > 0 || removals.Count > 0 || DateTime.UtcNow >= deadline)
                {
                    return Results.Json(new { version = _version, full = false, upserts, removals }, JsonSerializerOptions.Web);
                }
            }

            await Task.WhenAny(wake, Task.Delay(TimeSpan.FromSeconds(1), http.RequestAborted));
            http.RequestAborted.ThrowIfCancellationRequested();
        }
    }

    private IResult GetOne(HttpContext http, string databaseId)
    {
        Interlocked.Increment(ref _singleFetches);
        if (http.Request.Headers.Authorization.Count == 0)
        {
            return Results.Unauthorized();
        }

        var entry = Get(databaseId);
        return entry is null ? Results.Problem(statusCode: 404, title: "No route for that database.") : Results.Json(entry, JsonSerializerOptions.Web);
    }

    private IResult Ingest(TestConnectionEvent[] events)
    {
        lock (_gate)
        {
            _events.AddRange(events);
        }

        return Results.Accepted();
    }

    private IResult IngestUsage(TestUsageRecord[] records)
    {
        lock (_gate)
        {
            _usage.AddRange(records);
        }

        return Results.Accepted();
    }
}
