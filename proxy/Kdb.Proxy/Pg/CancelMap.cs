using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace Kdb.Proxy.Pg;

/// <summary>
/// The proxy hands clients its own BackendKeyData and remembers which node session each key stands for, so a
/// CancelRequest reaches the right backend without revealing node process ids.
/// </summary>
internal sealed partial class CancelMap(ILogger<CancelMap> logger)
{
    private readonly ConcurrentDictionary<int, Target> _targets = new();
    private int _next = RandomNumberGenerator.GetInt32(1000, 1 << 20);

    /// <summary>Registers a session; returns the key to give the client.</summary>
    public (int ProcessId, int SecretKey) Register(string endpoint, int backendProcessId, int backendSecret)
    {
        int secret = RandomNumberGenerator.GetInt32(int.MinValue, int.MaxValue);
        while (true)
        {
            int pid = Interlocked.Increment(ref _next) & int.MaxValue;
            if (pid != 0 && _targets.TryAdd(pid, new Target(secret, endpoint, backendProcessId, backendSecret)))
            {
                return (pid, secret);
            }
        }
    }

    public void Unregister(int processId) => _targets.TryRemove(processId, out _);

    /// <summary>Forwards a CancelRequest when the key matches; unknown keys are ignored, as PostgreSQL does.</summary>
    public async Task ForwardAsync(int processId, int secretKey, CancellationToken cancellationToken)
    {
        if (!_targets.TryGetValue(processId, out Target? target) || target.Secret != secretKey)
        {
            LogUnknownKey(logger, processId);
            return;
        }

        try
        {
            await BackendConnector.SendCancelAsync(target.Endpoint, target.BackendProcessId, target.BackendSecret, cancellationToken).ConfigureAwait(false);
            LogForwarded(logger, processId, target.Endpoint);
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException or BackendException or OperationCanceledException)
        {
            LogCancelFailed(logger, target.Endpoint, e.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Forwarding a cancel request to {Endpoint} failed: {Reason}")]
    private static partial void LogCancelFailed(ILogger logger, string endpoint, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Cancel request for unknown key {ProcessId} ignored")]
    private static partial void LogUnknownKey(ILogger logger, int processId);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Cancel request for {ProcessId} forwarded to {Endpoint}")]
    private static partial void LogForwarded(ILogger logger, int processId, string endpoint);

    private sealed record Target(int Secret, string Endpoint, int BackendProcessId, int BackendSecret);
}
