using System.Globalization;

namespace Kdb.Portal.Components;

/// <summary>How numbers and times read on the pages (invariant culture: the portal is in English).</summary>
public static class Format
{
    private static readonly string[] Units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

    /// <summary>An org's roles, least to most powerful, as select options.</summary>
    public static readonly (string Value, string Label)[] OrgRoles = [("viewer", "viewer"), ("developer", "developer"), ("admin", "admin"), ("owner", "owner")];

    public static string Bytes(long bytes)
    {
        double value = bytes;
        var unit = 0;
        while (value >= 1024 && unit < Units.Length - 1)
        {
            value /= 1024;
            unit++;
        }

        return unit == 0
            ? bytes.ToString("N0", CultureInfo.InvariantCulture) + " B"
            : value.ToString("0.#", CultureInfo.InvariantCulture) + " " + Units[unit];
    }

    public static string Number(double value) => value.ToString("#,0.###", CultureInfo.InvariantCulture);

    public static string Number(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    public static string Time(DateTimeOffset at) => at.ToUniversalTime().ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);

    public static string Time(DateTimeOffset? at) => at is { } value ? Time(value) : "—";

    public static string Percent(double used, double limit) =>
        limit <= 0 ? "—" : (used / limit).ToString("0.#%", CultureInfo.InvariantCulture);

    /// <summary>Only local paths may be redirect targets (no open redirect through <c>returnUrl</c>).</summary>
    public static string SafeLocalUrl(string? url) =>
        !string.IsNullOrEmpty(url) && url[0] == '/' && (url.Length == 1 || (url[1] != '/' && url[1] != '\\')) ? url : "/";

    /// <summary>Plain words for a database's quota state (DESIGN: quotas, who enforces what).</summary>
    public static string QuotaStateText(string state) => state switch
    {
        "ok" => "Within limits.",
        "warning" => "A limit is 80% used or more. Nothing is slowed yet.",
        "throttled" => "Monthly request units are used up: statements are slowed down.",
        "read_only" => "Storage is full: reads work, writes fail until data is removed or the plan is raised.",
        "suspended" => "Monthly request units are 125% used: new connections and statements are refused.",
        _ => state,
    };
}
