using System.Buffers.Binary;
using Kdb.Provisioning.ControlPlane;
using Kdb.Provisioning.Placement;
using Kdb.Provisioning.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Kdb.Provisioning.Usage;

/// <summary>
/// Reads each alive node's usage records by cursor and posts them to the control plane (source = node id,
/// sequence = the record's sequence). The cursor is saved only after the post succeeded, and the control plane
/// ignores a (source, sequence) it has seen, so a crash in between counts nothing twice: exactly once end to end.
/// </summary>
internal sealed partial class UsageCollector(Fleet fleet, IObjectStore store, ProvisioningOptions options, TimeProvider time, ILogger<UsageCollector> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.UsageInterval <= TimeSpan.Zero)
        {
            return;
        }
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await CollectOnceAsync(stoppingToken);
            }
            catch (Exception e) when (e is HttpRequestException or ControlPlaneRefusedException or Node.Admin.NodeAdminException or TaskCanceledException && !stoppingToken.IsCancellationRequested)
            {
                LogCollectFailed(logger, e.Message);
            }
            await Task.Delay(options.UsageInterval, time, stoppingToken);
        }
    }

    /// <summary>One pass over the alive nodes; returns how many records were posted.</summary>
    public async Task<int> CollectOnceAsync(CancellationToken ct)
    {
        var posted = 0;
        foreach (var node in await fleet.ControlPlane.NodesAsync(ct))
        {
            if (!node.Alive)
            {
                continue;
            }
            var cursorKey = CursorKey(node.NodeId);
            var since = await store.LoadAsync(cursorKey, ct) is { Length: 8 } saved ? BinaryPrimitives.ReadUInt64LittleEndian(saved) : 0UL;
            var usage = await fleet.Admin(node).UsageAsync(since, ct);
            if (usage.Records.Count > 0)
            {
                var rows = usage.Records.Select(r => new UsageRow(
                    node.NodeId, checked((long)r.Sequence), r.DatabaseId, DateTimeOffset.FromUnixTimeSeconds(r.HourStartUnix), r.RowsRead, r.RowsWritten,
                    r.BytesRead, r.BytesWritten, r.StorageBytes, r.CpuMs, 0, r.Connections)).ToList();
                await fleet.ControlPlane.PostUsageAsync(rows, ct);
                posted += rows.Count;
            }
            if (usage.Cursor != since)
            {
                var bytes = new byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(bytes, usage.Cursor);
                await store.StoreAsync(cursorKey, bytes, ct);
            }
        }
        return posted;
    }

    /// <summary>Node ids are free-form strings; the key keeps only what object keys allow, plus a hash against clashes.</summary>
    internal static string CursorKey(string nodeId)
    {
        var safe = new string(nodeId.ToLowerInvariant().Select(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' or '_' ? c : '-').Take(40).ToArray());
        var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(nodeId)))[..12];
        return $"usage/cursors/{safe}-{hash}";
    }

    [LoggerMessage(LogLevel.Debug, "Usage collection pass failed: {Reason}")]
    private static partial void LogCollectFailed(ILogger logger, string reason);
}
