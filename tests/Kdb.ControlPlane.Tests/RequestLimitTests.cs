using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Kdb.Testing;

namespace Kdb.ControlPlane.Tests;

[Collection(TestCollections.Postgres)]
public sealed class RequestLimitTests(SharedControlPlane cp) : IClassFixture<SharedControlPlane>
{
    private ControlPlaneApp App => cp.App;

    [Fact]
    public async Task Body_OverOneMiB_WithContentLength_Is413Problem()
    {
        var (token, _, orgId) = await cp.UserAsync(SharedControlPlane.Email("big"));
        var body = "{\"name\":\"" + new string('a', 1024 * 1024) + "\"}";

        var result = await App.SendAsync(HttpMethod.Post, $"/v1/orgs/{orgId}/databases", token, body);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, result.Status);
        Assert.Equal("application/problem+json", result.Response.Content.Headers.ContentType?.MediaType);
        Assert.EndsWith("payload-too-large", result.Body.GetProperty("type").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Body_OverOneMiB_Chunked_Is413Problem()
    {
        var (token, _, _) = await cp.UserAsync(SharedControlPlane.Email("chunked"));
        var bytes = Encoding.UTF8.GetBytes("{\"name\":\"" + new string('a', (1024 * 1024) + 10) + "\"}");

        var result = await App.SendAsync(HttpMethod.Post, "/v1/orgs", token, configure: r =>
        {
            r.Content = new StreamContent(new UnknownLengthStream(bytes));
            r.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        });

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, result.Status);
        Assert.Equal("application/problem+json", result.Response.Content.Headers.ContentType?.MediaType);
        var orgs = await App.SendAsync(HttpMethod.Get, "/v1/orgs", token);
        Assert.Single(orgs.Body.GetProperty("items").EnumerateArray()); // nothing was created
    }

    [Fact]
    public async Task TokenEndpoint_HugeForm_Is413Problem()
    {
        using var response = await App.Client.PostAsync(new Uri("/connect/token", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "password",
            ["username"] = "x@example.com",
            ["password"] = new string('p', 2 * 1024 * 1024),
        }));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
    }

    [Fact]
    public async Task Body_JustUnderTheLimit_IsReadAndValidated()
    {
        var (token, _, _) = await cp.UserAsync(SharedControlPlane.Email("under"));
        var body = "{\"name\":\"" + new string('a', 1000 * 1024) + "\"}";

        var result = await App.SendAsync(HttpMethod.Post, "/v1/orgs", token, body);

        Assert.Equal(HttpStatusCode.BadRequest, result.Status); // a 1000 KiB name is read, then refused as too long
        Assert.True(result.Body.GetProperty("errors").TryGetProperty("name", out _));
    }

    [Fact]
    public async Task UsageIngestion_TakesBatchesOverOneMiB()
    {
        var node = await App.ServiceTokenAsync("kdb-node", ControlPlaneApp.NodeSecret);
        var records = Enumerable.Range(0, 6000).Select(i => new
        {
            source = "node_big",
            sequence = (long)i,
            databaseId = "db_0000000000000000",
            hourStart = new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero),
            rowsRead = 1L, rowsWritten = 1L, bytesRead = 1L, bytesWritten = 1L, storageBytes = 1L, cpuMs = 1L, egressBytes = 1L, connections = 1L,
        }).ToArray();
        var json = System.Text.Json.JsonSerializer.Serialize(records);
        Assert.True(json.Length > 1024 * 1024);

        var result = await App.SendAsync(HttpMethod.Post, "/internal/v1/usage", node, json);

        Assert.Equal(HttpStatusCode.Accepted, result.Status);
    }

    [Fact]
    public async Task RandomAndTruncatedBodies_OnEveryJsonEndpoint_Are400ProblemsNever500()
    {
        var (token, userId, orgId) = await cp.UserAsync(SharedControlPlane.Email("fuzz"));
        var endpoints = new (HttpMethod Method, string Path, string Valid)[]
        {
            (HttpMethod.Post, "/v1/orgs", "{\"name\":\"fuzzed org\"}"),
            (HttpMethod.Patch, $"/v1/orgs/{orgId}", "{\"name\":\"renamed\"}"),
            (HttpMethod.Post, $"/v1/orgs/{orgId}/members", "{\"email\":\"fuzz@example.com\",\"role\":\"viewer\"}"),
            (HttpMethod.Patch, $"/v1/orgs/{orgId}/members/{userId}", "{\"role\":\"owner\"}"),
            (HttpMethod.Post, "/v1/invitations/inv_00000000000000000000000000/accept", "{\"token\":\"abc\"}"),
            (HttpMethod.Post, $"/v1/orgs/{orgId}/databases", "{\"name\":\"fuzzdb\"}"),
            (HttpMethod.Post, $"/v1/orgs/{orgId}/api-keys", "{\"name\":\"k\",\"role\":\"viewer\"}"),
            (HttpMethod.Post, "/v1/password-reset", "{\"email\":\"fuzz@example.com\"}"),
            (HttpMethod.Post, "/v1/password-reset/confirm", "{\"token\":\"abc\",\"password\":\"long enough password\"}"),
        };
        var random = new Random(20261122);
        foreach (var (method, path, valid) in endpoints)
        {
            var bodies = new List<byte[]>();
            for (var cut = 1; cut < valid.Length; cut += Math.Max(1, valid.Length / 6))
            {
                bodies.Add(Encoding.UTF8.GetBytes(valid[..cut]));
            }

            for (var i = 0; i < 4; i++)
            {
                var garbage = new byte[random.Next(1, 300)];
                random.NextBytes(garbage);
                garbage[0] = (byte)'{'; // never accidentally a valid JSON scalar
                bodies.Add(garbage);
            }

            foreach (var body in bodies)
            {
                var result = await App.SendAsync(method, path, token, configure: r =>
                {
                    r.Content = new ByteArrayContent(body);
                    r.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                });
                Assert.True(result.Status == HttpStatusCode.BadRequest, $"{method} {path} with {Convert.ToBase64String(body)}: {result.Status}");
                Assert.Equal("application/problem+json", result.Response.Content.Headers.ContentType?.MediaType);
            }
        }

        // Nothing was changed by any of it.
        var org = await App.SendAsync(HttpMethod.Get, $"/v1/orgs/{orgId}", token);
        Assert.NotEqual("renamed", org.Body.GetProperty("name").GetString());
    }

    /// <summary>A body whose length the client cannot know, so it is sent chunked.</summary>
    private sealed class UnknownLengthStream(byte[] data) : Stream
    {
        private int _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = Math.Min(Math.Min(count, 8192), data.Length - _position);
            Array.Copy(data, _position, buffer, offset, n);
            _position += n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
