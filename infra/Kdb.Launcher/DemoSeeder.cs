using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace Kdb.Launcher;

/// <summary>What <c>.kdb/demo.env</c> holds: the demo login and a ready database reachable through the proxy.</summary>
internal sealed record DemoAccount(
    string Email,
    string Password,
    string PortalUrl,
    string OrgId,
    string DatabaseId,
    string DatabasePassword,
    string PsqlUri,
    string NpgsqlConnectionString,
    string HttpUrl);

/// <summary>
/// Seeds the local cloud through the control plane's public REST API, as a user would: signs the demo user up
/// (once), finds or creates its <c>demo</c> database, waits until it is <c>ready</c> (which implies the proxies
/// hold its route) and writes the env file. Idempotent: a second run reuses the account, the database and,
/// while the env file still names that database, its password.
/// </summary>
internal sealed class DemoSeeder(HttpClient http, Uri controlPlane, TimeProvider time)
{
    public const string Email = "demo@kdb.localhost";
    public const string DatabaseName = "demo";

    public TimeSpan ReadyTimeout { get; init; } = TimeSpan.FromSeconds(120);

    public async Task<DemoAccount> SeedAsync(string password, string portalUrl, string envFile, CancellationToken cancellationToken)
    {
        using (var signup = await SendAsync(HttpMethod.Post, "/v1/signup", null, new { email = Email, password, name = "Demo" }, cancellationToken))
        {
            if (signup.StatusCode is not (HttpStatusCode.Created or HttpStatusCode.Conflict))
            {
                throw await FailureAsync("signing the demo user up", signup, cancellationToken);
            }
        }

        var token = await LoginAsync(password, cancellationToken);
        var me = await GetJsonAsync("/v1/me", token, cancellationToken);
        var orgId = me.GetProperty("orgs")[0].GetProperty("id").GetString()!;
        var previous = Read(envFile);

        var (databaseId, status) = await FindDatabaseAsync(orgId, token, cancellationToken);
        string databasePassword;
        JsonElement uris;
        if (databaseId is null)
        {
            using var created = await SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = DatabaseName }, cancellationToken);
            var body = await ReadAsync("creating the demo database", created, HttpStatusCode.Accepted, cancellationToken);
            databaseId = body.GetProperty("database").GetProperty("id").GetString()!;
            databasePassword = body.GetProperty("credentials").GetProperty("password").GetString()!;
            uris = body.GetProperty("credentials").GetProperty("uris");
        }
        else if (status == "failed")
        {
            throw new LauncherException($"the demo database {databaseId} failed to provision; delete it in the portal (or ./kdb down and remove .kdb) and run ./kdb up again.");
        }
        else if (previous is not null && previous.DatabaseId == databaseId)
        {
            await WaitReadyAsync(databaseId, token, cancellationToken);
            var kept = previous with { Password = password, PortalUrl = portalUrl, OrgId = orgId };
            Write(envFile, kept);
            return kept;
        }
        else
        {
            // The database exists but its password was lost with the env file: a reset is the only way back to it.
            await WaitReadyAsync(databaseId, token, cancellationToken);
            using var reset = await SendAsync(HttpMethod.Post, $"/v1/databases/{databaseId}/roles/owner/reset-password", token, new { }, cancellationToken);
            var body = await ReadAsync("resetting the demo database's password", reset, HttpStatusCode.OK, cancellationToken);
            databasePassword = body.GetProperty("password").GetString()!;
            uris = body.GetProperty("uris");
        }

        await WaitReadyAsync(databaseId, token, cancellationToken);
        var account = new DemoAccount(
            Email,
            password,
            portalUrl,
            orgId,
            databaseId,
            databasePassword,
            uris.GetProperty("psql").GetString()!,
            uris.GetProperty("npgsql").GetString()!,
            uris.GetProperty("http").GetString()!);
        Write(envFile, account);
        return account;
    }

    /// <summary>The env file, shell-sourceable (<c>. .kdb/demo.env</c>): single-quoted values.</summary>
    public static void Write(string path, DemoAccount account)
    {
        var sb = new StringBuilder("# Written by ./kdb up: the local cloud's demo account and database. psql \"$(. ")
            .Append(path).Append(" && echo \"$KDB_DEMO_URI\")\"\n");
        foreach (var (key, value) in Fields(account))
        {
            sb.Append(key).Append("='").Append(value.Replace("'", "'\\''", StringComparison.Ordinal)).Append("'\n");
        }

        FileUtil.WriteAtomic(path, sb.ToString(), privateFile: true);
    }

    /// <summary>Reads an env file written by <see cref="Write"/>; null when it is missing or incomplete.</summary>
    public static DemoAccount? Read(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in File.ReadAllLines(path))
        {
            var eq = line.IndexOf('=', StringComparison.Ordinal);
            if (line.StartsWith('#') || eq <= 0 || line.Length < eq + 3 || line[eq + 1] != '\'' || line[^1] != '\'')
            {
                continue;
            }

            values[line[..eq]] = line[(eq + 2)..^1].Replace("'\\''", "'", StringComparison.Ordinal);
        }

        string? V(string key) => values.GetValueOrDefault(key);
        return V("KDB_DEMO_EMAIL") is { } email && V("KDB_DEMO_PASSWORD") is { } password && V("KDB_DEMO_PORTAL") is { } portal
            && V("KDB_DEMO_ORG") is { } org && V("KDB_DEMO_DATABASE") is { } database && V("KDB_DEMO_DB_PASSWORD") is { } dbPassword
            && V("KDB_DEMO_URI") is { } uri && V("KDB_DEMO_NPGSQL") is { } npgsql && V("KDB_DEMO_HTTP") is { } httpUrl
            ? new DemoAccount(email, password, portal, org, database, dbPassword, uri, npgsql, httpUrl)
            : null;
    }

    private static IEnumerable<(string Key, string Value)> Fields(DemoAccount a) =>
    [
        ("KDB_DEMO_EMAIL", a.Email),
        ("KDB_DEMO_PASSWORD", a.Password),
        ("KDB_DEMO_PORTAL", a.PortalUrl),
        ("KDB_DEMO_ORG", a.OrgId),
        ("KDB_DEMO_DATABASE", a.DatabaseId),
        ("KDB_DEMO_DB_PASSWORD", a.DatabasePassword),
        ("KDB_DEMO_URI", a.PsqlUri),
        ("KDB_DEMO_NPGSQL", a.NpgsqlConnectionString),
        ("KDB_DEMO_HTTP", a.HttpUrl),
    ];

    private async Task<string> LoginAsync(string password, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(controlPlane, "/connect/token"))
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "password",
                ["username"] = Email,
                ["password"] = password,
            }),
        };
        using var response = await http.SendAsync(request, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            var ex = await FailureAsync("logging the demo user in", response, cancellationToken);
            throw new LauncherException(ex.Message + $"\n(the account {Email} exists with another password than KDB_DEMO_PASSWORD of .kdb/secrets.env)");
        }

        var body = await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken);
        return body.GetProperty("access_token").GetString()!;
    }

    private async Task<(string? Id, string? Status)> FindDatabaseAsync(string orgId, string token, CancellationToken cancellationToken)
    {
        string? cursor = null;
        do
        {
            var page = await GetJsonAsync($"/v1/orgs/{orgId}/databases?limit=200" + (cursor is null ? string.Empty : "&cursor=" + Uri.EscapeDataString(cursor)), token, cancellationToken);
            foreach (var database in page.GetProperty("items").EnumerateArray())
            {
                if (database.GetProperty("name").GetString() == DatabaseName && database.GetProperty("status").GetString() is not ("deleting" or "deleted"))
                {
                    return (database.GetProperty("id").GetString(), database.GetProperty("status").GetString());
                }
            }

            cursor = page.GetProperty("nextCursor").ValueKind == JsonValueKind.String ? page.GetProperty("nextCursor").GetString() : null;
        }
        while (cursor is not null);
        return (null, null);
    }

    private async Task WaitReadyAsync(string databaseId, string token, CancellationToken cancellationToken)
    {
        var deadline = time.GetUtcNow() + ReadyTimeout;
        while (true)
        {
            var database = await GetJsonAsync($"/v1/databases/{databaseId}", token, cancellationToken);
            var status = database.GetProperty("status").GetString();
            if (status == "ready")
            {
                return;
            }

            if (status == "failed" || time.GetUtcNow() > deadline)
            {
                throw new LauncherException($"the demo database {databaseId} is '{status}' after {(status == "failed" ? "provisioning" : $"{ReadyTimeout.TotalSeconds:0} s")}: {database}\n(see ./kdb logs controlplane)");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(250), time, cancellationToken);
        }
    }

    private async Task<JsonElement> GetJsonAsync(string path, string token, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(HttpMethod.Get, path, token, null, cancellationToken);
        return await ReadAsync("GET " + path, response, HttpStatusCode.OK, cancellationToken);
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string? token, object? body, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, new Uri(controlPlane, path));
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        return await http.SendAsync(request, cancellationToken);
    }

    private static async Task<JsonElement> ReadAsync(string what, HttpResponseMessage response, HttpStatusCode expected, CancellationToken cancellationToken)
    {
        if (response.StatusCode != expected)
        {
            throw await FailureAsync(what, response, cancellationToken);
        }

        return await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken);
    }

    private static async Task<LauncherException> FailureAsync(string what, HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        return new LauncherException($"demo seeding: {what} answered {(int)response.StatusCode} {response.ReasonPhrase}: {(text.Length > 600 ? text[..600] : text)}");
    }
}
