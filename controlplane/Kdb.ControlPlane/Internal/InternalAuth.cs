using Kdb.ControlPlane.Identity;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;

namespace Kdb.ControlPlane.Internal;

/// <summary>
/// Service-to-service authorization: a separate bearer scheme that accepts only <c>aud kdb-internal</c>
/// tokens, and one policy per scope. A user or data token never reaches <c>/internal</c>.
/// </summary>
public static class InternalAuth
{
    public const string Scheme = "internal";

    /// <summary>The default scheme: <see cref="Scheme"/> under <c>/internal</c>, the user bearer scheme elsewhere.</summary>
    public const string ByPath = "by-path";
    public const string Proxy = "kdb.proxy";
    public const string Node = "kdb.node";
    public const string Provisioning = "kdb.provisioning";
    public const string Operator = "kdb.operator";

    /// <summary>Policy for usage reports, which nodes and proxies both send.</summary>
    public const string UsageReporter = "usage-reporter";

    public static IServiceCollection AddInternalAuth(this IServiceCollection services)
    {
        services.AddAuthentication().AddJwtBearer(Scheme);
        services.AddSingleton<IConfigureOptions<JwtBearerOptions>>(sp => new ConfigureNamedOptions<JwtBearerOptions>(Scheme, o =>
        {
            o.MapInboundClaims = false;
            o.TokenValidationParameters = TokenIssuer.ValidationParameters(
                sp.GetRequiredService<IOptions<TokenOptions>>().Value, sp.GetRequiredService<SigningKeyService>(), KdbAudiences.Internal);
        }));
        services.AddAuthorizationBuilder()
            .AddPolicy(Proxy, p => Require(p, Proxy))
            .AddPolicy(Node, p => Require(p, Node))
            .AddPolicy(Provisioning, p => Require(p, Provisioning))
            .AddPolicy(Operator, p => Require(p, Operator))
            .AddPolicy(UsageReporter, p => Require(p, Node, Proxy, Provisioning));
        return services;
    }

    // The operator scope may do what any service may, for fleet tooling.
    private static void Require(AuthorizationPolicyBuilder policy, params string[] accepted) =>
        policy.AddAuthenticationSchemes(Scheme).RequireAuthenticatedUser().RequireAssertion(ctx =>
        {
            var scopes = ctx.User.FindFirst("scope")?.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries) ?? [];
            return scopes.Any(s => s == Operator || accepted.Contains(s, StringComparer.Ordinal));
        });
}
