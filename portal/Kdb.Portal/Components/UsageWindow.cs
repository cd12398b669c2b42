using System.Globalization;

namespace Kdb.Portal.Components;

/// <summary>The window a usage page shows: whole buckets up to the end of the current hour or day, back 48 hours or 30 days.</summary>
public static class UsageWindow
{
    /// <summary>The API query (<c>granularity</c>, <c>from</c>, <c>to</c>) for the window ending after <paramref name="now"/>.</summary>
    public static string Query(bool day, DateTimeOffset now)
    {
        var to = day ? new DateTimeOffset(now.UtcDateTime.Date.AddDays(1), TimeSpan.Zero) : new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, 0, 0, TimeSpan.Zero).AddHours(1);
        var from = day ? to.AddDays(-30) : to.AddHours(-48);
        return $"granularity={(day ? "day" : "hour")}"
            + $"&from={Uri.EscapeDataString(from.ToString("O", CultureInfo.InvariantCulture))}"
            + $"&to={Uri.EscapeDataString(to.ToString("O", CultureInfo.InvariantCulture))}";
    }
}
