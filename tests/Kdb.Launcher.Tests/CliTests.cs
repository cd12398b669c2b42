namespace Kdb.Launcher.Tests;

public sealed class CliTests
{
    [Fact]
    public async Task Run_UnknownSubcommand_PrintsUsageAndReturns2()
    {
        var (code, output, error) = await RunAsync("frobnicate");

        Assert.Equal(2, code);
        Assert.Contains("frobnicate", error, StringComparison.Ordinal);
        Assert.Contains("Usage:", output, StringComparison.Ordinal);
        Assert.Contains("up", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_NoArguments_PrintsUsageAndReturns2()
    {
        var (code, output, _) = await RunAsync();

        Assert.Equal(2, code);
        Assert.Contains("Usage:", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_BadBusValue_IsRejectedWithUsage()
    {
        var (code, output, error) = await RunAsync("up", "--bus", "kafka");

        Assert.Equal(2, code);
        Assert.Contains("kafka", error, StringComparison.Ordinal);
        Assert.Contains("--nodes", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Logs_UnknownService_ExitsNonZeroNamingIt()
    {
        var (code, _, error) = await RunAsync("logs", "nosuchservice");

        Assert.Equal(2, code);
        Assert.Contains("no log for 'nosuchservice'", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bench_UnknownSuite_ListsSuites()
    {
        var (code, _, error) = await RunAsync("bench", "nosuchsuite");

        Assert.Equal(2, code);
        Assert.Contains("storage", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Status_Json_ListsEveryServiceAsStopped()
    {
        var (code, output, _) = await RunAsync("status", "--json");

        Assert.Equal(0, code);
        using var doc = System.Text.Json.JsonDocument.Parse(output);
        var names = doc.RootElement.EnumerateArray().Select(e => e.GetProperty("service").GetString()).ToList();
        Assert.Contains("controlplane", names);
        Assert.Contains("provisioning", names);
        Assert.Contains("node1", names);
        Assert.All(doc.RootElement.EnumerateArray(), e => Assert.False(e.GetProperty("ready").GetBoolean()));
    }

    private static async Task<(int Code, string Output, string Error)> RunAsync(params string[] args)
    {
        using var state = new TempDir();
        using var output = new StringWriter();
        using var error = new StringWriter();
        var console = PlainConsole.Into(output);
        var code = await KdbCli.RunAsync(args, new KdbPaths(state.Path, Path.Combine(state.Path, ".kdb")), console, error);
        return (code, output.ToString(), error.ToString());
    }
}
