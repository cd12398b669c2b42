using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Kdb.ControlPlane.Tests;

/// <summary>Keeps every log line of a control plane, for tests that look for (or must not find) a message.</summary>
internal sealed class CapturingLoggerProvider : ILoggerProvider
{
    public ConcurrentQueue<string> Messages { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Capturing(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Capturing(CapturingLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner.Messages.Enqueue($"{logLevel} {category}: {formatter(state, exception)} {exception} {state}");
    }
}

internal static class Eventually
{
    /// <summary>Probes until it answers a value (generously: never fails on a slow machine before 30 s).</summary>
    public static async Task<T> WaitAsync<T>(Func<Task<T?>> probe, string what)
        where T : struct
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            if (await probe() is { } done)
            {
                return done;
            }

            Assert.True(DateTime.UtcNow < deadline, $"{what}: not reached within 30 s");
            await Task.Delay(50);
        }
    }
}

/// <summary>
/// A proxy following the route table as the real one does: one full fetch, then long polls from the version it
/// holds. Each answer is applied after <c>applyDelay</c> (a slow proxy) and only then is the next poll sent, so the
/// control plane learns the proxy holds a version only once it really does.
/// </summary>
internal sealed class TestProxy(ControlPlaneApp app, string proxyId, TimeSpan applyDelay) : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, JsonElement> _entries = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;
    private int _polls;

    /// <summary>The route entries the proxy holds, by database id.</summary>
    public IReadOnlyDictionary<string, JsonElement> Entries => _entries;

    public async Task StartAsync()
    {
        var token = await app.ServiceTokenAsync("kdb-proxy", ControlPlaneApp.ProxySecret);
        var full = await app.SendAsync(HttpMethod.Get, $"/internal/v1/routes?proxy={proxyId}", token);
        Assert.Equal(HttpStatusCode.OK, full.Status);
        var version = Apply(full.Body);
        _loop = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                Interlocked.Increment(ref _polls);
                var delta = await app.SendAsync(HttpMethod.Get, $"/internal/v1/routes?since={version}&proxy={proxyId}", token);
                Assert.Equal(HttpStatusCode.OK, delta.Status);
                await Task.Delay(applyDelay);
                version = Apply(delta.Body);
            }
        });
        await Eventually.WaitAsync(() => Task.FromResult(Volatile.Read(ref _polls) > 0 ? true : (bool?)null), "the proxy polls");
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_loop is not null)
        {
            // The last poll ends with the long-poll timeout; its outcome no longer matters.
            await Task.WhenAny(_loop, Task.Delay(TimeSpan.FromSeconds(10)));
        }

        _stop.Dispose();
    }

    private long Apply(JsonElement body)
    {
        foreach (var entry in body.GetProperty("upserts").EnumerateArray())
        {
            _entries[entry.GetProperty("databaseId").GetString()!] = entry.Clone();
        }

        foreach (var removal in body.GetProperty("removals").EnumerateArray())
        {
            _entries.TryRemove(removal.GetString()!, out _);
        }

        return body.GetProperty("version").GetInt64();
    }
}
