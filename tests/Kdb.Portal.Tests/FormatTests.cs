extern alias portal;

using portal::Kdb.Portal.Components;

namespace Kdb.Portal.Tests;

public sealed class FormatTests
{
    [Theory]
    [InlineData("/orgs/org_1/databases", "/orgs/org_1/databases")]
    [InlineData("/", "/")]
    [InlineData(null, "/")]
    [InlineData("", "/")]
    [InlineData("//evil.example/", "/")]
    [InlineData("/\\evil.example", "/")]
    [InlineData("https://evil.example/", "/")]
    [InlineData("javascript:alert(1)", "/")]
    public void SafeLocalUrl_OnlyLocalPathsPass(string? input, string expected) =>
        Assert.Equal(expected, Format.SafeLocalUrl(input));

    [Theory]
    [InlineData(0L, "0 B")]
    [InlineData(1023L, "1,023 B")]
    [InlineData(1024L, "1 KiB")]
    [InlineData(1536L, "1.5 KiB")]
    [InlineData(5L * 1024 * 1024 * 1024, "5 GiB")]
    public void Bytes_UsesBinaryUnits(long bytes, string expected) => Assert.Equal(expected, Format.Bytes(bytes));

    [Theory]
    [InlineData("ok")]
    [InlineData("warning")]
    [InlineData("throttled")]
    [InlineData("read_only")]
    [InlineData("suspended")]
    public void QuotaStateText_EveryStateHasPlainWords(string state) =>
        Assert.NotEqual(state, Format.QuotaStateText(state));
}
