using System.Net;
using System.Net.Sockets;

namespace Kdb.Testing.Processes;

/// <summary>Ready-made <see cref="IReadinessProbe"/>s.</summary>
public static class Readiness
{
    /// <summary>Ready when a GET of <paramref name="url"/> answers 200.</summary>
    public static IReadinessProbe Http(Uri url) => new HttpProbe(url);

    /// <summary>Ready when a GET of <paramref name="url"/> answers 200.</summary>
    public static IReadinessProbe Http(string url) => new HttpProbe(new Uri(url, UriKind.Absolute));

    /// <summary>Ready when a TCP connection to <paramref name="host"/>:<paramref name="port"/> is accepted.</summary>
    public static IReadinessProbe Tcp(int port, string host = "127.0.0.1") => new TcpProbe(host, port);

    /// <summary>Ready when the captured output (stdout or stderr) contains <paramref name="text"/> (ordinal).</summary>
    public static IReadinessProbe LogContains(string text) => new LogProbe(text);

    /// <summary>Ready when every probe is ready, checked in order.</summary>
    public static IReadinessProbe All(params IReadinessProbe[] probes) => new AllProbe(probes);

    /// <summary>Ready when <paramref name="check"/> returns true; exceptions it throws count as "not yet".</summary>
    public static IReadinessProbe Custom(string description, Func<CancellationToken, ValueTask<bool>> check) =>
        new CustomProbe(description, check);

    private sealed class HttpProbe(Uri url) : IReadinessProbe
    {
        // One client for all probes: each poll is a new request, and no proxy may intercept loopback calls.
        private static readonly HttpClient Client = new(new SocketsHttpHandler
        {
            UseProxy = false,
            PooledConnectionLifetime = TimeSpan.FromSeconds(5),
        })
        {
            Timeout = TimeSpan.FromSeconds(5),
        };

        public string Description => $"HTTP 200 from {url}";

        public async ValueTask<bool> IsReadyAsync(ILaunchedProcess process, CancellationToken cancellationToken)
        {
            try
            {
                using var response = await Client.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
                return response.StatusCode == HttpStatusCode.OK;
            }
            catch (HttpRequestException)
            {
                return false;
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return false;
            }
        }
    }

    private sealed class TcpProbe(string host, int port) : IReadinessProbe
    {
        public string Description => $"TCP connection accepted on {host}:{port}";

        public async ValueTask<bool> IsReadyAsync(ILaunchedProcess process, CancellationToken cancellationToken)
        {
            using var client = new TcpClient();
            try
            {
                await client.ConnectAsync(host, port, cancellationToken);
                return true;
            }
            catch (SocketException)
            {
                return false;
            }
        }
    }

    private sealed class LogProbe(string text) : IReadinessProbe
    {
        public string Description => $"output contains \"{text}\"";

        public ValueTask<bool> IsReadyAsync(ILaunchedProcess process, CancellationToken cancellationToken) =>
            ValueTask.FromResult(process.LogContains(text));
    }

    private sealed class AllProbe(IReadinessProbe[] probes) : IReadinessProbe
    {
        public string Description => string.Join(" and ", probes.Select(p => p.Description));

        public async ValueTask<bool> IsReadyAsync(ILaunchedProcess process, CancellationToken cancellationToken)
        {
            foreach (var probe in probes)
            {
                if (!await probe.IsReadyAsync(process, cancellationToken))
                {
                    return false;
                }
            }

            return true;
        }
    }

    private sealed class CustomProbe(string description, Func<CancellationToken, ValueTask<bool>> check) : IReadinessProbe
    {
        public string Description => description;

        public async ValueTask<bool> IsReadyAsync(ILaunchedProcess process, CancellationToken cancellationToken)
        {
            try
            {
                return await check(cancellationToken);
            }
            catch (Exception) when (!cancellationToken.IsCancellationRequested)
            {
                return false;
            }
        }
    }
}
