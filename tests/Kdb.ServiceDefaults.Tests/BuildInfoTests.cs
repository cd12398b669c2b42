namespace Kdb.ServiceDefaults.Tests;

public sealed class BuildInfoTests
{
    [Fact]
    public void For_ThisAssembly_ReportsVersionCommitAndBuildTime()
    {
        var info = BuildInfo.For("test", typeof(BuildInfoTests).Assembly);

        Assert.Equal("test", info.Service);
        Assert.Equal("0.1.0", info.Version);
        Assert.False(string.IsNullOrEmpty(info.Commit));
        Assert.True(DateTimeOffset.TryParse(info.BuildTime, System.Globalization.CultureInfo.InvariantCulture, out var built));
        Assert.True(built <= DateTimeOffset.UtcNow.AddMinutes(1));
    }
}
