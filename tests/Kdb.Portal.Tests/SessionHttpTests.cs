using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Kdb.Portal.Tests;

/// <summary>The session cookie and the forms at the HTTP level: attributes, antiforgery, corrupt cookies.</summary>
[Collection(PortalCollection.Name)]
public sealed partial class SessionHttpTests(PortalCloud cloud) : IDisposable
{
    private const string Password = "long enough password";
    private readonly HttpClient _http = new(new HttpClientHandler { UseCookies = false, AllowAutoRedirect = false }) { BaseAddress = cloud.PortalUrl };

    public void Dispose() => _http.Dispose();

    [Fact]
    public async Task Login_FormPost_SetsEncryptedHttpOnlySameSiteLaxCookie()
    {
        await cloud.SignupThroughApiAsync("cookie@example.com", Password);

        var (response, cookies) = await LoginAsync("cookie@example.com", Password);

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        var session = Assert.Single(response.Headers.GetValues("Set-Cookie"), c => c.StartsWith("kdb_session=", StringComparison.Ordinal));
        Assert.Contains("httponly", session, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=lax", session, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("secure", session, StringComparison.OrdinalIgnoreCase); // plain HTTP here; Secure when HTTPS
        // Encrypted: neither token nor email is readable in the cookie. A JWT starts with its header {"alg":…, which is
        // "eyJhbGci" in base64url; three characters ("eyJ") turn up by chance in random ciphertext (1 run in ~400).
        Assert.DoesNotContain("eyJhbGci", cookies["kdb_session"], StringComparison.Ordinal);
        Assert.DoesNotContain("cookie", cookies["kdb_session"], StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Login_PostWithoutAntiforgeryToken_IsRejectedAndStartsNoSession()
    {
        await cloud.SignupThroughApiAsync("csrf@example.com", Password);
        using var form = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["_handler"] = "login",
            ["Input.Email"] = "csrf@example.com",
            ["Input.Password"] = Password,
        });

        using var response = await _http.PostAsync(new Uri("/login", UriKind.Relative), form);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.False(response.Headers.TryGetValues("Set-Cookie", out var set) && set.Any(c => c.StartsWith("kdb_session=", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Logout_PostWithoutAntiforgeryToken_IsRejectedAndSessionSurvives()
    {
        await cloud.SignupThroughApiAsync("csrf-logout@example.com", Password);
        var (_, cookies) = await LoginAsync("csrf-logout@example.com", Password);

        using var logout = new HttpRequestMessage(HttpMethod.Post, new Uri("/logout", UriKind.Relative)) { Content = new FormUrlEncodedContent([]) };
        logout.Headers.Add("Cookie", CookieHeader(cookies));
        using var rejected = await _http.SendAsync(logout);
        Assert.Equal(HttpStatusCode.BadRequest, rejected.StatusCode);

        using var home = new HttpRequestMessage(HttpMethod.Get, new Uri("/", UriKind.Relative));
        home.Headers.Add("Cookie", CookieHeader(cookies));
        using var stillIn = await _http.SendAsync(home);
        Assert.Equal(HttpStatusCode.Redirect, stillIn.StatusCode);
        Assert.Contains("/orgs/", stillIn.Headers.Location!.OriginalString, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StatusEndpoint_SignedOut_Answers401NotARedirect()
    {
        using var response = await _http.GetAsync(new Uri("/portal/api/databases/db_0000000000000000/status", UriKind.Relative));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task StatusEndpoint_SignedIn_ReportsStatusOrNotFound()
    {
        var (token, orgId) = await cloud.SignupThroughApiAsync("status@example.com", Password);
        var created = await cloud.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = "polled" });
        var databaseId = created.Body.GetProperty("database").GetProperty("id").GetString()!;
        var (_, cookies) = await LoginAsync("status@example.com", Password);

        using var found = await GetAsync($"/portal/api/databases/{databaseId}/status", cookies);
        Assert.Equal(HttpStatusCode.OK, found.StatusCode);
        var status = JsonDocument.Parse(await found.Content.ReadAsStringAsync()).RootElement.GetProperty("status").GetString();
        Assert.Contains(status, new[] { "provisioning", "ready" });

        using var missing = await GetAsync("/portal/api/databases/db_zzzzzzzzzzzzzzzz/status", cookies);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        using var garbage = await GetAsync("/portal/api/databases/%2E%2E%2F%2E%2E%2Fv1%2Fme/status", cookies);
        Assert.Equal(HttpStatusCode.NotFound, garbage.StatusCode);
    }

    [Fact]
    public async Task Pages_CorruptOrTruncatedSessionCookie_TreatedAsSignedOut()
    {
        await cloud.SignupThroughApiAsync("corrupt@example.com", Password);
        var (_, cookies) = await LoginAsync("corrupt@example.com", Password);
        var real = cookies["kdb_session"];
        var random = new Random(4242);
        var values = new List<string> { real[..(real.Length / 2)], real[..^1] + (real[^1] == 'A' ? 'B' : 'A'), "garbage", string.Empty };
        for (var i = 0; i < 20; i++)
        {
            var bytes = new byte[random.Next(1, 400)];
            random.NextBytes(bytes);
            values.Add(Convert.ToBase64String(bytes).Replace('+', '-').Replace('/', '_').TrimEnd('='));
        }

        foreach (var value in values)
        {
            using var page = await GetAsync("/orgs/org_x/databases", new Dictionary<string, string> { ["kdb_session"] = value });
            Assert.True(page.StatusCode == HttpStatusCode.Redirect, $"seed 4242, cookie '{value}': {page.StatusCode}");
            Assert.Contains("/login?returnUrl=", page.Headers.Location!.OriginalString, StringComparison.Ordinal);
        }

        // The real cookie still works: nothing about the bad ones touched the session.
        using var ok = await GetAsync("/", cookies);
        Assert.Equal(HttpStatusCode.Redirect, ok.StatusCode);
        Assert.Contains("/orgs/", ok.Headers.Location!.OriginalString, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Pages_AreNoStore_FingerprintedAssets_AreImmutableAndCompressed()
    {
        await cloud.SignupThroughApiAsync("caching@example.com", Password);
        var (_, cookies) = await LoginAsync("caching@example.com", Password);
        using var page = await GetAsync("/", cookies);
        var landing = page.Headers.Location!;
        using var databases = await GetAsync(landing.IsAbsoluteUri ? landing.PathAndQuery : landing.OriginalString, cookies);
        Assert.Equal(HttpStatusCode.OK, databases.StatusCode);
        Assert.True(databases.Headers.CacheControl?.NoStore, databases.Headers.CacheControl?.ToString());
        var html = await databases.Content.ReadAsStringAsync();
        var assets = FingerprintedAsset().Matches(html).Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(2, assets.Count); // portal.<hash>.css and portal.<hash>.js

        foreach (var asset in assets)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(asset, UriKind.Relative));
            request.Headers.AcceptEncoding.ParseAdd("gzip");
            using var response = await _http.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var cacheControl = string.Join(", ", response.Headers.GetValues("Cache-Control"));
            Assert.Contains("immutable", cacheControl, StringComparison.Ordinal);
            Assert.DoesNotContain("no-", cacheControl, StringComparison.Ordinal);
            Assert.Equal("nosniff", Assert.Single(response.Headers.GetValues("X-Content-Type-Options")));
            Assert.Contains("gzip", response.Content.Headers.ContentEncoding);
        }
    }

    private async Task<(HttpResponseMessage Response, Dictionary<string, string> Cookies)> LoginAsync(string email, string password)
    {
        var cookies = new Dictionary<string, string>(StringComparer.Ordinal);
        using var get = await _http.GetAsync(new Uri("/login", UriKind.Relative));
        Collect(get, cookies);
        var html = await get.Content.ReadAsStringAsync();
        var token = AntiforgeryField().Match(html).Groups[1].Value;
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri("/login", UriKind.Relative))
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["_handler"] = "login",
                ["__RequestVerificationToken"] = WebUtility.HtmlDecode(token),
                ["Input.Email"] = email,
                ["Input.Password"] = password,
            }),
        };
        request.Headers.Add("Cookie", CookieHeader(cookies));
        var response = await _http.SendAsync(request);
        Collect(response, cookies);
        Assert.True(cookies.ContainsKey("kdb_session"), $"login did not start a session: {response.StatusCode}");
        return (response, cookies);
    }

    private async Task<HttpResponseMessage> GetAsync(string path, Dictionary<string, string> cookies)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(path, UriKind.Relative));
        request.Headers.Add("Cookie", CookieHeader(cookies));
        return await _http.SendAsync(request);
    }

    private static void Collect(HttpResponseMessage response, Dictionary<string, string> cookies)
    {
        if (!response.Headers.TryGetValues("Set-Cookie", out var values))
        {
            return;
        }

        foreach (var value in values)
        {
            var pair = value.Split(';', 2)[0];
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            cookies[pair[..equals]] = pair[(equals + 1)..];
        }
    }

    private static string CookieHeader(Dictionary<string, string> cookies) => string.Join("; ", cookies.Select(c => $"{c.Key}={c.Value}"));

    [GeneratedRegex("(?:href|src)=\"/?(portal\\.[a-z0-9]+\\.(?:css|js))\"")]
    private static partial Regex FingerprintedAsset();

    [GeneratedRegex("name=\"__RequestVerificationToken\" value=\"([^\"]+)\"")]
    private static partial Regex AntiforgeryField();
}
