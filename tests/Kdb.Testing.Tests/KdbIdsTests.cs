using Kdb.Testing.Ids;

namespace Kdb.Testing.Tests;

public sealed class KdbIdsTests
{
    public static TheoryData<string, Func<string>> TimeOrderedKinds => new()
    {
        { "org_", KdbIds.NewOrgId },
        { "usr_", KdbIds.NewUserId },
        { "key_", KdbIds.NewApiKeyId },
        { "bkp_", KdbIds.NewBackupId },
        { "op_", KdbIds.NewOperationId },
    };

    [Theory]
    [MemberData(nameof(TimeOrderedKinds))]
    public void NewId_AnyKind_IsPrefixAnd26LowercaseCrockfordCharacters(string prefix, Func<string> create)
    {
        var id = create();

        Assert.Matches($"^{prefix}[0-9a-hjkmnp-tv-z]{{26}}$", id);
        Assert.True(KdbIds.IsTimeOrderedId(id, prefix));
    }

    [Fact]
    public void NewOrgId_ManyInARow_AreUniqueAndStrictlyIncreasing()
    {
        var ids = new string[20_000];
        for (var i = 0; i < ids.Length; i++)
        {
            ids[i] = KdbIds.NewOrgId();
        }

        for (var i = 1; i < ids.Length; i++)
        {
            Assert.True(string.CompareOrdinal(ids[i - 1], ids[i]) < 0, $"{ids[i - 1]} !< {ids[i]}");
        }
    }

    [Fact]
    public void NewTimeOrdered_LaterTimestamp_SortsAfterAndRoundTrips()
    {
        var early = new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var late = early.AddMilliseconds(1);

        var generator = new TimeOrderedIdGenerator();
        var a = generator.Next("op_", early);
        var b = generator.Next("op_", late);

        Assert.True(string.CompareOrdinal(a, b) < 0);
        Assert.Equal(early, KdbIds.TimestampOf(a, "op_"));
        Assert.Equal(late, KdbIds.TimestampOf(b, "op_"));
    }

    [Fact]
    public void NewTimeOrdered_ClockStepsBack_StillIncreases()
    {
        var generator = new TimeOrderedIdGenerator();
        var now = DateTimeOffset.UtcNow;
        var first = generator.Next("op_", now);
        var second = generator.Next("op_", now.AddMinutes(-5));
        var third = generator.Next("op_", now);

        Assert.True(string.CompareOrdinal(first, second) < 0);
        Assert.True(string.CompareOrdinal(second, third) < 0);
    }

    [Fact]
    public void NewDatabaseId_Many_AreUniqueValidNamesAndDnsLabels()
    {
        var ids = Enumerable.Range(0, 5_000).Select(_ => KdbIds.NewDatabaseId()).ToArray();

        Assert.Equal(ids.Length, ids.Distinct(StringComparer.Ordinal).Count());
        foreach (var id in ids)
        {
            Assert.Matches("^db_[0-9a-hjkmnp-tv-z]{16}$", id);
            Assert.True(KdbIds.IsDatabaseId(id));
            Assert.Matches("^db-[0-9a-z]{16}$", KdbIds.ToDnsLabel(id));
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("db_")]
    [InlineData("db_0123456789abcde")]
    [InlineData("db_0123456789abcdefg")]
    [InlineData("db_0123456789ABCDEF")]
    [InlineData("db_0123456789abcdei")]
    [InlineData("db_0123456789abcdel")]
    [InlineData("db_0123456789abcdeo")]
    [InlineData("db_0123456789abcdeu")]
    [InlineData("db-0123456789abcdef")]
    [InlineData("org_0123456789abcdef")]
    public void ToDnsLabel_MalformedId_ThrowsFormatException(string id)
    {
        Assert.False(KdbIds.IsDatabaseId(id));
        Assert.Throws<FormatException>(() => KdbIds.ToDnsLabel(id));
    }

    [Fact]
    public void IsTimeOrderedId_RandomAndTruncatedInput_IsFalseAndTimestampOfThrows()
    {
        var random = new Random(20261122);
        var valid = KdbIds.NewOrgId();
        for (var i = 0; i < 2_000; i++)
        {
            var length = random.Next(0, valid.Length);
            var truncated = valid[..length];
            Assert.False(KdbIds.IsTimeOrderedId(truncated, "org_"));

            var chars = valid.ToCharArray();
            chars[random.Next(4, chars.Length)] = "ILOUilou!_-"[random.Next(11)];
            var corrupt = new string(chars);
            Assert.False(KdbIds.IsTimeOrderedId(corrupt, "org_"), corrupt);
            Assert.Throws<FormatException>(() => KdbIds.TimestampOf(corrupt, "org_"));
        }

        Assert.False(KdbIds.IsTimeOrderedId(null, "org_"));
        Assert.False(KdbIds.IsTimeOrderedId(valid, "usr_"));
    }
}
