using System.Net;

namespace Kdb.Portal.Api;

/// <summary>
/// Why a management-API call failed, from its RFC 7807 body (or from the transport), worded for the user.
/// </summary>
/// <param name="Status">HTTP status; 0 when the control plane could not be reached.</param>
/// <param name="Type">The problem's stable <c>type</c> URI, when the API gave one.</param>
/// <param name="Title">The problem's title.</param>
/// <param name="Detail">The problem's detail, the most specific sentence the API gave.</param>
/// <param name="Errors">Validation errors by field (camelCase names, as the API sends them).</param>
public sealed record ApiProblem(int Status, string? Type, string? Title, string? Detail, IReadOnlyDictionary<string, string[]> Errors)
{
    private static readonly Dictionary<string, string[]> NoErrors = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>True for 404: the resource does not exist for this user (another org's resource looks the same).</summary>
    public bool IsNotFound => Status == (int)HttpStatusCode.NotFound;

    /// <summary>True when the user's session is no longer accepted by the API.</summary>
    public bool IsUnauthorized => Status == (int)HttpStatusCode.Unauthorized;

    /// <summary>The sentence to show the user.</summary>
    public string Message => Status switch
    {
        0 => "The control plane cannot be reached right now. Try again in a moment.",
        (int)HttpStatusCode.NotFound => "Not found. " + (Detail ?? "It does not exist, or it is not in your organization."),
        (int)HttpStatusCode.Unauthorized => "Your session has expired. Log in again.",
        (int)HttpStatusCode.Forbidden => Detail ?? "You do not have permission to do this.",
        (int)HttpStatusCode.TooManyRequests => "Too many requests. Wait a minute and try again.",
        >= 500 => $"The control plane failed to answer ({Status}). Try again; if it keeps failing, contact support.",
        _ when Errors.Count > 0 && Detail is null => Title ?? "The request is not valid.",
        _ => Detail ?? Title ?? $"The request failed ({Status}).",
    };

    /// <summary>The validation messages for one field (case-insensitive name), or none.</summary>
    public IReadOnlyList<string> ErrorsFor(string field)
    {
        foreach (var (key, messages) in Errors)
        {
            if (string.Equals(key, field, StringComparison.OrdinalIgnoreCase))
            {
                return messages;
            }
        }

        return [];
    }

    /// <summary>A problem for a control plane that did not answer.</summary>
    public static ApiProblem Unreachable(string detail) => new(0, null, "Unreachable", detail, NoErrors);

    /// <summary>A problem found by the portal itself (e.g. a confirmation that does not match).</summary>
    public static ApiProblem Local(string detail, string? field = null) =>
        new(400, null, "Invalid", detail, field is null ? NoErrors : new Dictionary<string, string[]>(StringComparer.OrdinalIgnoreCase) { [field] = [detail] });

    /// <summary>A problem with no body beyond its status.</summary>
    public static ApiProblem FromStatus(int status) => new(status, null, null, null, NoErrors);
}

/// <summary>The outcome of a management-API call: a value, or a problem.</summary>
public readonly record struct ApiResult<T>(T? Value, ApiProblem? Problem)
{
    /// <summary>True when the call succeeded (<see cref="Value"/> holds the answer; null for 204).</summary>
    public bool Ok => Problem is null;
}
