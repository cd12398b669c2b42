using Kdb.ControlPlane.Data;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Usage;

/// <summary>A stretch of a month under one plan, and the share of the month's base fee it carries.</summary>
public sealed record PlanPeriod(string Plan, DateTimeOffset From, DateTimeOffset To, decimal Share);

/// <summary>
/// Which plan was in effect when (docs/usage-metering.md, "Plan changes"): a change takes effect from the start of
/// the hour in which it was made, so an hour of usage has exactly one plan. Orgs without recorded changes have had
/// their current plan throughout.
/// </summary>
public sealed class PlanHistory
{
    private readonly string _currentPlan;
    private readonly List<(DateTimeOffset EffectiveAt, string From, string To)> _changes;

    private PlanHistory(string currentPlan, List<(DateTimeOffset, string, string)> changes)
    {
        _currentPlan = currentPlan;
        _changes = changes;
        var thresholds = new List<DateTimeOffset> { DateTimeOffset.UnixEpoch };
        foreach (var (at, _, _) in changes)
        {
            if (at > thresholds[^1])
            {
                thresholds.Add(at);
            }
        }

        Thresholds = [.. thresholds];
    }

    /// <summary>
    /// Ascending, distinct hour starts from which the plan may differ, led by the epoch: usage bucketed by
    /// <c>width_bucket(hourStart, Thresholds)</c> has the plan <see cref="PlanOfBucket"/>.
    /// </summary>
    public DateTimeOffset[] Thresholds { get; }

    public static async Task<PlanHistory> LoadAsync(ControlPlaneDbContext db, Org org, CancellationToken ct)
    {
        var changes = await db.OrgPlanChanges.AsNoTracking().Where(c => c.OrgId == org.Id).OrderBy(c => c.At).ThenBy(c => c.Id).ToListAsync(ct);
        return From(org.Plan, changes);
    }

    public static PlanHistory From(string currentPlan, IEnumerable<OrgPlanChange> changes) =>
        new(currentPlan, changes.Select(c => (HourOf(c.At), c.FromPlan, c.ToPlan)).ToList());

    public string PlanOfBucket(int bucket) => PlanAt(Thresholds[Math.Clamp(bucket, 1, Thresholds.Length) - 1]);

    /// <summary>The plan in effect at <paramref name="at"/>: the last change that took effect by then, else the first one's old plan.</summary>
    public string PlanAt(DateTimeOffset at)
    {
        for (var i = _changes.Count - 1; i >= 0; i--)
        {
            if (_changes[i].EffectiveAt <= at)
            {
                return _changes[i].To;
            }
        }

        return _changes.Count > 0 ? _changes[0].From : _currentPlan;
    }

    /// <summary>
    /// The plans of a month, merged per plan in order of first appearance, with their share of the base fee: time
    /// under each plan over the time billed, which is the whole month, or in the org's first month the time since
    /// the hour it was created. The open month's rest is counted at the current plan.
    /// </summary>
    public IReadOnlyList<PlanPeriod> PeriodsOf(DateTimeOffset monthStart, DateTimeOffset orgCreatedAt)
    {
        var monthEnd = monthStart.AddMonths(1);
        var billedFrom = HourOf(orgCreatedAt) > monthStart ? HourOf(orgCreatedAt) : monthStart;
        var starts = new List<DateTimeOffset> { billedFrom };
        foreach (var threshold in Thresholds)
        {
            if (threshold > billedFrom && threshold < monthEnd)
            {
                starts.Add(threshold);
            }
        }

        var billed = (decimal)(monthEnd - billedFrom).Ticks;
        var periods = new List<PlanPeriod>();
        for (var i = 0; i < starts.Count; i++)
        {
            var to = i + 1 < starts.Count ? starts[i + 1] : monthEnd;
            var plan = PlanAt(starts[i]);
            var index = periods.FindIndex(p => p.Plan == plan);
            if (index < 0)
            {
                periods.Add(new PlanPeriod(plan, starts[i], to, 0));
                index = periods.Count - 1;
            }

            var period = periods[index];
            periods[index] = period with { From = period.From < starts[i] ? period.From : starts[i], To = to, Share = period.Share + ((to - starts[i]).Ticks / billed) };
        }

        // One plan all month is the whole fee, exactly.
        return periods.Count == 1 ? [periods[0] with { Share = 1m }] : periods;
    }

    private static DateTimeOffset HourOf(DateTimeOffset at)
    {
        var utc = at.ToUniversalTime();
        return new DateTimeOffset(utc.Year, utc.Month, utc.Day, utc.Hour, 0, 0, TimeSpan.Zero);
    }
}
