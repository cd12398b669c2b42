using System.Diagnostics.Metrics;

namespace Kdb.Provisioning.Moves;

/// <summary>
/// Where moves spend their time, as counters of seconds per stage (<c>kdb_move_stage_seconds_total{stage}</c>) and of
/// catch-up rounds: the write pause is the figure a tenant feels, the copy before it only costs the nodes.
/// </summary>
internal static class MoveStages
{
    /// <summary>The first copy (a change stream since index 0), writes going on.</summary>
    public const string Copy = "copy";

    /// <summary>Catch-up rounds after the first copy, writes going on.</summary>
    public const string CatchUp = "catch_up";

    /// <summary>From the source's pause to the pause lifted on the target: the write pause.</summary>
    public const string Pause = "pause";

    private static readonly Meter Meter = new("Kdb.Provisioning.Moves");

    private static readonly StageSeconds Seconds = new(Meter, "kdb_move_stage", "Seconds moves spent in each stage (copy, catch_up, pause)");

    private static readonly Counter<long> Rounds = Meter.CreateCounter<long>(
        "kdb_move_catch_up_rounds", description: "Catch-up rounds moves ran before pausing writes");

    public static void Add(string stage, TimeSpan elapsed) => Seconds.Add(stage, elapsed);

    public static void AddRounds(int rounds) => Rounds.Add(rounds);
}
