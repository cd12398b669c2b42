namespace Kdb.Launcher.Tests;

public sealed class TestSummaryTests
{
    [Fact]
    public void Summarize_AddsCountersOfEveryTrx()
    {
        using var dir = new TempDir();
        WriteTrx(dir.Path, "a.trx", passed: 10, failed: 1, notExecuted: 2);
        WriteTrx(dir.Path, "b.trx", passed: 5, failed: 0, notExecuted: 0);

        var totals = TestCommand.Summarize(dir.Path, expectedProjects: 2, exitCode: 1, out var notes);

        Assert.Equal(new TestCommand.Totals(15, 1, 2), totals);
        Assert.Equal("15 passed, 1 failed, 2 skipped", totals.ToString());
        Assert.Empty(notes);
    }

    [Fact]
    public void Summarize_NoSkips_OmitsTheSkippedPart()
    {
        using var dir = new TempDir();
        WriteTrx(dir.Path, "a.trx", passed: 3, failed: 0, notExecuted: 0);

        Assert.Equal("3 passed, 0 failed", TestCommand.Summarize(dir.Path, 1, 0, out _).ToString());
    }

    [Fact]
    public void Summarize_ProjectWithoutTrx_CountsAsFailure()
    {
        using var dir = new TempDir();
        WriteTrx(dir.Path, "a.trx", passed: 3, failed: 0, notExecuted: 0);

        var totals = TestCommand.Summarize(dir.Path, expectedProjects: 3, exitCode: 1, out var notes);

        Assert.Equal(2, totals.Failed);
        Assert.Single(notes);
    }

    [Fact]
    public void Summarize_NonZeroExitWithoutFailures_CountsOneFailure()
    {
        using var dir = new TempDir();
        WriteTrx(dir.Path, "a.trx", passed: 3, failed: 0, notExecuted: 0);

        Assert.Equal(1, TestCommand.Summarize(dir.Path, 1, exitCode: 1, out _).Failed);
    }

    [Fact]
    public void Failures_NameEachFailedTestWithTheStartOfItsMessage()
    {
        using var dir = new TempDir();
        WriteTrx(dir.Path, "a.trx", passed: 3, failed: 0, notExecuted: 0);
        var longMessage = string.Join('\n', Enumerable.Range(1, 40).Select(i => $"line {i} & <more>"));
        File.WriteAllText(Path.Combine(dir.Path, "Kdb.Portal.Tests.trx"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <TestRun xmlns="http://microsoft.com/schemas/VisualStudio/TeamTest/2010">
              <Results>
                <UnitTestResult testName="Kdb.Portal.Tests.A.Passes" outcome="Passed" duration="00:00:01" />
                <UnitTestResult testName="Kdb.Portal.Tests.A.Fails" outcome="Failed" duration="00:00:46.5">
                  <Output><ErrorInfo><Message>{System.Security.SecurityElement.Escape(longMessage)}</Message><StackTrace>at A.Fails() in A.cs:line 12</StackTrace></ErrorInfo></Output>
                </UnitTestResult>
              </Results>
            </TestRun>
            """);
        File.WriteAllText(Path.Combine(dir.Path, "broken.trx"), "<TestRun><Results><UnitTest");

        var failures = TestCommand.Failures(dir.Path);

        Assert.Equal(2, failures.Count);
        Assert.StartsWith("FAILED Kdb.Portal.Tests.A.Fails (Kdb.Portal.Tests, 00:00:46.5)", failures[0], StringComparison.Ordinal);
        Assert.Contains("    line 1 & <more>", failures[0], StringComparison.Ordinal);
        Assert.Contains("    line 12 & <more>", failures[0], StringComparison.Ordinal);
        Assert.DoesNotContain("line 13 ", failures[0], StringComparison.Ordinal);
        Assert.Contains("at A.Fails() in A.cs:line 12", failures[0], StringComparison.Ordinal);
        Assert.StartsWith("FAILED (unreadable results) broken.trx", failures[1], StringComparison.Ordinal);
    }

    private static void WriteTrx(string dir, string name, int passed, int failed, int notExecuted) =>
        File.WriteAllText(Path.Combine(dir, name), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <TestRun xmlns="http://microsoft.com/schemas/VisualStudio/TeamTest/2010">
              <ResultSummary outcome="Completed">
                <Counters total="{passed + failed + notExecuted}" executed="{passed + failed}" passed="{passed}" failed="{failed}" error="0" timeout="0" aborted="0" inconclusive="0" notExecuted="{notExecuted}" />
              </ResultSummary>
            </TestRun>
            """);
}
