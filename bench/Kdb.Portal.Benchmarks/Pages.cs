using System.Globalization;

namespace Kdb.Portal.Benchmarks;

/// <summary>One portal page: its figure name, its path, and the API GETs it makes to render (the baseline).</summary>
internal sealed record PortalPage(string Name, string Path, IReadOnlyList<string> ApiCalls);

internal static class PageSet
{
    /// <summary>Every page of the portal with data, and the calls each makes (kept in step with the page's code).</summary>
    public static IReadOnlyList<PortalPage> For(string orgId, string databaseId, DateTimeOffset now)
    {
        var org = $"/v1/orgs/{orgId}";
        var database = $"/v1/databases/{databaseId}";
        var hourEnd = new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, 0, 0, TimeSpan.Zero).AddHours(1);
        var usage = $"{org}/usage?granularity=hour&from={Uri.EscapeDataString(hourEnd.AddHours(-48).ToString("O", CultureInfo.InvariantCulture))}&to={Uri.EscapeDataString(hourEnd.ToString("O", CultureInfo.InvariantCulture))}";
        var period = now.ToString("yyyy-MM", CultureInfo.InvariantCulture);
        const string Me = "/v1/me";
        return
        [
            new("databases", $"/orgs/{orgId}/databases", [org, Me, $"{org}/databases?limit=50"]),
            new("database", $"/databases/{databaseId}", [database, Me, $"{database}/connection", $"{database}/roles"]),
            new("backups", $"/databases/{databaseId}/backups", [database, Me, $"{database}/backups?limit=20", $"{database}/backup-schedule"]),
            new("connections", $"/databases/{databaseId}/connections", [database, Me, $"{database}/auth-lockouts", $"{database}/connection-log?limit=50"]),
            new("database_usage", $"/databases/{databaseId}/usage", [database, Me, $"{database}/usage?" + usage[(usage.IndexOf('?', StringComparison.Ordinal) + 1)..]]),
            new("usage", $"/orgs/{orgId}/usage", [usage, Me]),
            new("quota", $"/orgs/{orgId}/quota", [$"{org}/quota?limit=50", Me]),
            new("members", $"/orgs/{orgId}/members", [$"{org}/members", $"{org}/invitations", Me]),
            new("api_keys", $"/orgs/{orgId}/api-keys", [$"{org}/api-keys", Me]),
            new("billing", $"/orgs/{orgId}/billing", [org, Me, $"{org}/invoices", $"{org}/invoices/{period}?limit=150"]),
            new("audit_log", $"/orgs/{orgId}/audit-log", [$"{org}/audit-log?limit=50", Me]),
        ];
    }
}
