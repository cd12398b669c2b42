namespace Kdb.Node.Cluster;

/// <summary>
/// A bounded ReadIndex for the admin streams (exports, change streams). A replica just restarted, or cut off from its
/// leader, may not confirm its group's committed index for a long time; an export that waited on it without a bound
/// held its caller's attempt for as long, while another replica could have served it at once.
/// </summary>
internal static class ReadIndexWait
{
    public static readonly TimeSpan Limit = TimeSpan.FromSeconds(10);

    /// <summary>Null once this replica has applied everything committed before the call; else the 503 to answer.</summary>
    public static async Task<IResult?> CaughtUpAsync(ClusterRuntime runtime, ulong groupId, CancellationToken ct)
    {
        try
        {
            await runtime.Host.ReadIndexAsync(groupId).WaitAsync(Limit, ct);
            return null;
        }
        catch (TimeoutException)
        {
            return Results.Problem(statusCode: 503, title: "Unavailable",
                detail: $"this replica of group {groupId} could not confirm the group's latest commits within {Limit.TotalSeconds:0} s (no leader yet, or it is catching up); ask another replica");
        }
    }
}
