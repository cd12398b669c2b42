namespace Kdb.ControlPlane.Usage;

/// <summary>
/// What each plan charges (USD): a monthly base fee, then per million request units, per GB-hour of storage
/// (GB = 10^9 bytes; each metered hour counts the database's largest size in that hour) and per GB of
/// egress. The free plan charges nothing: its quotas are its limit. See docs/usage-metering.md.
/// </summary>
public sealed record Pricing(decimal BaseFee, decimal PerMillionRequestUnits, decimal PerGbHour, decimal PerEgressGb)
{
    public const string Currency = "USD";

    public static Pricing For(string plan) => plan switch
    {
        "enterprise" => new Pricing(500m, 0.15m, 0.00015m, 0.05m),
        "pro" => new Pricing(25m, 0.20m, 0.0002m, 0.09m),
        _ => new Pricing(0m, 0m, 0m, 0m),
    };

    /// <summary>Money rounded to cents, halves away from zero (per line; the total is the sum of the lines).</summary>
    public static decimal Cents(decimal amount) => Math.Round(amount, 2, MidpointRounding.AwayFromZero);
}
