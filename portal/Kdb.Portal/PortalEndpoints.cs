using Kdb.Portal.Api;
using Kdb.Portal.Session;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;

namespace Kdb.Portal;

/// <summary>The portal's few non-page endpoints: logout, the org switcher, and the status poll behind live badges.</summary>
public static class PortalEndpoints
{
    /// <summary>Prefix of the JSON endpoints the portal's script calls (answered 401, not redirected, when signed out).</summary>
    public const string JsonPrefix = "/portal/api";

    /// <summary>Statuses after which a database's status no longer changes by itself.</summary>
    public static bool IsSettled(string status) => status is "ready" or "failed" or "deleted";

    public static IEndpointRouteBuilder MapPortalEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/logout", LogoutAsync).AllowAnonymous();
        app.MapGet("/switch-org", (string? orgId) =>
            string.IsNullOrEmpty(orgId) ? Results.LocalRedirect("/") : Results.LocalRedirect($"/orgs/{Uri.EscapeDataString(orgId)}/databases"))
            .RequireAuthorization();
        app.MapGet(JsonPrefix + "/databases/{databaseId}/status", StatusAsync).RequireAuthorization();
        app.MapGet("/orgs/{orgId}/billing/{period}.csv", StatementCsvAsync).RequireAuthorization();
        return app;
    }

    private static async Task<IResult> LogoutAsync(HttpContext http, IAntiforgery antiforgery, TokenClient tokens, TokenRefresher refresher)
    {
        if (!await antiforgery.IsRequestValidAsync(http))
        {
            return Results.BadRequest("The form expired. Go back, reload the page and try again.");
        }

        // Revoke first: a cookie copied before logout must not be able to refresh afterwards.
        var refresh = await http.GetTokenAsync(SessionDefaults.Scheme, SessionDefaults.RefreshToken);
        if (!string.IsNullOrEmpty(refresh))
        {
            refresher.ForgetChain(refresh);
            await tokens.RevokeAsync(refresh, http.RequestAborted);
        }

        await http.SignOutAsync(SessionDefaults.Scheme);
        return Results.LocalRedirect("/login?loggedOut=true");
    }

    // The statement as the control plane writes it (RFC 4180), fetched with the user's token: the browser
    // never holds the token, so a plain link cannot ask the API itself.
    private static async Task<IResult> StatementCsvAsync(string orgId, string period, ControlPlaneApi api, HttpContext http)
    {
        var csv = await api.GetTextAsync($"/v1/orgs/{ControlPlaneApi.Segment(orgId)}/invoices/{ControlPlaneApi.Segment(period)}", "text/csv", http.RequestAborted);
        if (csv.Problem is { } problem)
        {
            return Results.Text(problem.IsNotFound ? "Not found: no such statement in an organization of yours." : problem.Message, "text/plain; charset=utf-8", statusCode: problem.Status == 0 ? StatusCodes.Status503ServiceUnavailable : problem.Status);
        }

        return Results.File(System.Text.Encoding.UTF8.GetBytes(csv.Value ?? string.Empty), "text/csv; charset=utf-8", $"kdb-statement-{orgId}-{period}.csv");
    }

    private static async Task<IResult> StatusAsync(string databaseId, ControlPlaneApi api, HttpContext http)
    {
        http.Response.Headers.CacheControl = "no-store";
        var result = await api.GetAsync<Database>("/v1/databases/" + ControlPlaneApi.Segment(databaseId), http.RequestAborted);
        if (result.Problem is { } problem)
        {
            return Results.Json(new { error = problem.Message }, statusCode: problem.Status == 0 ? StatusCodes.Status503ServiceUnavailable : problem.Status);
        }

        var database = result.Value!;
        return Results.Json(new { status = database.Status, statusReason = database.StatusReason, settled = IsSettled(database.Status) });
    }
}
