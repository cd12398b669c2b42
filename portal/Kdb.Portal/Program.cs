using Kdb.Portal;
using Kdb.Portal.Api;
using Kdb.Portal.Components;
using Kdb.Portal.Session;
using Kdb.ServiceDefaults;
using Microsoft.AspNetCore.DataProtection;

var builder = WebApplication.CreateBuilder(args);
builder.AddKdbServiceDefaults("portal");
builder.ListenOn(builder.Configuration.GetPort("Portal:Port", 5200));

// Serve wwwroot from the build output too (the local cloud runs build output, not a publish folder).
builder.WebHost.UseStaticWebAssets();

// From build output MapStaticAssets would re-read the files and send "no-cache", so every page load fetched the
// stylesheet again before it could paint. Nothing edits wwwroot under a running portal: serve the fingerprinted
// assets as publish does (immutable, precompressed).
builder.Configuration["ReloadStaticAssetsAtRuntime"] ??= "false";

var controlPlane = new Uri(builder.Configuration["ControlPlane:Url"] ?? "http://127.0.0.1:5100");
builder.Services.AddHealthChecks().AddHttpDependency("controlplane", new Uri(controlPlane, "/health/live"));

builder.Services.AddSingleton(TimeProvider.System);
builder.Services.Configure<PortalSessionOptions>(builder.Configuration.GetSection(PortalSessionOptions.Section));
builder.Services.AddHttpContextAccessor();
builder.Services.AddHttpClient<ControlPlaneApi>(c => { c.BaseAddress = controlPlane; c.Timeout = TimeSpan.FromSeconds(30); });
builder.Services.AddHttpClient<TokenClient>(c => { c.BaseAddress = controlPlane; c.Timeout = TimeSpan.FromSeconds(30); });
builder.Services.AddSingleton<TokenRefresher>();
builder.Services.AddScoped<SessionEvents>();
builder.Services.AddScoped<Kdb.Portal.Components.PortalContext>();

// The session cookie holds the tokens, encrypted by Data Protection. Several portal instances must share
// the key ring (DataProtection:KeysPath on shared storage), or sessions end when a request changes instance.
var dataProtection = builder.Services.AddDataProtection().SetApplicationName("Kdb.Cloud.Portal");
if (builder.Configuration["DataProtection:KeysPath"] is { Length: > 0 } keysPath)
{
    dataProtection.PersistKeysToFileSystem(new DirectoryInfo(keysPath));
}

var session = builder.Configuration.GetSection(PortalSessionOptions.Section).Get<PortalSessionOptions>() ?? new PortalSessionOptions();
builder.Services.AddAuthentication(SessionDefaults.Scheme).AddCookie(SessionDefaults.Scheme, o =>
{
    o.Cookie.Name = SessionDefaults.CookieName;
    o.Cookie.HttpOnly = true;
    o.Cookie.SameSite = SameSiteMode.Lax;
    o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
    o.LoginPath = "/login";
    o.ReturnUrlParameter = "returnUrl";
    o.ExpireTimeSpan = session.IdleTimeout;
    o.SlidingExpiration = true;
    o.EventsType = typeof(SessionEvents);
});
builder.Services.AddAuthorization();
builder.Services.AddCascadingAuthenticationState();
builder.Services.AddAntiforgery(o =>
{
    o.Cookie.Name = "kdb_af";
    o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
});
builder.Services.AddRazorComponents();

var app = builder.Build();
app.UseExceptionHandler("/error", createScopeForErrors: true);
app.UseStatusCodePagesWithReExecute("/not-found", createScopeForStatusCodePages: true);
app.Use((context, next) =>
{
    // Pages carry one-time secrets: never cache them, never frame them. Static assets set their own caching
    // (fingerprinted ones are immutable), which is why no-store is only the default.
    context.Response.Headers.XFrameOptions = "DENY";
    context.Response.Headers.XContentTypeOptions = "nosniff";
    context.Response.Headers["Referrer-Policy"] = "no-referrer";
    context.Response.OnStarting(PageResponses.DefaultToNoStore, context);
    return next(context);
});
app.UseAuthentication();
app.UseAuthorization();
app.Use(PageResponses.PrefetchSignedInUser);
app.UseAntiforgery();
app.MapKdbManagementEndpoints();
app.MapStaticAssets();
app.MapPortalEndpoints();
app.MapRazorComponents<App>();
app.Run();

/// <summary>Entry point, visible to WebApplicationFactory in tests.</summary>
public partial class Program;
