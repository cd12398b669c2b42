using System.Globalization;

namespace Kdb.ControlPlane.Databases;

/// <summary>
/// A five-field cron expression (minute hour day-of-month month day-of-week, UTC): <c>*</c>, numbers,
/// ranges <c>a-b</c>, steps <c>*/n</c> and <c>a-b/n</c>, lists with commas; day-of-week 0–7 with 0 and 7 both
/// Sunday. As in Vixie cron, when both day fields are restricted a day matching either one fires.
/// </summary>
public sealed class CronSchedule
{
    private readonly ulong _minutes;
    private readonly uint _hours;
    private readonly uint _days;
    private readonly ushort _months;
    private readonly byte _weekdays;
    private readonly bool _daysRestricted;
    private readonly bool _weekdaysRestricted;

    private CronSchedule(string text, ulong minutes, uint hours, uint days, ushort months, byte weekdays, bool daysRestricted, bool weekdaysRestricted)
    {
        Text = text;
        _minutes = minutes;
        _hours = hours;
        _days = days;
        _months = months;
        _weekdays = weekdays;
        _daysRestricted = daysRestricted;
        _weekdaysRestricted = weekdaysRestricted;
    }

    public string Text { get; }

    /// <summary>Parses <paramref name="text"/>; a <see cref="FormatException"/> says which field is wrong.</summary>
    public static CronSchedule Parse(string? text)
    {
        var fields = (text ?? string.Empty).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (fields.Length != 5)
        {
            throw new FormatException("a cron expression has five fields: minute hour day-of-month month day-of-week");
        }

        var minutes = Field(fields[0], "minute", 0, 59);
        var hours = Field(fields[1], "hour", 0, 23);
        var days = Field(fields[2], "day-of-month", 1, 31);
        var months = Field(fields[3], "month", 1, 12);
        var weekdays = Field(fields[4], "day-of-week", 0, 7);
        if ((weekdays & (1UL << 7)) != 0)
        {
            weekdays = (weekdays | 1UL) & ~(1UL << 7);
        }

        return new CronSchedule(string.Join(' ', fields), minutes, (uint)hours, (uint)days, (ushort)months, (byte)weekdays, fields[2] != "*", fields[4] != "*");
    }

    /// <summary>The first minute strictly after <paramref name="after"/> that matches, or null when none does within five years.</summary>
    public DateTimeOffset? Next(DateTimeOffset after)
    {
        var utc = after.UtcDateTime;
        var t = new DateTime(utc.Year, utc.Month, utc.Day, utc.Hour, utc.Minute, 0, DateTimeKind.Utc).AddMinutes(1);
        var limit = t.AddYears(5);
        while (t < limit)
        {
            if ((_months & (1 << t.Month)) == 0)
            {
                t = new DateTime(t.Year, t.Month, 1, 0, 0, 0, DateTimeKind.Utc).AddMonths(1);
                continue;
            }

            if (!DayMatches(t))
            {
                t = t.Date.AddDays(1);
                continue;
            }

            if ((_hours & (1u << t.Hour)) == 0)
            {
                t = new DateTime(t.Year, t.Month, t.Day, t.Hour, 0, 0, DateTimeKind.Utc).AddHours(1);
                continue;
            }

            if ((_minutes & (1UL << t.Minute)) == 0)
            {
                t = t.AddMinutes(1);
                continue;
            }

            return new DateTimeOffset(t, TimeSpan.Zero);
        }

        return null;
    }

    private bool DayMatches(DateTime t)
    {
        var day = (_days & (1u << t.Day)) != 0;
        var weekday = (_weekdays & (1 << (int)t.DayOfWeek)) != 0;
        return _daysRestricted && _weekdaysRestricted ? day || weekday : day && weekday;
    }

    private static ulong Field(string field, string name, int min, int max)
    {
        ulong bits = 0;
        foreach (var part in field.Split(','))
        {
            var (range, step) = part.Split('/') switch
            {
                [var r] => (r, 1),
                [var r, var s] when int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 => (r, n),
                _ => throw new FormatException($"{name}: '{part}' has a bad step"),
            };
            int low, high;
            if (range == "*")
            {
                (low, high) = (min, max);
            }
            else if (range.Split('-') is [var a, var b] && int.TryParse(a, NumberStyles.None, CultureInfo.InvariantCulture, out low) && int.TryParse(b, NumberStyles.None, CultureInfo.InvariantCulture, out high))
            {
                if (low > high)
                {
                    throw new FormatException($"{name}: range '{range}' runs backwards");
                }
            }
            else if (int.TryParse(range, NumberStyles.None, CultureInfo.InvariantCulture, out low))
            {
                // "5/15" means from 5 to the end, every 15.
                high = step > 1 ? max : low;
            }
            else
            {
                throw new FormatException($"{name}: '{part}' is not a number, range or *");
            }

            if (low < min || high > max)
            {
                throw new FormatException($"{name}: values are {min} to {max}");
            }

            for (var v = low; v <= high; v += step)
            {
                bits |= 1UL << v;
            }
        }

        return bits;
    }
}
