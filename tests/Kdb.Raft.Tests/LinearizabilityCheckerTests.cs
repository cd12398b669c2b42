using Kdb.Raft.Tests.Linearizability;

namespace Kdb.Raft.Tests;

public sealed class LinearizabilityCheckerTests
{
    private static KvOperation Put(int client, int key, int v, long call, long ret) => new(client, key, KvOpKind.Put, v, 0, 1, call, ret);
    private static KvOperation Get(int client, int key, int output, long call, long ret) => new(client, key, KvOpKind.Get, 0, 0, output, call, ret);
    private static KvOperation Cas(int client, int key, int expected, int v, bool ok, long call, long ret) => new(client, key, KvOpKind.Cas, v, expected, ok ? 1 : 0, call, ret);

    [Fact]
    public void Check_SequentialHistory_Linearizable()
    {
        var r = LinearizabilityChecker.Check([Put(0, 1, 5, 0, 10), Get(1, 1, 5, 11, 20), Cas(0, 1, 5, 6, true, 21, 30), Get(1, 1, 6, 31, 40)]);
        Assert.True(r.Ok, r.Detail);
    }

    [Fact]
    public void Check_StaleReadAfterWriteReturned_NotLinearizable()
    {
        var r = LinearizabilityChecker.Check([Put(0, 1, 5, 0, 10), Put(0, 1, 6, 11, 20), Get(1, 1, 5, 21, 30)]);
        Assert.False(r.Ok);
        Assert.Equal(1, r.FailedKey);
    }

    [Fact]
    public void Check_ConcurrentReadSeesEitherValue_Linearizable()
    {
        Assert.True(LinearizabilityChecker.Check([Put(0, 1, 5, 0, 10), Put(0, 1, 6, 11, 30), Get(1, 1, 5, 12, 20)]).Ok);
        Assert.True(LinearizabilityChecker.Check([Put(0, 1, 5, 0, 10), Put(0, 1, 6, 11, 30), Get(1, 1, 6, 12, 20)]).Ok);
    }

    [Fact]
    public void Check_UnknownWriteObservedLater_LinearizableAsApplied()
    {
        var unknown = new KvOperation(0, 1, KvOpKind.Put, 9, 0, -1, 0, long.MaxValue);
        Assert.True(LinearizabilityChecker.Check([unknown, Get(1, 1, 9, 100, 110)]).Ok);
        Assert.True(LinearizabilityChecker.Check([unknown, Get(1, 1, 0, 100, 110)]).Ok);
    }

    [Fact]
    public void Check_ReadFlipsBackToOlderValue_NotLinearizable()
    {
        var unknown = new KvOperation(0, 1, KvOpKind.Put, 9, 0, -1, 0, long.MaxValue);
        Assert.False(LinearizabilityChecker.Check([unknown, Get(1, 1, 9, 100, 110), Get(1, 1, 0, 120, 130)]).Ok);
    }

    [Fact]
    public void Check_CasSucceededTwiceFromSameValue_NotLinearizable()
    {
        Assert.False(LinearizabilityChecker.Check([Put(0, 1, 1, 0, 5), Cas(1, 1, 1, 2, true, 10, 20), Cas(2, 1, 1, 3, true, 10, 20)]).Ok);
    }

    [Fact]
    public void Check_KeysIndependent_PartitionedPerKey()
    {
        Assert.True(LinearizabilityChecker.Check([Put(0, 1, 5, 0, 10), Put(1, 2, 7, 0, 10), Get(0, 1, 5, 20, 30), Get(1, 2, 7, 20, 30)]).Ok);
    }
}
