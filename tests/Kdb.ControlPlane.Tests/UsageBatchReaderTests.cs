using System.Buffers;
using System.Text;
using Kdb.ControlPlane.Usage;

namespace Kdb.ControlPlane.Tests;

public sealed class UsageBatchReaderTests
{
    private const string Valid = """
        [{"source":"node_1","sequence":7,"databaseId":"db_a","hourStart":"2026-11-21T10:00:00Z","rowsRead":100,"rowsWritten":2,"bytesRead":3,"bytesWritten":4,"storageBytes":5,"cpuMs":6,"egressBytes":7,"connections":8},
         {"Source":"node_1","SEQUENCE":"8","databaseid":"db_b","hourStart":"2026-11-21T11:00:00+00:00","unknown":{"nested":[1,2]},"rowsRead":null}]
        """;

    [Fact]
    public void Parse_ReadsEveryField_NamesInAnyCase_NumbersAsStrings_UnknownsSkipped_AbsentAsZero()
    {
        var (records, error) = Parse(Valid);

        Assert.Null(error);
        Assert.NotNull(records);
        Assert.Equal(2, records.Length);
        Assert.Equal(new UsageEndpoints.UsageRecord("node_1", 7, "db_a", new DateTimeOffset(2026, 11, 21, 10, 0, 0, TimeSpan.Zero), 100, 2, 3, 4, 5, 6, 7, 8), records[0]);
        Assert.Equal(new UsageEndpoints.UsageRecord("node_1", 8, "db_b", new DateTimeOffset(2026, 11, 21, 11, 0, 0, TimeSpan.Zero), 0, 0, 0, 0, 0, 0, 0, 0), records[1]);
        Assert.Same(records[0].Source, records[1].Source);
    }

    [Theory]
    [InlineData("")]
    [InlineData("{}")]
    [InlineData("[1]")]
    [InlineData("[{\"sequence\":true}]")]
    [InlineData("[{\"sequence\":1.5}]")]
    [InlineData("[{\"sequence\":\"12x\"}]")]
    [InlineData("[{\"hourStart\":\"yesterday\"}]")]
    [InlineData("[{\"source\":5}]")]
    [InlineData("[] []")]
    [InlineData("[{}],")]
    public void Parse_NotABatch_IsAnError(string json)
    {
        var (records, error) = Parse(json);

        Assert.Null(records);
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Fact]
    public void Parse_MoreThanTheLimit_IsAnError()
    {
        var (records, error) = UsageBatchReader.Parse(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes("[{},{},{}]")), 2);

        Assert.Null(records);
        Assert.Contains("1 to 2", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_EveryTruncationAndRandomBytes_AnswersAnErrorNeverThrows()
    {
        var bytes = Encoding.UTF8.GetBytes(Valid);
        for (var length = 0; length < bytes.Length - 1; length++)
        {
            var (records, error) = UsageBatchReader.Parse(new ReadOnlySequence<byte>(bytes, 0, length), 100);
            Assert.True(records is null && error is not null, $"a batch cut at {length} bytes was accepted");
        }

        var random = new Random(8);
        for (var i = 0; i < 500; i++)
        {
            var noise = new byte[random.Next(1, 200)];
            random.NextBytes(noise);
            if (i % 2 == 0)
            {
                // Mostly JSON-looking noise: a valid prefix with a corrupted tail.
                var cut = random.Next(1, bytes.Length);
                noise = [.. bytes.AsSpan(0, cut), .. noise];
            }

            var (records, error) = UsageBatchReader.Parse(new ReadOnlySequence<byte>(noise), 100);
            Assert.True(records is not null || error is not null);
        }
    }

    private static (UsageEndpoints.UsageRecord[]? Records, string? Error) Parse(string json) =>
        UsageBatchReader.Parse(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(json)), 100);
}
