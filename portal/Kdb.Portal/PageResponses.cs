using Kdb.Portal.Components;
using Microsoft.AspNetCore.Components.Endpoints;

namespace Kdb.Portal;

/// <summary>Per-response work around the pages: cache policy and starting the signed-in user's lookup early.</summary>
internal static class PageResponses
{
    /// <summary>For <c>Response.OnStarting</c>: no-store unless the endpoint chose a policy (static assets do).</summary>
    public static Task DefaultToNoStore(object state)
    {
        var headers = ((HttpContext)state).Response.Headers;
        if (headers.CacheControl.Count == 0)
        {
            headers.CacheControl = "no-store";
        }

        return Task.CompletedTask;
    }

    /// <summary>
    /// Every signed-in page shows the user and their orgs (<c>/v1/me</c>), but its navigation renders only after the page's
    /// own API calls: starting that call here runs it alongside them instead of after, one round trip less per page.
    /// </summary>
    public static Task PrefetchSignedInUser(HttpContext context, RequestDelegate next)
    {
        if (HttpMethods.IsGet(context.Request.Method)
            && context.User.Identity?.IsAuthenticated == true
            && context.GetEndpoint()?.Metadata.GetMetadata<ComponentTypeMetadata>() is not null)
        {
            _ = context.RequestServices.GetRequiredService<PortalContext>().MeAsync();
        }

        return next(context);
    }
}
