using Kdb.ControlPlane.Databases;

namespace Kdb.ControlPlane.Tests;

public sealed class CronScheduleTests
{
    private static readonly DateTimeOffset Start = new(2026, 11, 22, 6, 20, 30, TimeSpan.Zero); // a Sunday

    [Theory]
    [InlineData("* * * * *", "2026-11-22T06:21:00Z")]
    [InlineData("0 3 * * *", "2026-11-23T03:00:00Z")]
    [InlineData("*/15 * * * *", "2026-11-22T06:30:00Z")]
    [InlineData("5/15 * * * *", "2026-11-22T06:35:00Z")]
    [InlineData("0 0 1 * *", "2026-12-01T00:00:00Z")]
    [InlineData("30 6 * * 1-5", "2026-11-23T06:30:00Z")]
    [InlineData("0 12 * * 7", "2026-11-22T12:00:00Z")] // 7 is Sunday too
    [InlineData("0 0 29 2 *", "2028-02-29T00:00:00Z")]
    [InlineData("0 0 13 * 5", "2026-11-27T00:00:00Z")] // both day fields: either matches (Friday the 27th first)
    [InlineData("0,30 8-9 * 1,6 *", "2027-01-01T08:00:00Z")]
    public void Next_FindsTheFirstMatchingMinuteAfter(string cron, string expected) =>
        Assert.Equal(DateTimeOffset.Parse(expected, System.Globalization.CultureInfo.InvariantCulture), CronSchedule.Parse(cron).Next(Start));

    [Fact]
    public void Next_IsStrictlyAfter_EvenOnAMatchingMinute() =>
        Assert.Equal(new DateTimeOffset(2026, 11, 23, 3, 0, 0, TimeSpan.Zero), CronSchedule.Parse("0 3 * * *").Next(new DateTimeOffset(2026, 11, 22, 3, 0, 0, TimeSpan.Zero)));

    [Fact]
    public void Next_NeverFiring_IsNull() => Assert.Null(CronSchedule.Parse("0 0 30 2 *").Next(Start));

    [Theory]
    [InlineData("")]
    [InlineData("* * * *")]
    [InlineData("* * * * * *")]
    [InlineData("60 * * * *")]
    [InlineData("* 24 * * *")]
    [InlineData("* * 0 * *")]
    [InlineData("* * * 13 *")]
    [InlineData("* * * * 8")]
    [InlineData("5-1 * * * *")]
    [InlineData("*/0 * * * *")]
    [InlineData("a * * * *")]
    [InlineData("1,,2 * * * *")]
    [InlineData("-1 * * * *")]
    public void Parse_BadExpression_IsAFormatException(string cron) =>
        Assert.Throws<FormatException>(() => CronSchedule.Parse(cron));
}
