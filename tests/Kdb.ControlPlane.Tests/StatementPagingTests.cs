using System.Globalization;
using System.Net;
using System.Text.Json;
using Kdb.Testing;
using Microsoft.EntityFrameworkCore;

namespace Kdb.ControlPlane.Tests;

/// <summary>Invoice lines and quota rows come a page at a time; every page together is the unpaged answer.</summary>
[Collection(TestCollections.Postgres)]
public sealed class StatementPagingTests(SharedControlPlane cp) : IClassFixture<SharedControlPlane>
{
    private const int Databases = 7;

    private ControlPlaneApp App => cp.App;

    private static string Period => DateTimeOffset.UtcNow.ToString("yyyy-MM", CultureInfo.InvariantCulture);

    [Fact]
    public async Task InvoiceLines_ComeInPages_ThatTogetherAreTheWholeStatement()
    {
        var (owner, orgId, _) = await OrgWithUsageAsync("lines");
        var path = $"/v1/orgs/{orgId}/invoices/{Period}";
        var whole = await GetOkAsync(path + "?limit=3000", owner);
        var lines = whole.GetProperty("lineItems").EnumerateArray().Select(l => l.GetRawText()).ToList();
        Assert.True(lines.Count > 3 * Databases, whole.ToString()); // the plans' fees and three lines per database and plan
        Assert.Equal(lines.Count, whole.GetProperty("lineCount").GetInt32());
        Assert.Equal(JsonValueKind.Null, whole.GetProperty("nextCursor").ValueKind);

        var paged = await WalkAsync(path, "lineItems", 5, owner, page =>
        {
            Assert.Equal(lines.Count, page.GetProperty("lineCount").GetInt32());
            Assert.Equal(whole.GetProperty("total").GetDecimal(), page.GetProperty("total").GetDecimal());
        });

        Assert.Equal(lines, paged);
        Assert.Equal(lines, (await GetOkAsync(path, owner)).GetProperty("lineItems").EnumerateArray().Select(l => l.GetRawText()).ToList());
    }

    [Fact]
    public async Task QuotaRows_ComeInPages_NeedingAttentionFirst_ThenLargest()
    {
        var (owner, orgId, ids) = await OrgWithUsageAsync("rows");
        await cp.WithDbAsync(db => db.Databases.Where(d => d.Id == ids[5]).ExecuteUpdateAsync(s => s.SetProperty(d => d.QuotaState, "warning")));
        await cp.WithDbAsync(db => db.Databases.Where(d => d.Id == ids[6]).ExecuteUpdateAsync(s => s.SetProperty(d => d.QuotaState, "read_only")));
        var path = $"/v1/orgs/{orgId}/quota";

        var paged = await WalkAsync(path, "perDatabase", 2, owner, page => Assert.Equal(Databases, page.GetProperty("databases").GetInt32()));

        var rows = paged.Select(r => JsonDocument.Parse(r).RootElement).ToList();
        Assert.Equal(ids.Order(StringComparer.Ordinal), rows.Select(r => r.GetProperty("databaseId").GetString()!).Order(StringComparer.Ordinal));
        Assert.Equal([ids[6], ids[5]], rows.Take(2).Select(r => r.GetProperty("databaseId").GetString()));
        // Usage gave database i (i+1) MB at its latest hour: the rest follow largest first.
        Assert.Equal([ids[4], ids[3], ids[2], ids[1], ids[0]], rows.Skip(2).Select(r => r.GetProperty("databaseId").GetString()));
        Assert.Equal(5L << 20, rows[2].GetProperty("storageBytes").GetInt64());
        var first = await GetOkAsync(path, owner);
        Assert.Equal(Databases, first.GetProperty("perDatabase").GetArrayLength());
        Assert.Equal(JsonValueKind.Null, first.GetProperty("nextCursor").ValueKind);
    }

    [Theory]
    [InlineData("cursor=abc", "cursor")]
    [InlineData("cursor=-5", "cursor")]
    [InlineData("cursor=0", "cursor")]
    [InlineData("cursor=1e3", "cursor")]
    [InlineData("cursor=99999999999999", "cursor")]
    [InlineData("limit=0", "limit")]
    [InlineData("limit=-1", "limit")]
    [InlineData("limit=2.5", "limit")]
    [InlineData("limit=lots", "limit")]
    [InlineData("limit=100000", "limit")]
    public async Task BadPagingParameters_AreValidationProblems(string query, string field)
    {
        var (owner, _, orgId) = await cp.UserAsync(SharedControlPlane.Email("paging"));

        foreach (var path in new[] { $"/v1/orgs/{orgId}/invoices/{Period}", $"/v1/orgs/{orgId}/quota" })
        {
            var result = await App.SendAsync(HttpMethod.Get, $"{path}?{query}", owner);
            Assert.Equal(HttpStatusCode.BadRequest, result.Status);
            Assert.EndsWith("/validation", result.Body.GetProperty("type").GetString(), StringComparison.Ordinal);
            Assert.True(result.Body.GetProperty("errors").TryGetProperty(field, out _), result.Body.ToString());
        }
    }

    [Fact]
    public async Task MangledCursors_AreRefusedOrReadAsAPosition_NeverAServerError()
    {
        var (owner, orgId, _) = await OrgWithUsageAsync("mangled");
        var random = new Random(11);
        const string Alphabet = "0123456789-+ .,%abcxyz\u00e9\u0661";
        for (var i = 0; i < 40; i++)
        {
            var cursor = new string([.. Enumerable.Range(0, random.Next(1, 12)).Select(_ => Alphabet[random.Next(Alphabet.Length)])]);
            foreach (var path in new[] { $"/v1/orgs/{orgId}/invoices/{Period}", $"/v1/orgs/{orgId}/quota" })
            {
                var result = await App.SendAsync(HttpMethod.Get, $"{path}?limit=3&cursor={Uri.EscapeDataString(cursor)}", owner);
                var position = int.TryParse(cursor, NumberStyles.None, CultureInfo.InvariantCulture, out var p) && p > 0;
                Assert.True(result.Status == (position ? HttpStatusCode.OK : HttpStatusCode.BadRequest), $"{cursor}: {result.Status} {result.Body}");
            }
        }
    }

