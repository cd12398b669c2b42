namespace Kdb.Storage.Tests;

public sealed class SmokeTests
{
    [Fact]
    public void FormatVersion_IsOne() => Assert.Equal(1, StorageInfo.FormatVersion);
}
