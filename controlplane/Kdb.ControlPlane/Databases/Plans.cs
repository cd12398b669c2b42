using Kdb.Contracts.V1;

namespace Kdb.ControlPlane.Databases;

/// <summary>What each plan allows. Limits travel to the data plane in <see cref="DatabaseLimits"/>.</summary>
public sealed record PlanLimits(int DatabasesPerOrg, int MaxConnections, int StatementsPerSecond, long MaxStorageBytes)
{
    public static PlanLimits For(string plan) => plan switch
    {
        "enterprise" => new PlanLimits(1000, 1000, 10_000, 1L << 40),
        "pro" => new PlanLimits(50, 200, 1_000, 100L << 30),
        _ => new PlanLimits(3, 20, 100, 1L << 30),
    };

    public DatabaseLimits ToDatabaseLimits() => new(MaxConnections, StatementsPerSecond, MaxStorageBytes);
}
