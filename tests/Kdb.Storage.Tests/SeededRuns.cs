using Xunit.Sdk;

namespace Kdb.Storage.Tests;

/// <summary>Seeds for randomized model tests (many more under <c>KDB_SOAK=1</c>), and a run that names its seed and step
/// when it fails, so a failure can be replayed.</summary>
internal static class SeededRuns
{
    public delegate void SeededBody(int seed, string directory, ref int step);

    public static IEnumerable<object[]> Seeds(int quick, int prime)
    {
        var n = Environment.GetEnvironmentVariable("KDB_SOAK") == "1" ? 200 : quick;
        for (var i = 1; i <= n; i++)
        {
            yield return [i * prime];
        }
    }

    public static void Run(string name, int seed, SeededBody body)
    {
        using var dir = new TestDir();
        var step = 0;
        try
        {
            body(seed, dir.Path, ref step);
        }
        catch (Exception e)
        {
            throw new XunitException($"{name} failed: seed={seed} step={step}: {e}");
        }
    }
}
