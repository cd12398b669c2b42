using System.Net.Sockets;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Kdb.ServiceDefaults;

/// <summary>Ready only while an HTTP dependency answers its liveness URL with a success status.</summary>
public sealed class HttpDependencyHealthCheck(IHttpClientFactory clients, Uri url) : IHealthCheck
{
    /// <inheritdoc />
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(2));
            using var client = clients.CreateClient("kdb-health");
            using var response = await client.GetAsync(url, timeout.Token);
            return response.IsSuccessStatusCode
                ? HealthCheckResult.Healthy($"{url} answered {(int)response.StatusCode}")
                : HealthCheckResult.Unhealthy($"{url} answered {(int)response.StatusCode}");
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException)
        {
            return HealthCheckResult.Unhealthy($"{url} unreachable: {ex.Message}");
        }
    }
}

/// <summary>Ready only while a TCP dependency accepts connections (a broker, a database server).</summary>
public sealed class TcpDependencyHealthCheck(string host, int port) : IHealthCheck
{
    /// <inheritdoc />
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(2));
            using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(host, port, timeout.Token);
            return HealthCheckResult.Healthy($"{host}:{port} accepts connections");
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException)
        {
            return HealthCheckResult.Unhealthy($"{host}:{port} unreachable: {ex.Message}");
        }
    }
}

/// <summary>Ready only while a directory can be written (a node's data directory).</summary>
public sealed class WritableDirectoryHealthCheck(string directory) : IHealthCheck
{
    /// <inheritdoc />
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            Directory.CreateDirectory(directory);
            var probe = Path.Combine(directory, ".health-probe");
            File.WriteAllText(probe, "ok");
            File.Delete(probe);
            return Task.FromResult(HealthCheckResult.Healthy($"{directory} is writable"));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy($"{directory} is not writable: {ex.Message}"));
        }
    }
}
