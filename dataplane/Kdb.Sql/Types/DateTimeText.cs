using System.Globalization;

namespace Kdb.Sql.Types;

/// <summary>Dates, timestamps and intervals in PostgreSQL's ISO text forms (DateStyle ISO, MDY; TimeZone UTC).</summary>
internal static class DateTimeText
{
    /// <summary>2000-01-01, PostgreSQL's epoch for dates and timestamps.</summary>
    public static readonly int EpochDayNumber = new DateOnly(2000, 1, 1).DayNumber;

    public const long MicrosPerDay = 86_400_000_000L;
    public const long MicrosPerSecond = 1_000_000L;
    private static readonly long EpochTicks = new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc).Ticks;

    public static DateOnly ToDateOnly(int days) => DateOnly.FromDayNumber(days + EpochDayNumber);

    public static int FromDateOnly(DateOnly date) => date.DayNumber - EpochDayNumber;

    public static DateTime ToDateTime(long micros) => new(EpochTicks + (micros * 10), DateTimeKind.Utc);

    public static long FromDateTime(DateTime value) => (value.Ticks - EpochTicks) / 10;

    public static string FormatDate(int days)
    {
        var d = ToDateOnly(days);
        return d.Year <= 0
            ? d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) + " BC"
            : d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
    }

    public static string FormatTimestamp(long micros, bool withZone)
    {
        var dt = ToDateTime(micros);
        var text = dt.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
        var fraction = (int)(((micros % MicrosPerSecond) + MicrosPerSecond) % MicrosPerSecond);
        if (fraction != 0)
        {
            text += "." + fraction.ToString("D6", CultureInfo.InvariantCulture).TrimEnd('0');
        }

        return withZone ? text + "+00" : text;
    }

    public static bool TryParseDate(string text, out int days)
    {
        days = 0;
        var s = text.Trim();
        if (s.Length > 10 && (s[10] == ' ' || s[10] == 'T'))
        {
            s = s[..10];
        }

        if (DateOnly.TryParseExact(s, ["yyyy-MM-dd", "yyyy-M-d", "yyyyMMdd", "MM/dd/yyyy", "M/d/yyyy"], CultureInfo.InvariantCulture, DateTimeStyles.None, out var d))
        {
            days = FromDateOnly(d);
            return true;
        }

        return false;
    }

    /// <summary>Parses a timestamp; a zone suffix (Z, +hh, +hh:mm, UTC) converts to UTC (always for timestamptz, dropped after conversion for timestamp as PostgreSQL ignores it).</summary>
    public static bool TryParseTimestamp(string text, bool withZone, out long micros)
    {
        micros = 0;
        var s = text.Trim();
        if (s.Length == 0)
        {
            return false;
        }

        var offset = TimeSpan.Zero;
        var hasZone = false;
        if (s.EndsWith("UTC", StringComparison.OrdinalIgnoreCase) || s.EndsWith("GMT", StringComparison.OrdinalIgnoreCase))
        {
            s = s[..^3].TrimEnd();
            hasZone = true;
        }
        else if (s.EndsWith('Z') || s.EndsWith('z'))
        {
            s = s[..^1];
            hasZone = true;
        }
        else
        {
            // A zone offset follows the time part: find a '+' or '-' after the time's first ':'.
            var colon = s.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0)
            {
                for (var i = s.Length - 1; i > colon; i--)
                {
                    if (s[i] is '+' or '-')
                    {
                        if (!TryParseOffset(s[i..], out offset))
                        {
                            return false;
                        }

                        s = s[..i].TrimEnd();
                        hasZone = true;
                        break;
                    }
                }
            }
        }

        if (!DateTime.TryParseExact(
                s,
                ["yyyy-MM-dd HH:mm:ss.FFFFFFF", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFF", "yyyy-MM-dd HH:mm", "yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd", "yyyy-M-d H:m:s.FFFFFFF", "yyyy-M-d"],
                CultureInfo.InvariantCulture,
                DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal,
                out var dt))
        {
            return false;
        }

        micros = FromDateTime(dt);
        if (hasZone && withZone)
        {
            micros -= (long)offset.TotalMicroseconds;
        }

        return true;
    }

    private static bool TryParseOffset(string s, out TimeSpan offset)
    {
        offset = TimeSpan.Zero;
        var sign = s[0] == '-' ? -1 : 1;
        var body = s[1..];
        int hours;
        var minutes = 0;
        if (body.Contains(':', StringComparison.Ordinal))
        {
            var parts = body.Split(':');
            if (!int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out hours)
                || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out minutes))
            {
                return false;
            }
        }
        else if (body.Length == 4)
        {
            if (!int.TryParse(body.AsSpan(0, 2), NumberStyles.None, CultureInfo.InvariantCulture, out hours)
                || !int.TryParse(body.AsSpan(2, 2), NumberStyles.None, CultureInfo.InvariantCulture, out minutes))
            {
                return false;
            }
        }
        else if (!int.TryParse(body, NumberStyles.None, CultureInfo.InvariantCulture, out hours))
        {
            return false;
        }

        if (hours > 15 || minutes > 59)
        {
            return false;
        }

        offset = new TimeSpan(sign * hours, sign * minutes, 0);
        return true;
    }

    /// <summary>PostgreSQL's default (postgres) interval output: "1 year 2 mons 3 days 04:05:06.5".</summary>
    public static string FormatInterval(Interval value)
    {
        var parts = new List<string>(4);
        var years = value.Months / 12;
        var months = value.Months % 12;
        if (years != 0)
        {
            parts.Add(years + (Math.Abs(years) == 1 ? " year" : " years"));
        }

        if (months != 0)
        {
            parts.Add(months + (Math.Abs(months) == 1 ? " mon" : " mons"));
        }

        if (value.Days != 0)
        {
            parts.Add(value.Days + (Math.Abs(value.Days) == 1 ? " day" : " days"));
        }

        if (value.Microseconds != 0 || parts.Count == 0)
        {
            var micros = value.Microseconds;
            var negative = micros < 0;
            micros = Math.Abs(micros);
            var hours = micros / 3_600_000_000L;
            var minutes = micros / 60_000_000L % 60;
            var seconds = micros / MicrosPerSecond % 60;
            var fraction = micros % MicrosPerSecond;
            var text = string.Create(CultureInfo.InvariantCulture, $"{(negative ? "-" : string.Empty)}{hours:D2}:{minutes:D2}:{seconds:D2}");
            if (fraction != 0)
            {
                text += "." + fraction.ToString("D6", CultureInfo.InvariantCulture).TrimEnd('0');
            }

            parts.Add(text);
        }

        return string.Join(' ', parts);
    }

    /// <summary>Parses "1 day 2 hours", "-3 mons", "04:05:06", "1 year 2 mons 3 days 04:05:06.5", "1 week", "2 days ago".</summary>
    public static bool TryParseInterval(string text, out Interval value)
    {
        value = default;
        var tokens = text.Trim().Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        if (tokens.Length == 0)
        {
            return false;
        }

        long months = 0, days = 0;
        decimal micros = 0;
        var ago = false;
        for (var i = 0; i < tokens.Length; i++)
        {
            var token = tokens[i];
            if (token.Equals("ago", StringComparison.OrdinalIgnoreCase) && i == tokens.Length - 1)
            {
                ago = true;
                continue;
            }

            if (token.Contains(':', StringComparison.Ordinal))
            {
                if (!TryParseClock(token, out var clock))
                {
                    return false;
                }

                micros += clock;
                continue;
            }

            // "1day" or "1 day": split the number from the unit.
            var split = 0;
            while (split < token.Length && (char.IsDigit(token[split]) || token[split] is '.' or '-' or '+'))
            {
                split++;
            }

            if (split == 0 || !decimal.TryParse(token.AsSpan(0, split), NumberStyles.Float, CultureInfo.InvariantCulture, out var amount))
            {
                return false;
            }

            string unit;
            if (split < token.Length)
            {
                unit = token[split..];
            }
            else if (i + 1 < tokens.Length && !tokens[i + 1].Contains(':', StringComparison.Ordinal) && !char.IsDigit(tokens[i + 1][0]) && tokens[i + 1][0] is not ('-' or '+'))
            {
                unit = tokens[++i];
            }
            else
            {
                micros += amount * MicrosPerSecond;
                continue;
            }

            switch (unit.ToLowerInvariant().TrimEnd(','))
            {
                case "y": case "yr": case "yrs": case "year": case "years":
                    months += (long)(amount * 12);
                    break;
                case "mon": case "mons": case "month": case "months":
                    months += (long)amount;
                    days += (long)((amount - Math.Truncate(amount)) * 30);
                    break;
                case "w": case "week": case "weeks":
                    days += (long)(amount * 7);
                    break;
                case "d": case "day": case "days":
                    days += (long)amount;
                    micros += (amount - Math.Truncate(amount)) * MicrosPerDay;
                    break;
                case "h": case "hr": case "hrs": case "hour": case "hours":
                    micros += amount * 3_600_000_000L;
                    break;
                case "m": case "min": case "mins": case "minute": case "minutes":
                    micros += amount * 60_000_000L;
                    break;
                case "s": case "sec": case "secs": case "second": case "seconds":
                    micros += amount * MicrosPerSecond;
                    break;
                case "ms": case "msec": case "msecs": case "millisecond": case "milliseconds":
                    micros += amount * 1000;
                    break;
                case "us": case "usec": case "usecs": case "microsecond": case "microseconds":
                    micros += amount;
                    break;
                default:
                    return false;
            }
        }

        if (months > int.MaxValue || months < int.MinValue || days > int.MaxValue || days < int.MinValue)
        {
            return false;
        }

        value = new Interval((int)months, (int)days, (long)Math.Round(micros));
        if (ago)
        {
            value = new Interval(-value.Months, -value.Days, -value.Microseconds);
        }

        return true;
    }

    private static bool TryParseClock(string token, out decimal micros)
    {
        micros = 0;
        var negative = token.StartsWith('-');
        var parts = token.TrimStart('-', '+').Split(':');
        if (parts.Length is < 2 or > 3)
        {
            return false;
        }

        if (!long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var h)
            || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var m))
        {
            return false;
        }

        decimal s = 0;
        if (parts.Length == 3 && !decimal.TryParse(parts[2], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out s))
        {
            return false;
        }

        micros = (h * 3_600_000_000L) + (m * 60_000_000L) + (s * MicrosPerSecond);
        if (negative)
        {
            micros = -micros;
        }

        return true;
    }
}
