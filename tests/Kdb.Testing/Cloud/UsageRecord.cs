namespace Kdb.Testing.Cloud;

/// <summary>
/// One usage record as a node or the proxy reports it (<c>POST /internal/v1/usage</c>, a JSON array of these with the web
/// defaults' camelCase names). <paramref name="Source"/> and <paramref name="Sequence"/> identify it for deduplication.
/// </summary>
public sealed record UsageRecord(
    string Source,
    long Sequence,
    string DatabaseId,
    DateTimeOffset HourStart,
    long RowsRead = 0,
    long RowsWritten = 0,
    long BytesRead = 0,
    long BytesWritten = 0,
    long StorageBytes = 0,
    long CpuMs = 0,
    long EgressBytes = 0,
    long Connections = 1)
{
    /// <summary>The start of the current UTC hour, which the control plane bills a record to.</summary>
    public static DateTimeOffset CurrentHour(TimeProvider? time = null)
    {
        var now = (time ?? TimeProvider.System).GetUtcNow();
        return new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, 0, 0, TimeSpan.Zero);
    }
}