    [Fact]
    public async Task PagedLists_OfAnotherOrg_AreNotFound()
    {
        var (_, orgId, _) = await OrgWithUsageAsync("owned");
        var (stranger, _, _) = await cp.UserAsync(SharedControlPlane.Email("stranger"));

        Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/invoices/{Period}?limit=2&cursor=2", stranger)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/quota?limit=2&cursor=2", stranger)).Status);
        // Bad paging does not tell a stranger more than a good one would.
        Assert.Equal(HttpStatusCode.NotFound, (await App.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}/quota?limit=zero", stranger)).Status);
    }

    [Fact]
    public async Task OpenApi_DescribesThePagingParameters()
    {
        using var response = await App.Client.GetAsync(new Uri("/openapi/v1.json", UriKind.Relative));
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var paths = doc.RootElement.GetProperty("paths");

        foreach (var path in new[] { "/v1/orgs/{orgId}/invoices/{period}", "/v1/orgs/{orgId}/quota" })
        {
            var get = paths.GetProperty(path).GetProperty("get");
            var query = get.GetProperty("parameters").EnumerateArray().Where(p => p.GetProperty("in").GetString() == "query").ToDictionary(p => p.GetProperty("name").GetString()!);
            Assert.True(query.ContainsKey("cursor") && query.ContainsKey("limit"), $"{path}: {get}");
            Assert.Contains("nextCursor", query["cursor"].GetProperty("description").GetString(), StringComparison.Ordinal);
            Assert.Contains("nextCursor", get.GetProperty("description").GetString(), StringComparison.Ordinal);
            Assert.True(get.GetProperty("responses").TryGetProperty("400", out _), $"{path}: {get}");
        }
    }

    /// <summary>Follows <c>nextCursor</c> from the first page to the last, collecting <paramref name="list"/>'s items.</summary>
    private async Task<List<string>> WalkAsync(string path, string list, int limit, string token, Action<JsonElement> eachPage)
    {
        var items = new List<string>();
        string? cursor = null;
        for (var pages = 0; pages < 100; pages++)
        {
            var page = await GetOkAsync($"{path}?limit={limit}" + (cursor is null ? string.Empty : "&cursor=" + Uri.EscapeDataString(cursor)), token);
            eachPage(page);
            var rows = page.GetProperty(list).EnumerateArray().Select(l => l.GetRawText()).ToList();
            items.AddRange(rows);
            cursor = page.GetProperty("nextCursor").GetString();
            if (cursor is null)
            {
                return items;
            }

            Assert.Equal(limit, rows.Count);
        }

        throw new InvalidOperationException("the cursors never ended");
    }

    private async Task<JsonElement> GetOkAsync(string path, string token)
    {
        var result = await App.SendAsync(HttpMethod.Get, path, token);
        Assert.True(result.Status == HttpStatusCode.OK, $"{path}: {result.Status} {result.Body}");
        return result.Body;
    }

    /// <summary>A pro org with <see cref="Databases"/> databases; database i stored (i+1) MB in its latest hour this month.</summary>
    private async Task<(string Token, string OrgId, List<string> Ids)> OrgWithUsageAsync(string name)
    {
        var (token, _, orgId) = await cp.UserAsync(SharedControlPlane.Email(name));
        Assert.Equal(HttpStatusCode.OK, (await App.SendAsync(HttpMethod.Patch, $"/v1/orgs/{orgId}", token, new { plan = "pro" })).Status);
        var ids = new List<string>();
        for (var i = 0; i < Databases; i++)
        {
            var created = await App.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, new { name = $"db{i}" });
            Assert.True(created.Status == HttpStatusCode.Accepted, created.Body.ToString());
            ids.Add(created.Body.GetProperty("database").GetProperty("id").GetString()!);
        }

        var hour = DateTimeOffset.UtcNow;
        hour = new DateTimeOffset(hour.Year, hour.Month, hour.Day, hour.Hour, 0, 0, TimeSpan.Zero);
        var source = "paging-" + Guid.NewGuid().ToString("N");
        var records = new List<object>();
        for (var i = 0; i < ids.Count; i++)
        {
            records.Add(Record(source, records.Count + 1, ids[i], hour, (i + 1L) << 20));
            if (hour.AddHours(-1).Month == hour.Month)
            {
                // An earlier hour with more storage: the row shows the latest, not the largest.
                records.Add(Record(source, records.Count + 1, ids[i], hour.AddHours(-1), 100L << 20));
            }
        }

        var node = await App.ServiceTokenAsync("kdb-node", ControlPlaneApp.NodeSecret);
        Assert.Equal(HttpStatusCode.Accepted, (await App.SendAsync(HttpMethod.Post, "/internal/v1/usage", node, records)).Status);
        return (token, orgId, ids);
    }

    private static object Record(string source, long sequence, string databaseId, DateTimeOffset hour, long storageBytes) => new
    {
        source,
        sequence,
        databaseId,
        hourStart = hour,
        rowsRead = 1000L,
        rowsWritten = 100L,
        bytesRead = 0L,
        bytesWritten = 0L,
        storageBytes,
        cpuMs = 0L,
        egressBytes = 1000L,
        connections = 1L,
    };
}
