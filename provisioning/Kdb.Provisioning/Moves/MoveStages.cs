using System.Diagnostics;
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

    /// <summary>From the source's pause to the pause lifted on the target: the write pause (the stages below split it).</summary>
    public const string Pause = "pause";

    /// <summary>In the pause: the last round of changes.</summary>
    public const string PauseLastRound = "pause_last_round";

    /// <summary>In the pause: both copies' digests computed and compared.</summary>
    public const string PauseVerify = "pause_verify";

    /// <summary>In the pause: roles set on the copy, the copy paused, the adopt.</summary>
    public const string PauseAdopt = "pause_adopt";

    /// <summary>In the pause: the placement written to the control plane (the route flip).</summary>
    public const string PauseFlip = "pause_flip";

    /// <summary>In the pause: the quota state carried over and the source copy dropped.</summary>
    public const string PauseDropSource = "pause_drop_source";

    /// <summary>In the pause: the pause lifted on the new copy.</summary>
    public const string PauseLift = "pause_lift";

    private static readonly Meter Meter = new("Kdb.Provisioning.Moves");

    private static readonly StageSeconds Seconds = new(Meter, "kdb_move_stage", "Seconds moves spent in each stage (copy, catch_up, pause)");

    private static readonly Counter<long> Rounds = Meter.CreateCounter<long>(
        "kdb_move_catch_up_rounds", description: "Catch-up rounds moves ran before pausing writes");

    public static void Add(string stage, TimeSpan elapsed) => Seconds.Add(stage, elapsed);

    /// <summary>Adds the time since <paramref name="startedTimestamp"/> to <paramref name="stage"/>; returns the current timestamp.</summary>
    public static long Since(string stage, long startedTimestamp)
    {
        var now = Stopwatch.GetTimestamp();
        Add(stage, Stopwatch.GetElapsedTime(startedTimestamp, now));
        return now;
    }

    public static void AddRounds(int rounds) => Rounds.Add(rounds);
}
