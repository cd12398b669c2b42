using Kdb.Portal.Api;

namespace Kdb.Portal.Components;

/// <summary>Per-request cache of what several components on one page need (the user and their orgs).</summary>
internal sealed class PortalContext(ControlPlaneApi api, IHttpContextAccessor accessor)
{
    private Task<ApiResult<Me>>? _me;

    public Task<ApiResult<Me>> MeAsync() => _me ??= api.GetAsync<Me>("/v1/me", accessor.HttpContext?.RequestAborted ?? CancellationToken.None);
}
