extern alias portal;

using System.Net;
using System.Text;
using portal::Kdb.Portal.Api;

namespace Kdb.Portal.Tests;

/// <summary>API errors become readable messages, whatever the body: problem details, OAuth errors, garbage, nothing.</summary>
public sealed class ProblemReaderTests
{
    [Fact]
    public async Task ReadAsync_ValidationProblem_KeepsFieldErrors()
    {
        var problem = await ReadAsync(HttpStatusCode.BadRequest, """
            {"type":"https://kdb.cloud/problems/validation","title":"The request is not valid.","status":400,"errors":{"name":["1 to 63 characters"]}}
            """);

        Assert.Equal(400, problem.Status);
        Assert.Equal("https://kdb.cloud/problems/validation", problem.Type);
        Assert.Equal(["1 to 63 characters"], problem.ErrorsFor("NAME"));
        Assert.Empty(problem.ErrorsFor("email"));
        Assert.Equal("The request is not valid.", problem.Message);
    }

    [Fact]
    public async Task ReadAsync_NotFound_SaysNotFound()
    {
        var problem = await ReadAsync(HttpStatusCode.NotFound, """{"title":"Not found","status":404,"detail":"No such database."}""");

        Assert.True(problem.IsNotFound);
        Assert.Equal("Not found. No such database.", problem.Message);
    }

    [Fact]
    public async Task ReadAsync_ConflictDetail_IsTheMessage()
    {
        var problem = await ReadAsync(HttpStatusCode.Conflict, """{"title":"Conflict","status":409,"detail":"A database named 'x' already exists in this organization."}""");

        Assert.Equal("A database named 'x' already exists in this organization.", problem.Message);
    }

    [Fact]
    public async Task ReadAsync_OAuthError_UsesItsDescription()
    {
        var problem = await ReadAsync(HttpStatusCode.BadRequest, """{"error":"invalid_request","error_description":"grant_type is required"}""");

        Assert.Equal("grant_type is required", problem.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("{\"title\":\"Conf")]
    [InlineData("[1,2,3]")]
    [InlineData("<html>bad gateway</html>")]
    [InlineData("{\"errors\":42,\"detail\":7}")]
    public async Task ReadAsync_UnreadableBody_GivesAClearMessageForTheStatus(string body)
    {
        var problem = await ReadAsync(HttpStatusCode.BadGateway, body);

        Assert.Equal(502, problem.Status);
        Assert.Contains("(502)", problem.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadAsync_RandomBytes_NeverThrows()
    {
        var random = new Random(1234);
        for (var i = 0; i < 200; i++)
        {
            var bytes = new byte[random.Next(0, 300)];
            random.NextBytes(bytes);
            using var response = new HttpResponseMessage((HttpStatusCode)random.Next(400, 600)) { Content = new ByteArrayContent(bytes) };
            var problem = await ProblemReader.ReadAsync(response, CancellationToken.None);
            Assert.Equal((int)response.StatusCode, problem.Status);
            Assert.False(string.IsNullOrWhiteSpace(problem.Message), $"seed 1234, iteration {i}");
        }
    }

    [Theory]
    [InlineData(0, "cannot be reached")]
    [InlineData(401, "session has expired")]
    [InlineData(403, "permission")]
    [InlineData(429, "Too many requests")]
    [InlineData(500, "(500)")]
    public void Message_ByStatus_IsReadable(int status, string expected) =>
        Assert.Contains(expected, ApiProblem.FromStatus(status).Message, StringComparison.Ordinal);

    private static async Task<ApiProblem> ReadAsync(HttpStatusCode status, string body)
    {
        using var response = new HttpResponseMessage(status) { Content = new StringContent(body, Encoding.UTF8, "application/problem+json") };
        return await ProblemReader.ReadAsync(response, CancellationToken.None);
    }
}
